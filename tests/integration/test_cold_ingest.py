"""A cold ingest keeps the embedder busy: the shape comes from the model's files, the worker starts as soon as
the files predict a real ingest, batches are embedded while the one before is committed, and the process
that ingests never loads the model itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from cairn import Cairn
from cairn.chunking import embedding_input
from cairn.embed.local import SentenceTransformerEmbedder
from cairn.embed.model_files import ModelShape, describe, hf_counter, rust_counter

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# Real text of several kinds: prose, a man page's option list, code, non-Latin scripts, long words.
SAMPLES = [REPO / "src/cairn/demo/corpus", REPO / "tests/fixtures/real/docs"]


def _real_texts() -> list[str]:
    files = sorted(p for folder in SAMPLES for p in folder.iterdir() if p.suffix in {".md", ".txt", ".html"})
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in files]
    texts += [
        "       -a, --all\n              do not ignore entries starting with .\n",
        "def chunk(text: str) -> list[str]:\n    return [t for t in text.split('\\n\\n') if t]",
        "Überprüfung der Zugriffsrechte — 访问控制 — アクセス制御 — supercalifragilisticexpialidocious",
        "",
    ]
    return texts


def _packaged(embedder: SentenceTransformerEmbedder) -> Path:
    return Path(embedder.model_path)


def _edited_copy(embedder: SentenceTransformerEmbedder, folder: Path, changes: dict[str, dict[str, object]]) -> Path:
    """A copy of the packaged model in *folder* whose JSON files named in *changes* get those keys."""
    shutil.copytree(_packaged(embedder), folder)
    for name, update in changes.items():
        config = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**config, **update}))
    return folder


def test_the_packaged_models_files_state_the_shape_the_loaded_model_has(
    embedder: SentenceTransformerEmbedder,
) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(embedder.model_path)
    assert describe(_packaged(embedder)) == ModelShape(
        dim=int(model.get_embedding_dimension()), max_tokens=int(model.max_seq_length)
    )


def test_tokens_read_from_tokenizer_json_equal_the_loaded_tokenizers(embedder: SentenceTransformerEmbedder) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(embedder.model_path)
    fast, loaded = rust_counter(_packaged(embedder)), hf_counter(model.tokenizer)
    texts = _real_texts()
    assert len(texts) > 10
    assert fast.counts(texts) == loaded.counts(texts)
    assert fast.special_tokens == loaded.special_tokens == 2
    for text in texts:
        assert list(map(tuple, fast.offsets(text))) == list(map(tuple, loaded.offsets(text)))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"1_Pooling/config.json": {"pooling_mode_max_tokens": True}}, "two pooling modes make a wider vector"),
        ({"sentence_bert_config.json": {"do_lower_case": True}}, "the text is lowered before tokenizing"),
    ],
)
def test_files_that_do_not_state_the_shape_plainly_describe_nothing(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, change: dict[str, dict[str, object]], why: str
) -> None:
    assert describe(_edited_copy(embedder, tmp_path / "model", change)) is None, why


def test_a_layout_with_a_dense_layer_or_no_tokenizer_json_describes_nothing(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    dense = _edited_copy(embedder, tmp_path / "dense", {})
    modules = json.loads((dense / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (dense / "modules.json").write_text(json.dumps(modules))
    assert describe(dense) is None
    untokenized = _edited_copy(embedder, tmp_path / "untokenized", {})
    (untokenized / "tokenizer.json").unlink()
    assert describe(untokenized) is None


def test_a_model_whose_shape_is_not_stated_plainly_is_loaded_to_learn_it(
    tmp_path: Path, embedder: SentenceTransformerEmbedder
) -> None:
    """Mean and max pooling together: the real model is 768 wide, and cairn learns that by loading it."""
    folder = _edited_copy(embedder, tmp_path / "mean-max", {"1_Pooling/config.json": {"pooling_mode_max_tokens": True}})
    wide = SentenceTransformerEmbedder(str(folder))
    assert wide.dim == 768
    assert wide.max_tokens == 256
    vectors = wide.embed_documents(["The travel policy reimburses economy fares."])
    assert vectors.shape == (1, 768)
    assert wide.count_tokens(["The travel policy"]) == embedder.count_tokens(["The travel policy"])


def test_batches_of_similar_token_counts_give_the_vectors_sentence_transformers_gives(
    embedder: SentenceTransformerEmbedder,
) -> None:
    from sentence_transformers import SentenceTransformer

    texts = [t for t in _real_texts() if t.strip()]
    texts += [f"short note {i}" for i in range(40)]  # many short inputs beside long ones: mixed batches before
    model = SentenceTransformer(embedder.model_path)
    expected = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    np.testing.assert_allclose(embedder.embed_documents(texts), expected, atol=2e-5)


@pytest.mark.parametrize("heading_context", [False, True])
def test_vectors_stay_with_their_chunks_when_batches_are_embedded_ahead(tmp_path: Path, heading_context: bool) -> None:
    """Batches of three chunks: each is embedded while the one before it is committed; none gets another's.
    Each stored vector is the model's vector of `embedding_input` of its chunk: with heading context on,
    "Note 3 on pumps > Escalation" then the text, not the text alone."""
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(12):
        topic = ["pumps", "badges", "invoices", "backups"][i % 4]
        (folder / f"note-{i:02d}.md").write_text(
            f"# Note {i} on {topic}\n\nCrew {i} inspects the {topic} every {i + 2} weeks.\n\n"
            f"## Escalation\n\nIf the {topic} check fails twice, call the duty manager on extension {4000 + i}.\n"
        )
    with Cairn(
        home=tmp_path / "home", embed_worker=False, ingest_batch_chunks=3, embed_heading_context=heading_context
    ) as cairn:
        report = cairn.ingest(folder, collection="ahead")
        assert report.failed == []
        assert report.ingested == 12
        for doc in cairn.catalog.iter_live_documents("ahead"):
            version = doc.live_version()
            assert version is not None
            chunks, vectors = cairn.vault.read_chunks(version.chunks_key, doc_id=doc.doc_id, version=version.version)
            inputs = [embedding_input(c, heading_context=heading_context) for c in chunks]
            assert (inputs != [c.text for c in chunks]) == heading_context
            np.testing.assert_allclose(vectors, cairn.embedder.embed_documents(inputs), atol=2e-5)
        hit = cairn.search("extension 4007", collection="ahead", mode="keyword").hits[0]
        assert hit.source.endswith("note-07.md")


_INGEST_IN_A_NEW_PROCESS = """
import json, sys
from pathlib import Path
from cairn import Cairn
with Cairn(home=Path(sys.argv[1]), embed_worker=True) as cairn:
    report = cairn.ingest(Path(sys.argv[2]), collection="cold")
    worker = cairn.embedder.worker_pid
    loaded_here = "sentence_transformers" in sys.modules or "torch" in sys.modules
    found = cairn.search("fireproof bin", collection="cold", mode="keyword").hits[0].source
print(json.dumps({"ingested": report.ingested, "unchanged": report.unchanged, "worker": worker,
                  "loaded_here": loaded_here, "found": found}))
"""


def _ingest_in_a_new_process(home: Path, folder: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
    done = subprocess.run(
        [sys.executable, "-c", _INGEST_IN_A_NEW_PROCESS, str(home), str(folder)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_large_ingest_is_embedded_by_the_worker_and_never_loads_the_model_in_the_ingesting_process(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "handbook"
    folder.mkdir()
    for i in range(40):  # about 80 KB: the files' sizes predict more than the worker's threshold of chunks
        body = "\n\n".join(f"Rule {i}.{j}: crew {j} reports hazard {i * j} to the site lead." for j in range(30))
        (folder / f"rules-{i:02d}.md").write_text(f"# Site rules {i}\n\n{body}\n")
    (folder / "battery.md").write_text("If a lithium battery swells, move it to the fireproof bin outside.\n")
    first = _ingest_in_a_new_process(tmp_path / "home", folder)
    assert first["ingested"] == 41
    assert first["worker"] is not None
    assert first["loaded_here"] is False  # only the worker imported torch and loaded the model
    assert str(first["found"]).endswith("battery.md")
    assert not psutil.pid_exists(int(str(first["worker"])))  # stopped with its process, not left behind
    # Nothing changed: no file predicts any embedding, so no worker is started for the re-ingest.
    again = _ingest_in_a_new_process(tmp_path / "home", folder)
    assert again["unchanged"] == 41
    assert again["worker"] is None


def test_closing_cairn_stops_the_embedding_worker_at_once(tmp_path: Path) -> None:
    with Cairn(home=tmp_path / "home", embed_worker=True) as cairn:
        embedder = cairn.embedder
        assert isinstance(embedder, SentenceTransformerEmbedder)
        embedder.start_worker(wait=True)
        pid = embedder.worker_pid
        assert pid is not None
        assert psutil.pid_exists(pid)
    assert not psutil.pid_exists(pid)  # terminated and reaped by close, not left to exit on its own
