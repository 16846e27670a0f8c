"""Where hybrid search ranks the chunk holding each real document's unique phrase, per fusion (promotion off).

The table in docs/architecture.md, "Exact-phrase promotion in hybrid search":

    python scripts/eval/phrase_ranks.py

Ingests tests/fixtures/real/docs once into a scratch home and prints, per fusion, the 0-based rank of the chunk
that holds each phrase of tests/fixtures/real/phrases.json among the first 10 hybrid hits ("-": not there).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from cairn import Cairn
from cairn.settings import Settings

REAL = Path(__file__).parents[2] / "tests" / "fixtures" / "real"
HEADINGS = Settings().fusion_heading_weight  # the default share of a match in the headings
# (fusion, dense weight, headings weight)
FUSIONS = (
    ("rrf", 0.8, 0.0),
    ("weighted", 0.8, 0.0),
    ("weighted", 0.8, HEADINGS),
    ("weighted", 0.7, 0.0),
    ("weighted", 0.5, 0.0),
)


def main() -> None:
    phrases: dict[str, str] = json.loads((REAL / "phrases.json").read_text(encoding="utf-8"))
    home = Path(tempfile.mkdtemp(prefix="cairn-phrases-"))
    cairn = Cairn(Settings(home=home, exact_phrase_promotion=False, milvus_uri=None, store=None))
    try:
        cairn.ingest([REAL / "docs"])
        for fusion, weight, headings in FUSIONS:
            chosen = {"hybrid_fusion": fusion, "fusion_dense_weight": weight, "fusion_heading_weight": headings}
            cairn.settings = cairn.settings.model_copy(update=chosen)
            ranks = []
            for name, phrase in phrases.items():
                wanted = " ".join(phrase.split()).lower()
                hits = cairn.search(phrase, k=10, mode="hybrid").hits
                found = [
                    rank
                    for rank, hit in enumerate(hits)
                    if Path(hit.source).name == name and wanted in " ".join(hit.text.split()).lower()
                ]
                ranks.append(str(found[0]) if found else "-")
            print(json.dumps({**chosen, "ranks": ", ".join(ranks)}))
    finally:
        cairn.close()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
