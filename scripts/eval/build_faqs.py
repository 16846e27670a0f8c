"""Build the answer evaluation sets `faqs` and `gitfaq` from FAQ documents installed on this machine.

Each question of an FAQ, word for word, is a query; its gold answer passage is the FAQ's own answer
to it. The corpus is the FAQ files exactly as installed (or, for a man page, as rendered by groff),
so the answerer reads the same hard-wrapped text a user would ingest.

- ``faqs``: the Valgrind FAQ (numbered questions, ``2.1. ...``, answers up to a ``----`` rule) and
  the XZ Utils FAQ (``Q:`` / ``A:`` blocks), from /usr/share/doc.
- ``gitfaq``: gitfaq(7), the Git FAQ man page, whose questions are tagged-paragraph headings with
  the answer indented below them.

    python scripts/eval/build_faqs.py tests/fixtures/eval

writes ``faqs/`` and ``gitfaq/`` under the folder given: ``corpus/`` (the documents),
``queries.jsonl``, ``qrels/test.tsv`` (the FAQ document is the relevant one) and ``answers.jsonl``
(``{"_id": query id, "doc": corpus id, "text": gold answer passage}``).
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VALGRIND_FAQ = Path("/usr/share/doc/valgrind/FAQ.txt.gz")
XZ_FAQ = Path("/usr/share/doc/xz-utils/faq.txt.gz")
GITFAQ = Path("/usr/share/man/man7/gitfaq.7.gz")
_NUMBERED = re.compile(r"^(\d+\.\d+)\.\s+(.*)$")
_RULE = re.compile(r"^-{10,}\s*$")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class QA:
    doc: str
    question: str
    answer: str


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def valgrind(text: str, doc: str) -> list[QA]:
    """Numbered questions run to their first line ending in '?' or ':' (or their paragraph's end);
    the answer runs to the next rule line or numbered question."""
    found: list[QA] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _NUMBERED.match(lines[i])
        if not match:
            i += 1
            continue
        question = [match.group(2)]
        while not question[-1].rstrip().endswith(("?", ":")) and i + 1 < len(lines) and lines[i + 1].strip():
            i += 1
            question.append(lines[i])
        answer: list[str] = []
        i += 1
        while i < len(lines) and not _RULE.match(lines[i]) and not _NUMBERED.match(lines[i]):
            answer.append(lines[i])
            i += 1
        body = "\n".join(answer).strip("\n")
        # An example quoted with the question ("fails with this:") is part of the question, not its answer.
        if question[-1].rstrip().endswith(":"):
            paragraphs = body.split("\n\n")
            while paragraphs and paragraphs[0].startswith((" ", "\t")):
                paragraphs.pop(0)
            body = "\n\n".join(paragraphs)
        if body.strip():
            found.append(QA(doc, _one_line(" ".join(question)), body))
    return found


def xz(text: str, doc: str) -> list[QA]:
    """``Q:`` blocks (continued by indented lines) and the ``A:`` text up to the next question."""
    found: list[QA] = []
    for block in re.split(r"\n(?=Q:)", text)[1:]:
        head, sep, rest = block.partition("\nA:")
        if not sep:
            continue
        question = _one_line(head.removeprefix("Q:"))
        answer = re.split(r"\n\n\n", rest, maxsplit=1)[0]
        found.append(QA(doc, question, answer.strip("\n")))
    return found


def render_man(path: Path) -> str:
    source = gzip.decompress(path.read_bytes())
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-P", "-cbou", "-rLL=100n", "-rHY=0"],
        input=source, capture_output=True, env=env, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.decode("utf-8")


def gitfaq(text: str, doc: str) -> list[QA]:
    """Questions are the lines indented by 7 under a section heading; the answer is indented deeper."""
    found: list[QA] = []
    lines = text.splitlines()
    in_body = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line and not line[0].isspace():
            in_body = line.strip() not in ("NAME", "SYNOPSIS", "DESCRIPTION", "SEE ALSO", "GIT")
            i += 1
            continue
        if not (in_body and re.match(r"^ {7}\S", line)):
            i += 1
            continue
        question = [line]
        while i + 1 < len(lines) and re.match(r"^ {7}\S", lines[i + 1]):
            i += 1
            question.append(lines[i])
        answer: list[str] = []
        i += 1
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(" " * 8)):
            answer.append(lines[i])
            i += 1
        body = "\n".join(answer).strip("\n")
        if body:
            found.append(QA(doc, _one_line(" ".join(question)), body))
    return found


def write_set(out: Path, name: str, documents: dict[str, str], pairs: list[QA], source: str) -> None:
    folder = out / name
    (folder / "corpus").mkdir(parents=True, exist_ok=True)
    (folder / "qrels").mkdir(exist_ok=True)
    for doc, text in documents.items():
        (folder / "corpus" / doc).write_text(text, encoding="utf-8")
    seen: set[str] = set()
    unique = [p for p in pairs if not (p.question.lower() in seen or seen.add(p.question.lower()))]
    with (
        (folder / "queries.jsonl").open("w", encoding="utf-8") as queries,
        (folder / "answers.jsonl").open("w", encoding="utf-8") as answers,
        (folder / "qrels" / "test.tsv").open("w", encoding="utf-8") as qrels,
    ):
        qrels.write("query-id\tcorpus-id\tscore\n")
        for number, pair in enumerate(unique):
            qid = f"q{number:03d}"
            queries.write(json.dumps({"_id": qid, "text": pair.question}, ensure_ascii=False) + "\n")
            answers.write(json.dumps({"_id": qid, "doc": pair.doc, "text": pair.answer}, ensure_ascii=False) + "\n")
            qrels.write(f"{qid}\t{pair.doc}\t1\n")
    (folder / "README.md").write_text(
        f"# {name}\n\nGenerated by `python scripts/eval/build_faqs.py` from {source}, on Python "
        f"{platform.python_version()}.\n\n{len(unique)} questions asked word for word, each with its gold answer "
        "passage (answers.jsonl) and its FAQ as the relevant document. Used by `cairn eval DIR --answers`; "
        "see docs/quality.md.\n"
    )


def main(out: Path) -> None:
    valgrind_text = gzip.decompress(VALGRIND_FAQ.read_bytes()).decode("utf-8")
    xz_text = gzip.decompress(XZ_FAQ.read_bytes()).decode("utf-8")
    documents = {"valgrind-FAQ.txt": valgrind_text, "xz-faq.txt": xz_text}
    pairs = valgrind(valgrind_text, "valgrind-FAQ.txt") + xz(xz_text, "xz-faq.txt")
    write_set(out, "faqs", documents, pairs, f"{VALGRIND_FAQ} and {XZ_FAQ} (Debian packages valgrind, xz-utils)")
    git_text = render_man(GITFAQ)
    write_set(out, "gitfaq", {"gitfaq.txt": git_text}, gitfaq(git_text, "gitfaq.txt"), f"{GITFAQ} rendered by groff")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/eval"))
