"""Build the ingest-benchmark corpus: the Python standard library's documentation, one text page per module.

Real prose and reference text, deterministic for one Python version, readable by every peer without a
parser (plain ``.txt``): each page is ``pydoc``'s plain-text rendering of one stdlib module. Modules are
taken in name order until ``--max-bytes`` is reached; pages longer than ``--max-page-bytes`` are cut at
a line boundary so that no single module dominates.

    python scripts/bench/build_corpus.py /tmp/cairn-bench-corpus --max-bytes 500000
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import pydoc
import sys
import warnings
from pathlib import Path

MODULES = [
    "abc", "argparse", "array", "base64", "bisect", "calendar", "cmath", "codecs", "collections",
    "colorsys", "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "enum", "filecmp", "fileinput", "fnmatch", "fractions", "functools", "getopt", "gettext",
    "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html", "imaplib", "ipaddress", "itertools",
    "json", "keyword", "linecache", "locale", "logging", "lzma", "math", "mimetypes", "numbers",
    "operator", "optparse", "os", "pathlib", "pickle", "pprint", "queue", "random", "re", "reprlib",
    "sched", "secrets", "selectors", "shelve", "shlex", "shutil", "signal", "smtplib", "socket",
    "sqlite3", "statistics", "string", "struct", "subprocess", "tarfile", "tempfile", "textwrap",
    "threading", "time", "timeit", "tokenize", "trace", "traceback", "types", "typing", "unicodedata",
    "urllib.parse", "uuid", "warnings", "weakref", "wave", "xml.dom.minidom", "zipfile", "zlib",
]  # fmt: skip


def render(name: str) -> str:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        module = importlib.import_module(name)
        return pydoc.render_doc(module, "Help on %s:", renderer=pydoc.plaintext)


def build(out: Path, *, max_bytes: int, max_page_bytes: int) -> tuple[int, int]:
    out.mkdir(parents=True, exist_ok=True)
    total = pages = 0
    for name in MODULES:
        if total >= max_bytes:
            break
        text = render(name)
        if len(text) > max_page_bytes:
            text = text[: text.rfind("\n", 0, max_page_bytes) + 1]
        text = text[: max_bytes - total] if total + len(text) > max_bytes else text
        (out / f"{name}.txt").write_text(text, encoding="utf-8")
        total += len(text)
        pages += 1
    return pages, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--max-bytes", type=int, default=500_000, help="Characters in the whole corpus.")
    parser.add_argument("--max-page-bytes", type=int, default=8_000, help="Characters of one module's page.")
    args = parser.parse_args()
    pages, total = build(args.out, max_bytes=args.max_bytes, max_page_bytes=args.max_page_bytes)
    print(f"{pages} pages, {total} characters (Python {sys.version.split()[0]}) in {args.out}")


if __name__ == "__main__":
    main()
