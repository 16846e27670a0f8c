"""Build small, valid PDFs with a real text layer from raw PDF syntax, for parser tests.

No PDF-writing library is a dependency of cairn, so tests write the file format directly:
one catalog, one page tree, one page + content stream per page, and the standard 14
Helvetica font (Type1, needs no embedding). Offsets in the xref table are computed from
the bytes written, so PDFium reads the file without falling back to repair mode.
"""

from __future__ import annotations

__all__ = ["build_pdf"]

_LINE_HEIGHT = 14
_PARAGRAPH_GAP = 28
_FILE_ID = "<00112233445566778899aabbccddeeff>"
_ENCRYPT = (
    f" /Encrypt << /Filter /Standard /V 1 /R 2 /O <{'11' * 32}> /U <{'22' * 32}> /P -4 >> /ID [{_FILE_ID} {_FILE_ID}]"
)


def _escape(text: str) -> str:
    """Escape a string for a PDF literal string: backslash and parentheses."""
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content_stream(paragraphs: list[list[str]]) -> bytes:
    """Draw each paragraph's lines top-down, with a wider gap between paragraphs."""
    ops = ["BT", "/F1 12 Tf"]
    y = 740
    for paragraph in paragraphs:
        for line in paragraph:
            # Absolute positioning with Tm keeps every line independent of the previous one.
            ops.append(f"1 0 0 1 72 {y} Tm")
            ops.append(f"({_escape(line)}) Tj")
            y -= _LINE_HEIGHT
        y -= _PARAGRAPH_GAP - _LINE_HEIGHT
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def build_pdf(pages: list[list[list[str]]], *, password_protected: bool = False) -> bytes:
    """Return the bytes of a PDF with one page per item of ``pages``.

    Each page is a list of paragraphs and each paragraph a list of lines (Latin-1 text).
    A page given as ``[]`` has an empty content stream, i.e. no text layer.
    With ``password_protected``, the trailer names a standard security handler whose keys match
    no empty user password, so readers ask for a password (the content itself stays plain).
    """
    page_count = len(pages)
    font_id = 3
    first_page_id = 4  # each page takes two objects: the page, then its content stream
    kids = " ".join(f"{first_page_id + 2 * i} 0 R" for i in range(page_count))

    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {page_count} >>".encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for index, paragraphs in enumerate(pages):
        content_id = first_page_id + 2 * index + 1
        objects.append(
            (
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {content_id} 0 R >>"
            ).encode("ascii")
        )
        stream = _content_stream(paragraphs)
        objects.append(b"<< /Length " + str(len(stream)).encode("ascii") + b" >>\nstream\n" + stream + b"\nendstream")

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"

    xref_offset = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode("ascii")
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    encrypt = _ENCRYPT if password_protected else ""
    trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{encrypt} >>\nstartxref\n{xref_offset}\n%%EOF\n"
    out += trailer.encode("ascii")
    return bytes(out)
