"""Plain-text parsing, and the decoding and cleaning every text-based parser shares.

Decoding never fails: UTF-8 (with or without BOM) and BOM-marked UTF-16/32 are tried first,
then cp1252, then latin-1, which maps every byte. UTF-8 with a few invalid bytes (a damaged or
truncated copy) stays UTF-8: the bytes are replaced with U+FFFD and a warning says how many and
where (`cairn.parse.salvage`). Cleaning removes characters that carry no
text (NUL and other C0 controls, zero-width marks) and links that run code or carry their own
content (``javascript:``, ``vbscript:``, ``data:``), so they never reach the index; hits read back
from the index are cleaned again, so nothing ingested before a rule existed slips past it.
"""

from __future__ import annotations

import codecs
import re

from cairn.models import Element, Location

from .salvage import warn

__all__ = [
    "REMOVED_LINK",
    "clean_text",
    "decode_bytes",
    "make_element",
    "normalize_newlines",
    "parse_text",
    "strip_bom",
    "strip_unsafe_links",
]

REMOVED_LINK = "[link removed]"
# More invalid UTF-8 sequences than this: the file is in another encoding, not damaged UTF-8.
_MAX_INVALID_UTF8 = 16

# Longest first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# C0 controls except \t and \n (\r is normalised away before cleaning), plus DEL.
# \v and \f separate words visually, so they become spaces rather than vanish.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f\r]")
_SPACE_LIKE = re.compile("[\x0b\x0c]")
# Invisible format characters (Unicode category Cf): zero-width marks, soft hyphens, and the bidi
# controls that can make text read differently than it is stored (U+202E and kin).
_ZERO_WIDTH = re.compile(
    "[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]"
)
# Lone surrogates (from JSON "\\ud800" escapes or "surrogateescape" decoding) cannot be encoded.
_SURROGATE = re.compile("[\ud800-\udfff]")
_LEADING_BLANK_LINES = re.compile(r"\A(?:[^\S\n]*\n)+")
# Links whose scheme runs script or embeds its own content. Browsers drop tabs inside a URL and
# decode character references in attributes, so the scheme's letters may be split by tabs or
# written as references. The link goes up to the next space or quote (in an attribute or a link
# target, a space may follow the colon); ``data:`` counts only in its URI form
# (``data:text/html,...``), so a label such as "data: 5 rows" stays.
_GAP = r"(?:\t|&#0*9;|&#x0*9;|&tab;|&newline;)*"


def _scheme(name: str) -> str:
    letters = [rf"(?:{c}|&#0*{ord(c)};?|&#x0*{ord(c):x};?)" for c in name]
    return r"(?<![a-z0-9])" + _GAP.join(letters) + _GAP + r"(?::|&colon;|&#0*58;?|&#x0*3a;?)"


_SCRIPT = "(?:" + "|".join(_scheme(name) for name in ("javascript", "vbscript")) + ")"
_DATA = _scheme("data") + r"[ \t]*(?:[a-z]+/[a-z0-9.+-]+)?(?:;[a-z0-9=.+-]*)*,"
_UNSAFE_LINK = re.compile(
    rf"(?<=[(\"'=<])[ \t]*{_SCRIPT}[ \t]*[^\s<>\"`]*|{_SCRIPT}(?=\S)[^\s<>\"`]*|{_DATA}[^\s<>\"`]*",
    re.IGNORECASE,
)


def strip_bom(data: bytes) -> tuple[bytes, str | None]:
    """Split a leading byte-order mark off ``data``; return the rest and the encoding it names."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :], encoding
    return data, None


def decode_bytes(data: bytes, *, declared: str | None = None) -> str:
    """Decode document bytes to text, never raising.

    Order: a byte-order mark wins; then UTF-8 (strict, or with a few invalid bytes replaced and a
    warning); then ``declared`` (an encoding the
    document names for itself, such as an HTML ``<meta charset>``); then cp1252; then latin-1.
    """
    body, bom_encoding = strip_bom(data)
    if bom_encoding is not None:
        return body.decode(bom_encoding, errors="replace")
    damage = _utf8_damage(body)
    if damage is not None:
        bad, offset = damage
        line = body.count(b"\n", 0, offset) + 1
        warn(
            f"line {line} (byte {offset}): {bad} byte{'s' if bad != 1 else ''} that are not valid UTF-8 "
            "were replaced with \N{REPLACEMENT CHARACTER}"
        )
        return body.decode("utf-8", errors="replace")
    candidates = ["utf-8"] + ([declared] if declared else []) + ["cp1252"]
    for encoding in candidates:
        try:
            return body.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    return body.decode("latin-1")


def _utf8_damage(body: bytes) -> tuple[int, int] | None:
    """``(bad bytes, offset of the first)`` when ``body`` is UTF-8 with a few invalid bytes, else None.

    A file is taken for damaged UTF-8, not for another encoding, when its other non-ASCII bytes
    are valid UTF-8 sequences (which text in cp1252 or latin-1 almost never forms) and the invalid
    ones are few.
    """
    bad, first, position = 0, -1, 0
    for _ in range(_MAX_INVALID_UTF8):
        try:
            body[position:].decode("utf-8")
        except UnicodeDecodeError as exc:
            start, position = position + exc.start, position + exc.end
            bad, first = bad + position - start, first if first >= 0 else start
            continue
        non_ascii = sum(1 for byte in body if byte >= 0x80)
        return (bad, first) if 0 < bad < non_ascii - bad else None
    return None


def normalize_newlines(text: str) -> str:
    """Turn Windows (``\\r\\n``) and old Mac (``\\r``) line ends into ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def clean_text(text: str) -> str:
    """Remove control and zero-width characters and unsafe links, replace lone surrogates; keep
    newlines and tabs.

    Line count is preserved (only ``\\r`` among line ends is removed, and callers normalise
    it first), so line numbers taken before cleaning stay valid after it.
    """
    text = _SPACE_LIKE.sub(" ", text)
    text = _CONTROL.sub("", text)
    return strip_unsafe_links(_SURROGATE.sub("\ufffd", _ZERO_WIDTH.sub("", text)))


def strip_unsafe_links(text: str) -> str:
    """Replace every ``javascript:``, ``vbscript:`` or ``data:`` link in *text* by a marker.

    These schemes run code or carry their own content (a ``data:`` page or image) when a client
    renders the text as HTML or Markdown; no passage needs them to be read. Other links stay in
    passages; answers go further and drop every link (`cairn.generate.safety.defang`).
    """
    return _UNSAFE_LINK.sub(REMOVED_LINK, text)


def make_element(text: str, *, location: Location, kind: str) -> Element | None:
    """Build an `Element` from cleaned, stripped ``text``, or ``None`` if nothing is left.

    Code (kind ``code``) keeps the indentation of its first line; only blank lines around it
    and trailing whitespace go.
    """
    cleaned = clean_text(text)
    cleaned = _LEADING_BLANK_LINES.sub("", cleaned).rstrip() if kind == "code" else cleaned.strip()
    if not cleaned.strip():
        return None
    return Element(text=cleaned, location=location, kind=kind)


def parse_text(data: bytes) -> list[Element]:
    """Split plain text into paragraphs at blank lines.

    Each element keeps its lines as written (joined by ``\\n``) and records the 1-based,
    inclusive ``line_start``/``line_end`` of those lines in the original file.
    """
    lines = clean_text(normalize_newlines(decode_bytes(data))).split("\n")
    elements: list[Element] = []
    start: int | None = None
    for number, line in enumerate([*lines, ""], start=1):
        if line.strip():
            if start is None:
                start = number
            continue
        if start is not None:
            paragraph = "\n".join(lines[start - 1 : number - 1])
            element = make_element(
                paragraph, location=Location(line_start=start, line_end=number - 1), kind="paragraph"
            )
            if element is not None:
                elements.append(element)
            start = None
    return elements
