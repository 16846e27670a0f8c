"""Integration fixtures: a real Cairn on Milvus Lite in a temporary CAIRN_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn import Cairn, Settings

pytestmark = pytest.mark.integration


class CountingEmbedder:
    """The real embedder, counting how many texts it was asked to embed (a spy, not a fake)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self._inner = inner
        self.embedded = 0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._inner, name)

    def embed_documents(self, texts):  # type: ignore[no-untyped-def]
        self.embedded += len(texts)
        return self._inner.embed_documents(texts)


@pytest.fixture
def cairn(tmp_path: Path, embedder) -> Iterator[Cairn]:  # type: ignore[no-untyped-def]
    instance = Cairn(Settings(home=tmp_path / "home"))
    instance._embedder = CountingEmbedder(embedder)
    yield instance
    instance.close()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "leave.md").write_text(
        "# Leave policy\n\n## Parental leave\n\nEmployees receive 120 days of paid parental leave.\n\n"
        "## Sick leave\n\nSick leave is 15 days per year and needs a note after three days.\n"
    )
    (folder / "batteries.txt").write_text(
        "Battery handling\n\nIf a lithium battery swells, move it to the fireproof bin outside.\n\n"
        "Charge batteries only on the steel shelf in the workshop.\n"
    )
    (folder / "api.html").write_text(
        "<html><body><h1>Atlas API</h1><h2>Regions</h2><p>Atlas serves from Frankfurt and Sydney.</p>"
        "<script>var secret = 1;</script></body></html>"
    )
    return folder
