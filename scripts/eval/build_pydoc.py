"""Build the `pydoc` evaluation set from the Python standard library's own docstrings.

Each public module-level function, class and method of a stdlib module with a real docstring is a
candidate. Its docstring's summary (the first paragraph) becomes the *query*; the document is the
object's qualified name and signature followed by the rest of the docstring, with the summary
removed, so a query is never a verbatim sentence of its answer.

    python scripts/eval/build_pydoc.py tests/fixtures/eval/pydoc
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
import re
import sys
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from beir_writer import Candidate, cap, sample_and_write, unique_queries

# Modules whose import has effects (opens a browser, starts a GUI, prints) or that are internal tooling.
SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "pydoc_data", "ensurepip",
        "lib2to3", "venv", "__hello__", "__phello__", "xxsubtype", "xxlimited", "msilib", "winreg", "winsound",
        "nt", "_winapi", "msvcrt", "test", "unittest", "idle"}  # fmt: skip
_SIGNATURE_LIKE = re.compile(r"^[\w.]+\(.*\)")
MAX_CHARS = 1500


def _split(doc: str) -> tuple[str, str]:
    """(summary paragraph as one line, the rest of the docstring)."""
    parts = doc.strip().split("\n\n", 1)
    summary = " ".join(parts[0].split())
    return summary, parts[1].strip() if len(parts) > 1 else ""


def _signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""


def _candidate(qualname: str, obj: object) -> Candidate | None:
    doc = inspect.getdoc(obj)
    if not doc:
        return None
    summary, body = _split(doc)
    words = summary.split()
    if not 4 <= len(words) <= 40 or _SIGNATURE_LIKE.match(summary) or len(body) < 100:
        return None
    return Candidate(doc_id=qualname, title=f"{qualname}{_signature(obj)}", text=cap(body, MAX_CHARS), query=summary)


def _members(module: object, name: str) -> list[Candidate]:
    found: list[Candidate] = []
    for attr, obj in sorted(vars(module).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) != name:
            continue
        if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)):
            continue
        if (c := _candidate(f"{name}.{attr}", obj)) is not None:
            found.append(c)
        if inspect.isclass(obj):
            for method, value in sorted(vars(obj).items()):
                if method.startswith("_") or not callable(value):
                    continue
                if (c := _candidate(f"{name}.{attr}.{method}", value)) is not None:
                    found.append(c)
    return found


def _import(name: str) -> object | None:
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # a module that cannot import on this machine is simply not in the set
        return None


def _module_names() -> list[str]:
    """Public stdlib modules and the public submodules of stdlib packages (email.message, ...)."""
    names: set[str] = set()
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in SKIP or (module := _import(name)) is None:
            continue
        names.add(name)
        for info in pkgutil.walk_packages(getattr(module, "__path__", []), prefix=f"{name}."):
            parts = info.name.split(".")
            if not any(p.startswith("_") or p in SKIP or p.startswith("test") for p in parts):
                names.add(info.name)
    return sorted(names)


def collect() -> list[Candidate]:
    candidates: list[Candidate] = []
    for name in _module_names():
        if (module := _import(name)) is not None:
            candidates.extend(_members(module, name))
    # Identical bodies (aliases, shared docstrings) would make two documents equally right.
    by_text: dict[str, int] = {}
    for c in candidates:
        by_text[c.text] = by_text.get(c.text, 0) + 1
    return unique_queries([c for c in candidates if by_text[c.text] == 1])


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/eval/pydoc")
    sample_and_write(
        collect(), out, documents=1200, queries=250,
        source="the docstrings of the Python standard library (inspect.getdoc)",
        method="python scripts/eval/build_pydoc.py",
    )  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
