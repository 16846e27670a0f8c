"""Build the cold-ingest corpus: real manual pages, one plain-text file each.

Pages are a seeded sample of the real section-1 pages installed on this machine (no symlinked aliases, no
``.so`` redirects, and not the ~16,000 generated ``gcloud`` pages, which would crowd out every other tool),
rendered by groff at 80 columns as ``man`` shows them: hard-wrapped lines, headings, option lists. The same
seed and the same installed pages give the same corpus.

    python scripts/bench/build_manpages.py /tmp/cairn-manpages --pages 150
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import subprocess
from pathlib import Path

SEED = 18
MAN_DIR = Path("/usr/share/man/man1")


def real_pages() -> list[Path]:
    pages = []
    for path in sorted(MAN_DIR.glob("*.gz")):
        if path.is_symlink() or path.name.startswith("gcloud"):
            continue
        with gzip.open(path, "rb") as f:
            if f.read(200).lstrip().startswith(b".so "):
                continue
        pages.append(path)
    return pages


def render(path: Path) -> str:
    env = {**os.environ, "LC_ALL": "C.UTF-8", "MANWIDTH": "80"}
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-P", "-cbou", "-rLL=80n"],
        input=gzip.decompress(path.read_bytes()), capture_output=True, env=env, timeout=30, check=False,
    )  # fmt: skip
    return result.stdout.decode("utf-8", "replace")


def build(out: Path, pages: int) -> tuple[int, int]:
    out.mkdir(parents=True, exist_ok=True)
    candidates = real_pages()
    chosen = sorted(random.Random(SEED).sample(candidates, min(len(candidates), pages * 2)))
    written = total = 0
    for path in chosen:
        if written == pages:
            break
        text = render(path)
        if len(text) < 500:  # an empty or stub page
            continue
        (out / (path.name.removesuffix(".gz") + ".txt")).write_text(text, encoding="utf-8")
        written += 1
        total += len(text)
    return written, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=150)
    args = parser.parse_args()
    written, total = build(args.out, args.pages)
    print(f"{written} man pages, {total} characters in {args.out}")


if __name__ == "__main__":
    main()
