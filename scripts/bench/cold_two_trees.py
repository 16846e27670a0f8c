"""Two source trees' cold `cairn ingest` in one run: each at its own defaults, alternated, same corpus.

How docs/benchmarks.md compares a change with the commit before it (a ratio from one run, not two days):

    git worktree add --detach /tmp/before HEAD~1
    python scripts/bench/cold_two_trees.py /tmp/cairn-manpages /tmp/before/src src \
        --out docs/benchmarks/cold-before-after.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from cairn.bench.cold import cold_ingest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("before", type=Path, help="the src/ folder of the older tree")
    parser.add_argument("after", type=Path, help="the src/ folder of the newer tree")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    for name in [name for name in os.environ if name.startswith("CAIRN_")]:
        del os.environ[name]  # each tree at its own defaults
    result: dict[str, list[dict[str, object]]] = {"before": [], "after": []}
    for _ in range(args.runs):
        for label in ("before", "after"):
            with tempfile.TemporaryDirectory(prefix="cairn-cold-") as home:
                source = str(getattr(args, label).resolve())
                result[label].append(cold_ingest(args.corpus, Path(home), {"PYTHONPATH": source}))
            print(label, result[label][-1]["wall_s"], file=sys.stderr, flush=True)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
