"""`cairn worker`: a process that runs the catalog's jobs (uploads taken by any `cairn serve` replica)."""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Annotated

import typer

from cairn.cli.output import console, errors_reported


def worker(
    lease: Annotated[
        float, typer.Option("--lease", min=5.0, help="Seconds a job stays held without a heartbeat.")
    ] = 30.0,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between looks for new jobs.")] = 1.0,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit once no job is waiting, instead of waiting for more.")
    ] = False,
) -> None:
    """Run ingest jobs from the catalog until stopped (SIGTERM or Ctrl-C: after the current job; twice: at once).

    Any number of workers may run against one catalog; each job is held by one of them at a time, and
    the job of a worker that dies is run again by another.
    """
    from cairn.core import Cairn
    from cairn.jobs import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with errors_reported(as_json=False), Cairn() as cairn:
        running = Worker(cairn, lease_s=lease, poll_s=poll)

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if running.stopping:
                raise SystemExit(128 + signum)  # the job's lease lapses; another worker runs it again
            console.print("stopping after the current job (signal again to stop now)")
            running.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        console.print(f"cairn worker {running.name} on {cairn.catalog.describe()}")
        ran = running.run(until_idle=until_idle)
        console.print(f"stopped after {ran} job{'' if ran == 1 else 's'}")
