"""Build the `manpages` evaluation set from the manual pages installed on this machine.

A man page's NAME line (``ls - list directory contents``) is the *query* (the part after the
dash); the document is the command's name followed by the rest of the page as rendered by groff,
with the NAME section removed. Sections 1 (user commands) and 8 (administration) are used.

    python scripts/eval/build_manpages.py tests/fixtures/eval/manpages

A second set of the same kind from other pages, for checking that what was tuned on `manpages`
generalises (none of its pages is in the first set's corpus):

    python scripts/eval/build_manpages.py tests/fixtures/eval/manpages2 --exclude tests/fixtures/eval/manpages
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
from pathlib import Path

from beir_writer import SEED, Candidate, cap, sample_and_write, unique_queries

MAN_DIRS = (Path("/usr/share/man/man1"), Path("/usr/share/man/man8"))
RENDERED = 2000  # pages rendered (a seeded sample); enough to keep 1000 after filtering
MAX_CHARS = 1500
_HEADING = re.compile(r"^[A-Z][A-Z0-9 ,/&()-]*$")
_DASH = re.compile(r"\s+[-\u2010\u2012\u2013\u2014\u2212]+\s+")


def _pages() -> list[Path]:
    """Real page files (not symlinked aliases, not `.so` redirects), sorted."""
    pages: list[Path] = []
    for folder in MAN_DIRS:
        for path in sorted(folder.glob("*.gz")):
            if path.is_symlink():
                continue
            with gzip.open(path, "rb") as f:
                head = f.read(200)
            if head.lstrip().startswith(b".so "):
                continue
            pages.append(path)
    return pages


def _render(path: Path) -> str:
    source = gzip.decompress(path.read_bytes())
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "100"}
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-P", "-cbou", "-rLL=100n", "-rHY=0"],
        input=source, capture_output=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    return result.stdout.decode("utf-8", "replace")


def _sections(text: str) -> list[tuple[str, list[str]]]:
    lines = text.splitlines()[1:-1]  # groff's header and footer lines
    sections: list[tuple[str, list[str]]] = []
    for line in lines:
        if line and not line[0].isspace() and _HEADING.match(line.strip()):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line.strip())
    return sections


def _paragraphs(lines: list[str]) -> str:
    return "\n\n".join(" ".join(block.split()) for block in "\n".join(lines).split("\n\n") if block.strip())


def _candidate(path: Path) -> Candidate | None:
    sections = _sections(_render(path))
    if not sections or sections[0][0] != "NAME":
        return None
    name_line = " ".join(" ".join(sections[0][1]).split())
    parts = _DASH.split(name_line, maxsplit=1)
    if len(parts) != 2:
        return None
    names, summary = parts[0].strip(), parts[1].strip()
    body = "\n\n".join(f"{title}\n\n{_paragraphs(lines)}" for title, lines in sections[1:] if _paragraphs(lines))
    if not 3 <= len(summary.split()) <= 20 or len(body) < 200:
        return None
    page = path.name.removesuffix(".gz")
    return Candidate(doc_id=page, title=names, text=cap(body, MAX_CHARS), query=summary)


def collect(exclude: frozenset[str] = frozenset()) -> list[Candidate]:
    pages = [path for path in _pages() if path.name.removesuffix(".gz") not in exclude]
    rng = random.Random(SEED)
    chosen = sorted(rng.sample(pages, min(RENDERED, len(pages))))
    found = [c for path in chosen if (c := _candidate(path)) is not None]
    return unique_queries(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, nargs="?", default=Path("tests/fixtures/eval/manpages"))
    parser.add_argument("--exclude", type=Path, help="a set whose corpus pages this one must not use")
    args = parser.parse_args()
    exclude: frozenset[str] = frozenset()
    source = "the manual pages in /usr/share/man/man1 and man8 (Debian), rendered by groff"
    method = "python scripts/eval/build_manpages.py"
    if args.exclude is not None:
        with (args.exclude / "corpus.jsonl").open(encoding="utf-8") as f:
            exclude = frozenset(json.loads(line)["_id"] for line in f)
        source += f", none of them in {args.exclude.name}'s corpus"
        method += f" --exclude {args.exclude}"
    sample_and_write(
        collect(exclude), args.out, documents=1000, queries=250, source=source, method=method
    )  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
