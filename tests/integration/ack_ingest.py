"""Test harness process for the kill tests: ingest a folder and print an ``ACK <path>`` line per
acknowledged document, flushed at once, so the parent test knows what was acknowledged before it
kills this process. Real Cairn, real vault store, real Milvus Lite; configured by CAIRN_* and AWS_*.

    python tests/integration/ack_ingest.py CORPUS
"""

from __future__ import annotations

import sys

from cairn import Cairn
from cairn.ingest import IngestProgress


def main() -> None:
    def acknowledge(step: IngestProgress) -> None:
        if step.outcome == "ingested":
            print(f"ACK {step.path}", flush=True)

    with Cairn() as cairn:
        report = cairn.ingest([sys.argv[1]], progress=acknowledge)
    print(f"DONE {report.ingested}", flush=True)


if __name__ == "__main__":
    main()
