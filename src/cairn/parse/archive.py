"""ZIP archives: every member is parsed as a document of its own, within the context's limits.

Members are read one at a time and never written to disk, so hostile names (``../../x``) are
only labels. Before a member is decompressed, its declared size is counted against the limits
and its compression ratio is checked; the read itself is capped at the declared size, so a
header that lies cannot make a member expand further. Directories, macOS resource forks and
hidden files are skipped silently; encrypted members are reported as skipped.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib

from cairn.errors import LimitExceeded, ParseError
from cairn.models import Element, FailedFile

from .context import ParseContext

__all__ = ["parse_zip"]

_BOMB_FLOOR = 1024 * 1024


def _is_noise(name: str) -> bool:
    parts = name.split("/")
    return parts[0] == "__MACOSX" or any(part.startswith(".") for part in parts if part)


def _open(data: bytes) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise ParseError(
            f"not a readable ZIP archive ({exc}): the file is corrupt or truncated; re-create or re-download it"
        ) from exc


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo, context: ParseContext) -> bytes:
    name = info.filename
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size > _BOMB_FLOOR and ratio > context.limits.max_ratio:
        raise LimitExceeded(
            f"member {name!r} expands {ratio:.0f} times ({info.file_size} bytes from {info.compress_size}): "
            "a decompression bomb; the archive was not ingested"
        )
    if info.file_size > context.limits.max_member_bytes:
        raise LimitExceeded(
            f"member {name!r} is {info.file_size // (1024 * 1024)} MiB, over the limit of "
            f"{context.limits.max_member_bytes // (1024 * 1024)} MiB per member; add it as a file of its own"
        )
    context.admit(name, info.file_size)
    try:
        with archive.open(info) as member:
            payload = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise ParseError(f"member {name!r} cannot be decompressed ({exc})") from exc
    if len(payload) > info.file_size:
        raise LimitExceeded(
            f"member {name!r} expands beyond the size its header declares: a malformed or hostile archive"
        )
    return payload


def parse_zip(data: bytes, context: ParseContext) -> list[Element]:
    """Parse each member of a ZIP archive; its elements' locations name the member."""
    elements: list[Element] = []
    with _open(data) as archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or _is_noise(name):
                continue
            if info.flag_bits & 0x1:
                context.skipped.append(
                    FailedFile(path=context.display(name), error="the member is encrypted; cairn cannot read it")
                )
                continue
            try:
                payload = _read(archive, info, context)
            except LimitExceeded:
                raise
            except ParseError as exc:
                context.problems.append(FailedFile(path=context.display(name), error=str(exc)))
                continue
            elements.extend(context.parse_member(payload, posixpath.normpath(name)))
    return elements
