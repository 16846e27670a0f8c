"""ZIP archives: members parsed recursively, named in locations, within limits on size, count and depth."""

from __future__ import annotations

import io
import zipfile

import pytest

from cairn.errors import LimitExceeded, ParseError
from cairn.parse import ParseLimits, parse_file


def _zip(members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_members_are_parsed_and_named_in_their_locations() -> None:
    """Each member is parsed by its own format; its elements' location.member is the member's path."""
    data = _zip(
        {
            "policies/leave.md": b"# Leave\n\nParental leave is 120 days.\n",
            "notes.txt": b"The quarterly review is in March.\n",
            "empty-dir/": b"",
        }
    )

    parsed = parse_file(data, path="bundle.zip")

    assert parsed.format == "ZIP"
    by_member = {(e.location.member, e.text) for e in parsed.elements}
    assert ("policies/leave.md", "Parental leave is 120 days.") in by_member
    assert ("notes.txt", "The quarterly review is in March.") in by_member
    leave = next(e for e in parsed.elements if e.text.startswith("Parental"))
    assert leave.location.heading_path == ("Leave",)
    assert leave.location.label.startswith("policies/leave.md, Leave")


def test_nested_archives_prefix_member_paths() -> None:
    """A ZIP inside a ZIP is parsed too; the member path names both levels."""
    inner = _zip({"deep.txt": b"Nested archives are unpacked recursively.\n"})
    parsed = parse_file(_zip({"inner.zip": inner}), path="outer.zip")

    assert [(e.location.member, e.text) for e in parsed.elements] == [
        ("inner.zip/deep.txt", "Nested archives are unpacked recursively.")
    ]


def test_bad_and_unsupported_members_are_listed_and_the_rest_is_parsed() -> None:
    """A broken member fails, a binary member is skipped, each named by path; good members still parse."""
    data = _zip(
        {
            "good.txt": b"This member is fine.\n",
            "broken.pdf": b"%PDF-1.7 truncated nonsense",
            "tool.bin": b"\x7fELF\x02\x01\x01" + bytes(200),
            ".hidden": b"never looked at",
            "__MACOSX/._good.txt": b"resource fork",
        }
    )

    parsed = parse_file(data, path="mixed.zip")

    assert [e.text for e in parsed.elements] == ["This member is fine."]
    assert [f.path for f in parsed.failed] == ["mixed.zip › broken.pdf"]
    assert "PDF" in parsed.failed[0].error
    assert [f.path for f in parsed.skipped] == ["mixed.zip › tool.bin"]
    assert "executable" in parsed.skipped[0].error


def test_encrypted_members_are_skipped_with_a_reason() -> None:
    """A member flagged as encrypted is not read; it is listed as skipped."""
    data = bytearray(_zip({"open.txt": b"Readable text.", "secret.txt": b"pretend ciphertext"}))
    # zipfile cannot write encrypted members: set the 'encrypted' flag in both headers of the second.
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        secret = archive.getinfo("secret.txt")
    data[secret.header_offset + 6] |= 0x1
    central = data.index(b"PK\x01\x02", secret.header_offset)
    while data[central + 46 : central + 46 + len(b"secret.txt")] != b"secret.txt":
        central = data.index(b"PK\x01\x02", central + 4)
    data[central + 8] |= 0x1

    parsed = parse_file(bytes(data), path="locked.zip")

    assert [e.text for e in parsed.elements] == ["Readable text."]
    assert [(f.path, "encrypted" in f.error) for f in parsed.skipped] == [("locked.zip › secret.txt", True)]


def test_a_decompression_bomb_member_fails_the_archive_before_expanding() -> None:
    """A member that expands 1000x (20 MiB of zeros) is refused as a bomb, not decompressed."""
    data = _zip({"readme.txt": b"hello", "zeros.txt": bytes(20 * 1024 * 1024)})
    assert len(data) < 100_000

    with pytest.raises(LimitExceeded, match="decompression bomb"):
        parse_file(data, path="bomb.zip")


def test_total_expanded_size_is_bounded_across_members() -> None:
    """Members that are each harmless still fail the archive once their total passes the limit."""
    data = _zip({f"part{i}.txt": f"part {i} ".encode() * 2000 for i in range(5)}, compression=zipfile.ZIP_STORED)

    with pytest.raises(LimitExceeded, match="expands to more than"):
        parse_file(data, path="big.zip", limits=ParseLimits(max_expanded_bytes=40_000))


def test_member_count_is_bounded() -> None:
    """An archive with more members than allowed fails with a clear reason."""
    data = _zip({f"n{i}.txt": b"x" for i in range(30)})

    with pytest.raises(LimitExceeded, match="more than 10 members"):
        parse_file(data, path="many.zip", limits=ParseLimits(max_members=10))


def test_nesting_depth_is_bounded() -> None:
    """Archives nested deeper than the limit fail the whole file, however small."""
    data = b"innermost text"
    name = "core.txt"
    for level in range(5):
        data = _zip({name: data})
        name = f"level{level}.zip"

    with pytest.raises(LimitExceeded, match="nested more than 3"):
        parse_file(data, path="russian-doll.zip")


def test_corrupt_archive_is_a_parse_error() -> None:
    """Bytes that start like a ZIP but are not one give a ParseError saying the archive is damaged."""
    with pytest.raises(ParseError, match="not a readable ZIP"):
        parse_file(b"PK\x03\x04" + b"\x00" * 100, path="truncated.zip")
