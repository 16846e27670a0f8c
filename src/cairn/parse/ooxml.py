"""Office Open XML packages (.docx, .pptx, .xlsx): the checks made before a library opens one.

The libraries that read these formats trust the ZIP container; this module refuses what they
would mishandle, with a message that says what the file is and what to do: a password-protected
document (an OLE compound file, not a ZIP), a damaged or truncated ZIP, a ZIP that is not an
Office package, encrypted members, and decompression bombs (by the declared sizes in the ZIP
directory, which `zipfile` never reads past).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cairn.errors import LimitExceeded, ParseError

from .context import ParseLimits
from .ooxml_salvage import repaired_package
from .salvage import warn

__all__ = ["OfficeFormat", "open_package", "read_salvaging"]

T = TypeVar("T")

# Password-protected OOXML files (and legacy .doc/.xls/.ppt) are OLE compound files.
_COMPOUND_FILE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTENT_TYPES = "[Content_Types].xml"
# Small members may compress extremely well (blank XML); only large ones are judged by ratio.
_BOMB_FLOOR = 1024 * 1024
_LIMITS = ParseLimits()
_MIB = 1024 * 1024
# Libraries name the file they failed on; ours is an in-memory stream, which says nothing.
_STREAM_NAME = re.compile(r"'?<_io\.BytesIO object at 0x[0-9a-fA-F]+>'? ?")


@dataclass(frozen=True)
class OfficeFormat:
    """How messages name a format: ``a Word .docx document`` and the application to re-save from."""

    description: str
    extension: str
    application: str

    def invalid(self, reason: str) -> str:
        return (
            f"the file is not a valid {self.description} ({reason}); "
            f"re-save it as {self.extension} from {self.application}"
        )

    def damaged(self, exc: Exception) -> str:
        """The message for an error the reading library raised, without its name for our stream."""
        detail = _STREAM_NAME.sub("", str(exc)).strip()
        return self.invalid(f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__)


def _check_sizes(archive: zipfile.ZipFile) -> None:
    total = 0
    for info in archive.infolist():
        if info.flag_bits & 0x1:
            raise ParseError(
                f"the package member {info.filename!r} is encrypted; remove the password and save the file again"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _BOMB_FLOOR and ratio > _LIMITS.max_ratio:
            raise LimitExceeded(
                f"the package member {info.filename!r} expands {ratio:.0f} times "
                f"({info.file_size} bytes from {info.compress_size}): a decompression bomb; the file was not read"
            )
        if info.file_size > _LIMITS.max_member_bytes:
            raise LimitExceeded(
                f"the package member {info.filename!r} is {info.file_size // _MIB} MiB, over the limit of "
                f"{_LIMITS.max_member_bytes // _MIB} MiB; split the document into smaller files"
            )
        total += info.file_size
        if total > _LIMITS.max_expanded_bytes:
            raise LimitExceeded(
                f"the package expands to more than {_LIMITS.max_expanded_bytes // _MIB} MiB; "
                "split the document into smaller files"
            )


def open_package(data: bytes, office_format: OfficeFormat) -> io.BytesIO:
    """Check that ``data`` is a readable Office package and return it as a stream for the library.

    Raises:
        ParseError: the file is password-protected, not a ZIP, damaged, or not an Office package.
        LimitExceeded: the package would expand too far (a decompression bomb).
    """
    if data.startswith(_COMPOUND_FILE):
        raise ParseError(
            f"the file is a password-protected {office_format.description} or a legacy binary Office file "
            f"(.doc, .xls, .ppt); remove the password, or re-save it as {office_format.extension} "
            f"from {office_format.application}"
        )
    stream = io.BytesIO(data)
    try:
        with zipfile.ZipFile(stream) as archive:
            if _CONTENT_TYPES not in archive.namelist():
                raise ParseError(office_format.invalid(f"a ZIP archive without {_CONTENT_TYPES}"))
            _check_sizes(archive)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise ParseError(office_format.invalid(f"it is not a readable ZIP package: {exc}")) from exc
    stream.seek(0)
    return stream


def read_salvaging(data: bytes, office_format: OfficeFormat, read: Callable[[io.BytesIO], T]) -> T:
    """``read(package)``; when the library fails on damage, again on the package with its damage repaired.

    Each repair (a part cut short, a part left out) is reported with `warn`. `ParseError` and
    `LimitExceeded` raised by ``read`` itself pass through.

    Raises:
        ParseError: the package is not readable even repaired; the message quotes the library's
            error on the original file.
        LimitExceeded: the package would expand too far (a decompression bomb).
    """
    package = open_package(data, office_format)
    try:
        return read(package)
    except (ParseError, LimitExceeded):
        raise
    except Exception as exc:  # the libraries raise KeyError, ValueError, XML and ZIP errors... on damage
        failure = exc
    for drop_damaged in (False, True):
        try:
            repaired, notes = repaired_package(data, drop_damaged=drop_damaged)
        except ParseError as exc:
            raise ParseError(office_format.invalid(str(exc))) from failure
        if not notes:
            break
        try:
            result = read(io.BytesIO(repaired))
        except (ParseError, LimitExceeded):
            raise
        except Exception:  # the part recovered in part is still unreadable to the library: leave it out
            continue
        for note in notes:
            warn(note)
        return result
    raise ParseError(office_format.damaged(failure)) from failure
