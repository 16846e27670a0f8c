"""The package checks every Office parser (.docx, .pptx, .xlsx) makes before its library opens the file."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import pytest

from cairn.errors import LimitExceeded, ParseError
from cairn.models import Element
from cairn.parse.docx import parse_docx
from cairn.parse.pptx import parse_pptx
from cairn.parse.xlsx import parse_xlsx

OfficeParser = Callable[[bytes], list[Element]]

PARSERS = pytest.mark.parametrize(
    ("parse", "description"),
    [
        (parse_docx, r"Word \.docx document"),
        (parse_pptx, r"PowerPoint \.pptx presentation"),
        (parse_xlsx, r"Excel \.xlsx workbook"),
    ],
    ids=["docx", "pptx", "xlsx"],
)

_CONTENT_TYPES = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'


def _zip(members: dict[str, bytes]) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return output.getvalue()


@PARSERS
def test_password_protected_file_says_to_remove_the_password(parse: OfficeParser, description: str) -> None:
    """Encrypted Office files are OLE compound files, not ZIPs; the message names the cause and the fix."""
    compound_file = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)

    with pytest.raises(ParseError, match=rf"password-protected {description}.*remove the password"):
        parse(compound_file)


@PARSERS
@pytest.mark.parametrize(
    "data", [b"", b"plain text, not a package", b"PK\x03\x04truncated"], ids=["empty", "text", "zip"]
)
def test_bytes_that_are_not_a_zip_are_a_parse_error(parse: OfficeParser, description: str, data: bytes) -> None:
    """Anything that is not a ZIP package fails as not valid, with the original error chained."""
    with pytest.raises(ParseError, match=rf"not a valid {description}.*re-save it") as caught:
        parse(data)

    assert caught.value.__cause__ is not None


@PARSERS
def test_zip_that_is_not_an_office_package_is_a_parse_error(parse: OfficeParser, description: str) -> None:
    """A ZIP without ``[Content_Types].xml`` is not an Office file, whatever its extension says."""
    with pytest.raises(ParseError, match=rf"not a valid {description} \(a ZIP archive without"):
        parse(_zip({"readme.txt": b"hello"}))


@PARSERS
def test_decompression_bomb_is_refused_before_reading(parse: OfficeParser, description: str) -> None:
    """A member that expands hundreds of times beyond its compressed size is refused as a bomb."""
    data = _zip({"[Content_Types].xml": _CONTENT_TYPES, "word/document.xml": bytes(4 * 1024 * 1024)})

    with pytest.raises(LimitExceeded, match="decompression bomb"):
        parse(data)


@PARSERS
def test_encrypted_member_is_a_parse_error(parse: OfficeParser, description: str) -> None:
    """A package with a ZIP-encrypted member cannot be read; the message says to remove the password."""
    data = bytearray(_zip({"[Content_Types].xml": _CONTENT_TYPES}))
    # Set the "encrypted" flag bit in the central directory entry, as an encrypting zip tool would.
    central = data.rindex(b"PK\x01\x02")
    data[central + 8] |= 0x1

    with pytest.raises(ParseError, match="encrypted; remove the password"):
        parse(bytes(data))
