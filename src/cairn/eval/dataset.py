"""BEIR-format evaluation sets.

A dataset is a folder holding::

    corpus.jsonl        {"_id": ..., "title": ..., "text": ...} per line   (or a folder corpus/ of files:
                        each file is one document, its id the path relative to corpus/)
    queries.jsonl       {"_id": ..., "text": ...} per line
    qrels/<split>.tsv   query-id <TAB> corpus-id <TAB> score, with a header line
    answers.jsonl       optional, for `cairn eval --answers`: {"_id": query id, "doc": corpus id,
                        "text": the gold answer passage} per line

Only queries with at least one relevant document (score > 0) in the corpus are evaluated.

Halves: every query belongs to the *tune* or the *held-out* half of its set, by the first byte of
the SHA-256 of its id (even: tune, odd: held-out). The split depends on the id alone, so it is the
same on every machine and run, and adding queries never moves an old one. Defaults are chosen on
the tune halves and reported on the held-out halves (docs/quality.md).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cairn.errors import InvalidRequest

__all__ = ["HALVES", "EvalDataset", "half_of", "load_dataset"]

HALVES = ("tune", "held-out")


def half_of(query_id: str) -> str:
    """The half (``tune`` or ``held-out``) that *query_id* belongs to; stable across runs and machines."""
    return HALVES[hashlib.sha256(query_id.encode("utf-8")).digest()[0] & 1]


@dataclass(frozen=True)
class CorpusDocument:
    """One document of a JSONL corpus."""

    doc_id: str
    title: str
    text: str

    def as_text(self) -> str:
        return f"{self.title}\n\n{self.text}" if self.title else self.text


@dataclass
class EvalDataset:
    """Queries, their graded relevant documents, and the corpus (JSONL records or a folder of files)."""

    name: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    documents: list[CorpusDocument] = field(default_factory=list)
    corpus_dir: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)  # query id -> gold answer passage

    @property
    def corpus_size(self) -> int:
        return len(self.files) if self.corpus_dir is not None else len(self.documents)

    def doc_ids(self) -> list[str]:
        return list(self.files) if self.corpus_dir is not None else [d.doc_id for d in self.documents]

    def half(self, name: str) -> EvalDataset:
        """The queries of one half (``tune`` or ``held-out``, see `half_of`) over the whole corpus."""
        if name not in HALVES:
            raise InvalidRequest(f"unknown half {name!r}; choose from {', '.join(HALVES)}")
        chosen = [q for q in self.queries if half_of(q) == name]
        return EvalDataset(
            name=self.name,
            queries={q: self.queries[q] for q in chosen},
            qrels={q: self.qrels[q] for q in chosen},
            documents=self.documents,
            corpus_dir=self.corpus_dir,
            files=self.files,
            answers={q: a for q, a in self.answers.items() if half_of(q) == name},
        )

    def subset(self, *, queries: int | None = None, documents: int | None = None) -> EvalDataset:
        """The first *queries* queries (by id) and a corpus of their relevant documents filled up to
        *documents* with the others, in corpus order. For quick runs and smoke tests."""
        chosen = sorted(self.queries)[:queries] if queries is not None else sorted(self.queries)
        needed = {doc for q in chosen for doc, grade in self.qrels[q].items() if grade > 0}
        keep = [d for d in self.doc_ids() if d in needed]
        room = max((documents or self.corpus_size) - len(keep), 0)
        keep += [d for d in self.doc_ids() if d not in needed][:room]
        kept = set(keep)
        qrels = {q: {d: g for d, g in self.qrels[q].items() if d in kept} for q in chosen}
        return EvalDataset(
            name=self.name,
            queries={q: self.queries[q] for q in chosen},
            qrels=qrels,
            documents=[d for d in self.documents if d.doc_id in kept],
            corpus_dir=self.corpus_dir,
            files={d: p for d, p in self.files.items() if d in kept},
            answers={q: a for q, a in self.answers.items() if q in qrels},
        )


def _jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"{path}:{number} is not JSON: {exc}") from exc
            if not isinstance(record, dict) or "_id" not in record:
                raise InvalidRequest(f'{path}:{number} needs an object with an "_id"')
            yield record


def _qrels_file(root: Path, split: str | None) -> Path:
    folder = root / "qrels"
    found = sorted(folder.glob("*.tsv")) if folder.is_dir() else []
    if split is not None:
        wanted = folder / f"{split}.tsv"
        if not wanted.is_file():
            raise InvalidRequest(f"no qrels split {split!r} in {folder}; found {[p.stem for p in found]}")
        return wanted
    if not found:
        raise InvalidRequest(f"no qrels/*.tsv under {root}; a BEIR dataset needs qrels/test.tsv")
    return next((p for p in found if p.stem == "test"), found[0]) if len(found) > 1 else found[0]


def _read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as rows:
        for number, row in enumerate(csv.reader(rows, delimiter="\t"), start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) < 3:
                raise InvalidRequest(f"{path}:{number}: expected query-id, corpus-id and score")
            try:
                grade = int(float(row[2]))
            except ValueError as exc:
                raise InvalidRequest(f"{path}:{number}: the score {row[2]!r} is not a number") from exc
            qrels.setdefault(row[0], {})[row[1]] = grade
    return qrels


def load_dataset(root: Path, *, split: str | None = None) -> EvalDataset:
    """Read a BEIR-format dataset folder; say exactly what is missing or malformed."""
    root = root.expanduser()
    if not root.is_dir():
        raise InvalidRequest(f"{root} is not a folder; a BEIR dataset is a folder with corpus, queries and qrels")
    documents: list[CorpusDocument] = []
    files: dict[str, Path] = {}
    corpus_dir: Path | None = None
    if (root / "corpus.jsonl").is_file():
        for record in _jsonl(root / "corpus.jsonl"):
            documents.append(
                CorpusDocument(str(record["_id"]), str(record.get("title") or ""), str(record.get("text") or ""))
            )
    elif (root / "corpus").is_dir():
        corpus_dir = (root / "corpus").resolve()
        files = {p.relative_to(corpus_dir).as_posix(): p for p in sorted(corpus_dir.rglob("*")) if p.is_file()}
    else:
        raise InvalidRequest(f"no corpus.jsonl or corpus/ folder in {root}")
    if not (root / "queries.jsonl").is_file():
        raise InvalidRequest(f"no queries.jsonl in {root}")
    queries = {str(r["_id"]): str(r.get("text") or "") for r in _jsonl(root / "queries.jsonl")}
    known = set(files) if corpus_dir is not None else {d.doc_id for d in documents}
    qrels = {
        q: judged
        for q, grades in _read_qrels(_qrels_file(root, split)).items()
        if q in queries and queries[q].strip()
        if (judged := {d: g for d, g in grades.items() if d in known}) and any(g > 0 for g in judged.values())
    }
    if not qrels:
        raise InvalidRequest(f"no query in {root} has a relevant document in the corpus; check the qrels ids")
    answers = (
        {str(r["_id"]): str(r.get("text") or "") for r in _jsonl(root / "answers.jsonl")}
        if (root / "answers.jsonl").is_file()
        else {}
    )
    return EvalDataset(
        name=root.name,
        queries={q: queries[q] for q in sorted(qrels)},
        qrels=qrels,
        documents=documents,
        corpus_dir=corpus_dir,
        files=files,
        answers={q: answers[q] for q in sorted(qrels) if answers.get(q, "").strip()},
    )
