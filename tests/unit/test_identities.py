"""Document identities of plain ingests: from the folder given, never the machine's mount point."""

from __future__ import annotations

from pathlib import Path

from cairn.ingest import is_local_identity, local_identities
from cairn.sources.kinds import metadata_key, source_kind


def test_a_folder_names_its_files_from_its_own_name_wherever_it_is_mounted() -> None:
    """/mnt/a/docs and /srv/docs give the same identities; the mount point never appears."""
    for mount in (Path("/mnt/a"), Path("/srv")):
        files = [mount / "docs" / "guide" / "install.md", mount / "docs" / "faq.md"]
        assert local_identities([mount / "docs"], files) == {
            str(files[0]): "docs/guide/install.md",
            str(files[1]): "docs/faq.md",
        }


def test_a_file_given_by_itself_is_named_as_an_ingest_of_its_folder_names_it() -> None:
    """`cairn ingest /srv/docs/guide/a.md` and `cairn ingest /srv/docs/guide` agree: guide/a.md."""
    file = Path("/srv/docs/guide/a.md")
    assert local_identities([file], [file]) == {str(file): "guide/a.md"}
    assert local_identities([file.parent], [file]) == {str(file): "guide/a.md"}


def test_the_first_folder_given_names_a_file_under_two() -> None:
    """A file under two given folders is named by the first one given."""
    file = Path("/srv/docs/guide/a.md")
    assert local_identities([Path("/srv/docs/guide"), Path("/srv/docs")], [file]) == {str(file): "guide/a.md"}
    assert local_identities([Path("/srv/docs"), Path("/srv/docs/guide")], [file]) == {str(file): "docs/guide/a.md"}


def test_only_plain_ingest_identities_count_as_local() -> None:
    """Uploads, S3 objects and repository files are never a plain ingest's (so --sync leaves them be)."""
    assert is_local_identity("docs/leave.md")
    assert is_local_identity("/old/absolute/path.md")
    assert is_local_identity("docs/user@example.md")
    assert not is_local_identity("upload:leave.md")
    assert not is_local_identity("s3://bucket/key.md")
    assert not is_local_identity("handbook@guide/install.md")


def test_uris_name_their_kind_and_metadata_names_are_made_filterable() -> None:
    """s3:// is S3, git+ is Git, a path a folder; S3 metadata names become filter-safe names."""
    assert source_kind("s3://bucket/prefix") == "s3"
    assert source_kind("git+https://example.org/wiki.git") == "git"
    assert source_kind("/srv/docs") == "directory"
    assert metadata_key("x-team") == "x_team"
    assert metadata_key("9lives") is None
