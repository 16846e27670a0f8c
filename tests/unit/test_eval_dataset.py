"""The BEIR-format loader: JSONL and folder corpora, qrels, subsets and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn.errors import InvalidRequest
from cairn.eval.dataset import half_of, load_dataset

FIXTURES = Path(__file__).parent.parent / "fixtures" / "eval"


def _write(root: Path, corpus: list[dict[str, str]], queries: list[dict[str, str]], qrels: str) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return root


def test_jsonl_dataset_keeps_only_answerable_queries(tmp_path: Path) -> None:
    """q2's only judged document is not in the corpus and q3 has only a zero grade: both are dropped."""
    root = _write(
        tmp_path / "set",
        [{"_id": "d1", "title": "T", "text": "body"}, {"_id": "d2", "text": "other"}],
        [{"_id": "q1", "text": "one"}, {"_id": "q2", "text": "two"}, {"_id": "q3", "text": "three"}],
        "q1\td1\t1\nq1\td2\t0\nq2\tmissing\t1\nq3\td2\t0\n",
    )
    data = load_dataset(root)
    assert data.name == "set"
    assert data.queries == {"q1": "one"}
    assert data.qrels == {"q1": {"d1": 1, "d2": 0}}
    assert data.corpus_size == 2
    assert data.documents[0].as_text() == "T\n\nbody"
    assert data.documents[1].as_text() == "other"


def test_folder_corpus_ids_are_relative_paths(tmp_path: Path) -> None:
    """A corpus/ folder: each file is a document named by its path under corpus/."""
    root = tmp_path / "set"
    (root / "corpus" / "sub").mkdir(parents=True)
    (root / "corpus" / "sub" / "a.md").write_text("# A\n\ntext")
    (root / "corpus" / "b.txt").write_text("b text")
    (root / "qrels").mkdir()
    (root / "queries.jsonl").write_text('{"_id": "q", "text": "a?"}\n')
    (root / "qrels" / "dev.tsv").write_text("q\tsub/a.md\t1\n")
    data = load_dataset(root)
    assert sorted(data.files) == ["b.txt", "sub/a.md"]
    assert data.qrels == {"q": {"sub/a.md": 1}}


def test_subset_keeps_relevant_documents_and_fills_with_others(tmp_path: Path) -> None:
    """First query by id, a corpus of 2: its relevant document plus the first other one."""
    root = _write(
        tmp_path / "set",
        [{"_id": f"d{i}", "text": f"doc {i}"} for i in range(5)],
        [{"_id": "q1", "text": "x"}, {"_id": "q2", "text": "y"}],
        "q1\td3\t1\nq2\td4\t1\n",
    )
    small = load_dataset(root).subset(queries=1, documents=2)
    assert list(small.queries) == ["q1"]
    assert [d.doc_id for d in small.documents] == ["d0", "d3"]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("corpus.jsonl", "no corpus.jsonl or corpus/"),
        ("queries.jsonl", "no queries.jsonl"),
        ("qrels/test.tsv", "no qrels"),
    ],
)
def test_missing_parts_are_named(tmp_path: Path, broken: str, message: str) -> None:
    """Each missing file is named in the error."""
    root = _write(tmp_path / "set", [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], "q\td\t1\n")
    (root / broken).unlink()
    with pytest.raises(InvalidRequest, match=message):
        load_dataset(root)


def test_bad_json_line_is_located(tmp_path: Path) -> None:
    """A malformed line is reported with its file and line number."""
    root = _write(tmp_path / "set", [{"_id": "d", "text": "t"}], [{"_id": "q", "text": "t"}], "q\td\t1\n")
    (root / "queries.jsonl").write_text('{"_id": "q", "text": "t"}\nnot json\n')
    with pytest.raises(InvalidRequest, match=r"queries.jsonl:2"):
        load_dataset(root)


@pytest.mark.parametrize(
    ("name", "queries"), [("pydoc", 250), ("manpages", 250), ("manpages2", 250), ("faqquestions", 378)]
)
def test_committed_sets_load_with_one_relevant_document_per_query(name: str, queries: int) -> None:
    """The committed retrieval sets are well formed: each query is answered by one corpus document,
    and no query occurs verbatim in it (faqquestions: the question is not in its answer passage)."""
    data = load_dataset(FIXTURES / name)
    assert len(data.queries) == queries
    assert all(sum(g > 0 for g in judged.values()) == 1 for judged in data.qrels.values())
    assert 350 <= data.corpus_size <= 2000
    corpus_text = {d.doc_id: " ".join(d.as_text().lower().split()) for d in data.documents}
    for query_id, judged in data.qrels.items():
        (answer,) = judged
        assert " ".join(data.queries[query_id].lower().split()) not in corpus_text[answer]


@pytest.mark.parametrize(("name", "questions"), [("faqs", 35), ("gitfaq", 20)])
def test_committed_answer_sets_have_a_gold_passage_from_the_relevant_document(name: str, questions: int) -> None:
    """Every question of the answer sets has a gold answer passage, and that passage is text of its document."""
    data = load_dataset(FIXTURES / name)
    assert len(data.queries) == len(data.answers) == questions
    for query_id, judged in data.qrels.items():
        (doc,) = judged
        document = " ".join(data.files[doc].read_text(encoding="utf-8").split())
        assert " ".join(data.answers[query_id].split()) in document


def test_halves_split_by_a_stable_hash_of_the_query_id(tmp_path: Path) -> None:
    """Each query lands in exactly one half, decided by its id alone: the same id is in the same half
    in any set and any order, the halves cover every query, and each half keeps the whole corpus."""
    ids = [f"q{i:03d}" for i in range(40)]
    root = _write(
        tmp_path / "set",
        [{"_id": f"d{i}", "text": f"doc {i}"} for i in range(40)],
        [{"_id": q, "text": f"query {q}"} for q in reversed(ids)],
        "".join(f"{q}\td{i}\t1\n" for i, q in enumerate(ids)),
    )
    data = load_dataset(root)
    tune, held_out = data.half("tune"), data.half("held-out")
    assert sorted([*tune.queries, *held_out.queries]) == ids
    assert not set(tune.queries) & set(held_out.queries)
    assert all(half_of(q) == "tune" for q in tune.queries)
    assert tune.qrels == {q: data.qrels[q] for q in tune.queries}
    assert tune.corpus_size == held_out.corpus_size == 40
    # Pinned values: the split must not change between releases, or tuned defaults would leak.
    assert [half_of(q) for q in ("q0000", "q0001", "q0002", "q0003")] == ["held-out", "held-out", "tune", "tune"]


@pytest.mark.parametrize("name", ["pydoc", "manpages", "faqquestions"])
def test_committed_sets_split_into_two_halves_of_similar_size(name: str) -> None:
    """Both halves of each retrieval set hold between 40% and 60% of its queries."""
    data = load_dataset(FIXTURES / name)
    share = len(data.half("tune").queries) / len(data.queries)
    assert 0.4 <= share <= 0.6


def test_an_unknown_half_is_refused(tmp_path: Path) -> None:
    """Asking for a half other than tune or held-out names the choices."""
    root = _write(tmp_path / "set", [{"_id": "d0", "text": "doc"}], [{"_id": "q0", "text": "x"}], "q0\td0\t1\n")
    with pytest.raises(InvalidRequest, match="tune, held-out"):
        load_dataset(root).half("test")


def test_the_second_man_page_set_shares_no_page_with_the_first() -> None:
    """manpages2 checks generalisation from manpages, so none of its documents may be one of manpages'."""
    first = {d.doc_id for d in load_dataset(FIXTURES / "manpages").documents}
    second = {d.doc_id for d in load_dataset(FIXTURES / "manpages2").documents}
    assert len(second) == 1000
    assert not first & second
