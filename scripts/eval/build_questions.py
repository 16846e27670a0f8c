"""Build the retrieval set `faqquestions`: questions people ask, each answered by one FAQ passage.

Unlike `pydoc` and `manpages` (a page found from a description of it), the queries here are the
questions of real FAQs installed on this machine, word for word, and the relevant document is the
passage that answers one question. The question itself is not in the corpus: each document is an
answer alone, titled with its FAQ's name, so keyword search cannot simply match the question line.

Sources (none written by the cairn team): the lsof FAQ (``/usr/share/doc/lsof/00FAQ.gz``, numbered
questions), the zlib FAQ, the Valgrind and XZ Utils FAQs and gitfaq(7) (parsed as in
``build_faqs.py``). Answers are capped at 1,500 characters like the other sets; a question that
still occurs verbatim in its answer, or that two FAQs share, is not asked.

    python scripts/eval/build_questions.py tests/fixtures/eval/faqquestions
"""

from __future__ import annotations

import gzip
import re
import sys
import textwrap
from pathlib import Path

from beir_writer import Candidate, cap, sample_and_write, unique_queries
from build_faqs import GITFAQ, QA, VALGRIND_FAQ, XZ_FAQ, gitfaq, render_man, valgrind, xz

LSOF_FAQ = Path("/usr/share/doc/lsof/00FAQ.gz")
ZLIB_FAQ = Path("/usr/share/doc/zlib1g-dev/FAQ.gz")
LIMIT = 1500
_LSOF_HEADING = re.compile(r"^(\d+(?:\.\d+)+)\s+(\S.*)$")
_ZLIB_QUESTION = re.compile(r"^ ?(\d+)\.\s+(\S.*)$")
_SPACE = re.compile(r"\s+")


def _read(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def numbered(text: str, doc: str, heading: re.Pattern[str]) -> list[tuple[str, QA]]:
    """Numbered headings whose text (with its continuation lines) is a question; the answer runs to
    the next heading. A table of contents repeats the numbers without answers: the last entry with
    an answer wins."""
    lines = text.splitlines()
    found: dict[str, QA] = {}
    i = 0
    while i < len(lines):
        match = heading.match(lines[i])
        if not match:
            i += 1
            continue
        question = [match.group(2)]
        while i + 1 < len(lines) and lines[i + 1].strip() and not heading.match(lines[i + 1]):
            i += 1
            question.append(lines[i])
        answer: list[str] = []
        i += 1
        while i < len(lines) and not heading.match(lines[i]):
            answer.append(lines[i])
            i += 1
        body = textwrap.dedent("\n".join(answer).expandtabs(8)).strip("\n")
        asked = _one_line(" ".join(question))
        if asked.endswith("?") and len(body) >= 40:
            found[match.group(1)] = QA(f"{doc}-{match.group(1)}", asked, body)
    return sorted(found.items())


def candidates() -> list[Candidate]:
    sources: list[tuple[str, list[QA]]] = [
        ("lsof FAQ", [qa for _, qa in numbered(_read(LSOF_FAQ), "lsof", _LSOF_HEADING)]),
        ("zlib FAQ", [qa for _, qa in numbered(_read(ZLIB_FAQ), "zlib", _ZLIB_QUESTION)]),
        ("Valgrind FAQ", valgrind(_read(VALGRIND_FAQ), "valgrind")),
        ("XZ Utils FAQ", xz(_read(XZ_FAQ), "xz")),
        ("Git FAQ", gitfaq(render_man(GITFAQ), "git")),
    ]
    found: list[Candidate] = []
    for title, pairs in sources:
        for number, qa in enumerate(pairs):
            doc_id = qa.doc if qa.doc not in ("valgrind", "xz", "git") else f"{qa.doc}-{number:03d}"
            text = cap(textwrap.dedent(qa.answer).strip(), LIMIT)
            found.append(Candidate(doc_id=doc_id, title=title, text=text, query=qa.question))
    return unique_queries(found)


def main(out: Path) -> None:
    found = candidates()
    sample_and_write(
        found,
        out,
        documents=len(found),
        queries=len(found),
        source=f"{LSOF_FAQ}, {ZLIB_FAQ}, {VALGRIND_FAQ}, {XZ_FAQ} and {GITFAQ} (rendered by groff)",
        method="python scripts/eval/build_questions.py",
    )
    readme = out / "README.md"
    readme.write_text(
        readme.read_text()
        + "\nEach query is an FAQ question word for word; its one relevant document is the passage that "
        "answers it, titled with the FAQ's name. The questions are not in the corpus.\n"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/eval/faqquestions"))
