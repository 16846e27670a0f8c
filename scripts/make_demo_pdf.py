"""Generate the demo corpus PDF (Field Operations Manual) from raw PDF syntax.

Uses only the standard library: no PDF library is needed to regenerate the
file. The output has a real text layer (standard Helvetica / Helvetica-Bold
Type1 fonts with WinAnsiEncoding), text wrapped to the page width using the
standard Helvetica glyph widths, several pages, and a correct xref table.
The output is deterministic (no timestamps), so re-running the script gives
byte-identical output.

Usage:
    python scripts/make_demo_pdf.py [OUTPUT_PATH]

The default output path is src/cairn/demo/corpus/field-operations-manual.pdf.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent / "src" / "cairn" / "demo" / "corpus" / "field-operations-manual.pdf"
)

# --------------------------------------------------------------------------
# Document content. Each block is (kind, text); kinds: title, subtitle, h2,
# h3, p, bullet, step (numbered; numbering restarts after any other block).
# --------------------------------------------------------------------------

CONTENT: list[tuple[str, str]] = [
    ("title", "Field Operations Manual"),
    ("subtitle", "Northwind Cartography Ltd. \u2013 Field Operations team \u2013 Edition 5"),
    ("h2", "1. Purpose and scope"),
    (
        "p",
        "This manual describes how Northwind survey crews plan, travel to, carry out and close "
        "a field survey. It applies to every employee and contractor who flies a Kestrel 2 or "
        "Osprey X drone for a customer project, and to the project managers who schedule them. "
        "It complements the Drone Safety Guide, which remains the authority on flight safety "
        "and battery handling, and the Employee Handbook, which covers leave and expenses.",
    ),
    ("h2", "2. Planning a survey"),
    ("h3", "2.1 Project brief"),
    (
        "p",
        "Every survey starts with a project brief agreed with the customer. The brief states the "
        "survey area as a polygon, the required ground sampling distance, the deliverables "
        "(orthomosaic, elevation model, point cloud or contour lines), the delivery date and the "
        "Atlas region where the customer's data must be stored. The project manager creates the "
        "project in Survey Studio and attaches the brief before any crew is booked.",
    ),
    ("h3", "2.2 Permissions"),
    (
        "p",
        "The pilot in command confirms at least five working days before the survey that all permissions are in place:",
    ),
    ("bullet", "written consent from the landowner or site manager for take-off and landing;"),
    ("bullet", "airspace checks, including temporary restrictions and notices to airmen;"),
    ("bullet", "any local authority permits needed for flights near roads, railways or crowds;"),
    ("bullet", "the customer's site induction, booked for the first morning on site."),
    ("h3", "2.3 Equipment checklist"),
    (
        "p",
        "The crew collects equipment from the Fleet store the day before departure and signs it "
        "out in the Fleet log. A standard Kestrel 2 kit contains two airframes, eight NW-4S "
        "batteries, the field charger, spare propellers, the RTK base station, ten ground control "
        "targets and a ground station tablet with Survey Studio Field installed. Osprey X kits "
        "replace the batteries with six pairs of NW-6S packs and add the vehicle inverter.",
    ),
    ("h2", "3. Travel and accommodation"),
    (
        "p",
        "Book all travel through the company travel portal so that Northwind knows where every "
        "crew member is. Rail is preferred for journeys under four hours. Flights are booked in "
        "economy class; premium economy may be booked for flights longer than six hours. Crews "
        "travelling with Osprey X equipment drive a pool van, because NW-6S batteries cannot be "
        "carried on passenger aircraft.",
    ),
    (
        "p",
        "When you use your own car, mileage is reimbursed at GBP 0.45 per mile in the UK, "
        "EUR 0.23 per kilometre in the Netherlands and USD 0.67 per mile in the United States. "
        "Hotels are booked by the travel portal within the nightly caps below; ask your manager "
        "before booking anything above the cap.",
    ),
    ("bullet", "United Kingdom: GBP 120 per night outside London, GBP 180 in London."),
    ("bullet", "Netherlands: EUR 140 per night."),
    ("bullet", "United States: USD 190 per night, USD 250 in major cities."),
    (
        "p",
        "A daily meal allowance (per diem) of GBP 45, EUR 55 or USD 65 replaces individual meal "
        "receipts on overnight surveys. Claim it in the expenses app together with your other "
        "travel costs within 30 days of returning.",
    ),
    ("h2", "4. On site"),
    ("h3", "4.1 Crew roles"),
    (
        "p",
        "A survey crew has at least two people. The pilot in command is responsible for the "
        "flight and has final say on whether it is safe to fly. The observer keeps the drone in "
        "sight, watches for aircraft and people entering the area, and keeps the daily log. On "
        "larger projects a ground control surveyor places and measures the ground control points.",
    ),
    ("h3", "4.2 Daily briefing"),
    (
        "p",
        "Each morning the pilot in command leads a short briefing covering the weather forecast, "
        "the flight plan for the day, hazards found during the site assessment, emergency "
        "contacts and the location of the nearest hospital. The briefing is recorded in Survey "
        "Studio Field and signed by every crew member.",
    ),
    ("h3", "4.3 Ground control"),
    (
        "p",
        "Place at least five ground control points across the survey area, plus one more for "
        "every additional ten hectares, and measure each one with the RTK rover. Keep targets "
        "away from shadows and reflective surfaces. Photograph every target in place so that it "
        "can be identified during processing.",
    ),
    ("h3", "4.4 Flying the mission"),
    ("step", "Check that the wind and temperature are within the limits in the Drone Safety Guide."),
    ("step", "Load the approved flight plan and confirm the return-to-home altitude."),
    ("step", "Carry out the pre-flight inspection of propellers, arms, gimbal and batteries."),
    ("step", "Announce take-off to the crew and fly the mission, monitoring battery levels."),
    ("step", "After landing, record flight time, battery serial numbers and any issues in the log."),
    ("h2", "5. Batteries in the field"),
    (
        "p",
        "Charge batteries from mains power where it is available, or from the vehicle inverter "
        "with the engine running. Keep charged packs in their LiPo-safe cases in the shade; on hot "
        "days do not leave them in a closed vehicle. Rotate packs so that each one cools for at "
        "least 20 minutes after a flight before it is recharged. On cold days keep the next pair "
        "of batteries in the insulated bag until take-off.",
    ),
    (
        "p",
        "Inspect every pack before it is fitted. A pack that is swollen, dented, leaking or "
        "unusually hot must not be flown or charged; take it out of service immediately and "
        "follow the swollen battery procedure in section 1.4 of the Drone Safety Guide. Crews "
        "carry a LiPo-safe bag and a bucket of dry sand in every vehicle for this purpose.",
    ),
    ("h2", "6. Survey data handling"),
    (
        "p",
        "Survey imagery is Confidential data under the IT Security Policy. At the end of every "
        "flying day, copy each SD card to the ground station tablet and to the encrypted field "
        "drive, so that two copies exist before any card is reused. Upload the day's images to "
        "the customer's Atlas home region from Survey Studio Field over the hotel or office "
        "network using the VPN. Wipe SD cards only after the upload has been verified, and in "
        "any case within 72 hours of the flight.",
    ),
    ("h2", "7. Welfare and lone working"),
    (
        "p",
        "Field days are limited to ten hours on site, including no more than six hours of active "
        "flying per pilot. Crews check in with the Field Operations duty phone at the start and "
        "end of each day. Anyone who has to work alone, for example while collecting ground "
        "control targets, checks in every two hours; if a check-in is missed by 30 minutes the "
        "duty manager calls the crew and escalates if there is no answer.",
    ),
    ("h2", "8. Closing the survey"),
    (
        "p",
        "Before leaving the site, remove every ground control target, walk the take-off area for "
        "litter and confirm with the site manager that nothing was damaged. Back at the office, "
        "return equipment to the Fleet store, report any faults in the Fleet log and complete "
        "the project debrief in Survey Studio within two working days. The project manager "
        "then hands the data over to the processing team.",
    ),
]

# --------------------------------------------------------------------------
# Standard Type1 font metrics (widths in 1/1000 em) for WinAnsi codes 32-126.
# --------------------------------------------------------------------------

# fmt: off
_HELVETICA_WIDTHS = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,  # 32-47
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,  # 48-63
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,  # 64-79
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,  # 80-95
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,  # 96-111
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,  # 112-126
]

_HELVETICA_BOLD_WIDTHS = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,  # 32-47
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,  # 48-63
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,  # 64-79
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,  # 80-95
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,  # 96-111
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,  # 112-126
]

# A few WinAnsi codes above 127 (same width in both fonts).
_HIGH_WIDTHS = {0x91: 222, 0x92: 222, 0x93: 333, 0x94: 333, 0x95: 350, 0x96: 556, 0x97: 1000,
                0xB0: 400}
# fmt: on

FONTS = {
    "F1": ("Helvetica", _HELVETICA_WIDTHS),
    "F2": ("Helvetica-Bold", _HELVETICA_BOLD_WIDTHS),
}

PAGE_WIDTH = 595.0  # A4 in points
PAGE_HEIGHT = 842.0
MARGIN_X = 64.0
MARGIN_TOP = 64.0
MARGIN_BOTTOM = 64.0
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN_X

# kind -> (font, size, leading, space before, space after, indent)
STYLES = {
    "title": ("F2", 20.0, 24.0, 0.0, 4.0, 0.0),
    "subtitle": ("F1", 10.0, 13.0, 0.0, 10.0, 0.0),
    "h2": ("F2", 13.0, 16.0, 10.0, 3.0, 0.0),
    "h3": ("F2", 11.0, 14.0, 6.0, 2.0, 0.0),
    "p": ("F1", 10.0, 13.5, 0.0, 6.0, 0.0),
    "bullet": ("F1", 10.0, 13.5, 0.0, 2.0, 16.0),
    "step": ("F1", 10.0, 13.5, 0.0, 2.0, 16.0),
}


def encode(text: str) -> bytes:
    """Encode text as WinAnsi (cp1252) bytes."""
    return text.encode("cp1252")


def text_width(data: bytes, font: str, size: float) -> float:
    widths = FONTS[font][1]
    total = 0
    for code in data:
        if 32 <= code <= 126:
            total += widths[code - 32]
        else:
            total += _HIGH_WIDTHS.get(code, 556)
    return total * size / 1000.0


def pdf_string(data: bytes) -> bytes:
    """Return a PDF literal string with ( ) \\ escaped and non-ASCII as octal."""
    out = bytearray(b"(")
    for code in data:
        if code in (0x28, 0x29, 0x5C):  # ( ) \
            out += b"\\" + bytes([code])
        elif 32 <= code <= 126:
            out.append(code)
        else:
            out += b"\\%03o" % code
    out += b")"
    return bytes(out)


def wrap(text: str, font: str, size: float, width: float) -> list[bytes]:
    """Greedy word wrap using the font's glyph widths."""
    lines: list[bytes] = []
    current = b""
    for word in encode(text).split(b" "):
        if not word:
            continue
        candidate = word if not current else current + b" " + word
        if current and text_width(candidate, font, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


class Layout:
    """Lays out blocks into per-page content streams."""

    def __init__(self) -> None:
        self.pages: list[list[bytes]] = []
        self.y = 0.0
        self._new_page()

    def _new_page(self) -> None:
        self.pages.append([])
        self.y = PAGE_HEIGHT - MARGIN_TOP

    def _emit_lines(self, lines: list[bytes], font: str, size: float, leading: float, x: float) -> None:
        """Emit lines as one BT/ET run per page: first line with Tj, then the ' operator."""
        i = 0
        while i < len(lines):
            if self.y - leading < MARGIN_BOTTOM:
                self._new_page()
            room = int((self.y - MARGIN_BOTTOM) // leading)
            chunk = lines[i : i + max(room, 1)]
            baseline = self.y - size
            ops = [
                b"BT",
                b"/%s %.1f Tf" % (font.encode(), size),
                b"%.1f TL" % leading,
                b"%.2f %.2f Td" % (x, baseline),
                pdf_string(chunk[0]) + b" Tj",
            ]
            ops += [pdf_string(line) + b" '" for line in chunk[1:]]
            ops.append(b"ET")
            self.pages[-1].append(b"\n".join(ops))
            self.y -= leading * len(chunk)
            i += len(chunk)

    def add(self, kind: str, text: str, number: int | None = None) -> None:
        font, size, leading, before, after, indent = STYLES[kind]
        x = MARGIN_X + indent
        lines = wrap(text, font, size, TEXT_WIDTH - indent)
        if kind in ("h2", "h3"):
            # keep a heading together with at least two lines of what follows
            if self.y - before - leading * (len(lines) + 2) < MARGIN_BOTTOM:
                self._new_page()
            elif self.y != PAGE_HEIGHT - MARGIN_TOP:
                self.y -= before
        if kind in ("bullet", "step"):
            if self.y - leading < MARGIN_BOTTOM:
                self._new_page()
            marker = "\u2022" if kind == "bullet" else f"{number}."
            self.pages[-1].append(
                b"BT\n/%s %.1f Tf\n%.2f %.2f Td\n%s Tj\nET"
                % (font.encode(), size, MARGIN_X + 4, self.y - size, pdf_string(encode(marker)))
            )
        self._emit_lines(lines, font, size, leading, x)
        self.y -= after

    def finish(self) -> list[bytes]:
        streams = []
        total = len(self.pages)
        for index, ops in enumerate(self.pages, start=1):
            footer = encode(f"Field Operations Manual \u2013 page {index} of {total}")
            w = text_width(footer, "F1", 8.0)
            footer_op = b"BT\n/F1 8.0 Tf\n%.2f %.2f Td\n%s Tj\nET" % (
                (PAGE_WIDTH - w) / 2,
                MARGIN_BOTTOM / 2,
                pdf_string(footer),
            )
            ops = [*ops, footer_op]
            streams.append(b"\n".join(ops) + b"\n")
        return streams


def build_pdf(content: list[tuple[str, str]]) -> bytes:
    layout = Layout()
    number = 0
    for kind, text in content:
        number = number + 1 if kind == "step" else 0
        layout.add(kind, text, number if kind == "step" else None)
    streams = layout.finish()

    # Object numbering: 1 catalog, 2 pages, 3-4 fonts, 5 info,
    # then (page, content) pairs.
    n_pages = len(streams)
    page_ids = [6 + 2 * i for i in range(n_pages)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % pid for pid in page_ids), n_pages),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        5: b"<< /Title %s /Author %s /Producer %s >>"
        % (
            pdf_string(b"Field Operations Manual"),
            pdf_string(b"Northwind Cartography Ltd."),
            pdf_string(b"cairn scripts/make_demo_pdf.py"),
        ),
    }
    for pid, stream in zip(page_ids, streams, strict=True):
        objects[pid] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents %d 0 R >>"
            % (int(PAGE_WIDTH), int(PAGE_HEIGHT), pid + 1)
        )
        objects[pid + 1] = b"<< /Length %d >>\nstream\n%sendstream" % (len(stream), stream)

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objects[num])
    xref_offset = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n" % size
    out += b"0000000000 65535 f \n"
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\n" % size
    out += b"startxref\n%d\n%%%%EOF\n" % xref_offset
    return bytes(out)


def main(argv: list[str]) -> int:
    output = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    data = build_pdf(CONTENT)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(data)
    print(f"wrote {output} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
