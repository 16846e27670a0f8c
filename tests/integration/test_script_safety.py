"""The Python API in a plain script: cairn's workers never run the user's ``__main__`` again.

Each case runs in a real Python subprocess, as a user would: the README's example verbatim as a
script without a main guard, through ``python -c``, under ``python -m`` and as a notebook cell (code
``exec``-ed into a ``__main__`` without ``__file__``). The example is wrapped in a prologue that
appends this process's id to a file each time the module runs, and an epilogue that prints what it
found: a worker process that ran the user's module again would add a line (and, as before the fix,
open the same Milvus Lite database and fail). The corpus is large enough to start every kind of
worker: the parser pool (every file) and the document embedding worker (after 64 texts).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from multiprocessing import spawn
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn._spawn import MAIN_MODULE_KEYS, _main_module_withheld
from cairn.embed.local import WORKER_START_AFTER

pytestmark = pytest.mark.integration

README = Path(__file__).parents[2] / "README.md"
SOURCE_ROOT = str(Path(cairn.__file__).parents[1])  # this checkout's code, in every subprocess
NOTES = 20  # 4 chunks each (a title and three sections): 80 texts, past WORKER_START_AFTER

PROLOGUE = """\
import os as _os
with open(_os.environ["CAIRN_TEST_MAIN_RUNS"], "a") as _runs:  # one line per process running this module
    _runs.write(f"{_os.getpid()}\\n")
"""

EPILOGUE = """
import json as _json
_started_by_ingest = cairn.embedder.worker_pid
cairn.embedder.start_worker(wait=True)  # let the worker the ingest started finish starting
cairn.embedder.embed_documents(["a batch for the worker"])  # a worker that failed to start is dropped here
print("RESULT " + _json.dumps({
    "ingested": report.ingested,
    "chunks": report.chunks,
    "failed": [f.error for f in report.failed],
    "hits": [h.source for h in hits],
    "answer": answer.answer,
    "citations": [c.location.label for c in answer.citations],
    "worker_started_by_ingest": _started_by_ingest,
    "worker_after_a_batch": cairn.embedder.worker_pid,
}))
"""

NOTEBOOK_KERNEL = """\
import sys, types
cell_namespace = types.ModuleType("__main__")  # what a notebook kernel runs cells in: no __file__, no spec
sys.modules["__main__"] = cell_namespace
exec(compile(open(sys.argv[1]).read(), "<cell 1>", "exec"), cell_namespace.__dict__)
"""

START_WORKERS = """\
import multiprocessing, os
with open(os.environ["CAIRN_TEST_MAIN_RUNS"], "a") as runs:
    runs.write(f"{os.getpid()}\\n")
from cairn._spawn import forkserver_context, spawn_context
if os.environ["CONTEXTS"] == "cairn":
    contexts = [forkserver_context(), spawn_context()]
else:
    contexts = [multiprocessing.get_context("forkserver"), multiprocessing.get_context("spawn")]
for context in contexts:
    worker = context.Process(target=os.getpid)
    worker.start()
    worker.join()
    print("exitcode", worker.exitcode)
"""


def readme_example() -> str:
    """The README's Python example, exactly as written there."""
    section = README.read_text().split("From Python, the same operations", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None, "README.md has no python code block after 'From Python, the same operations'"
    return found.group(1)


def _corpus(folder: Path) -> None:
    folder.mkdir()
    for n in range(NOTES):
        (folder / f"station-{n:02d}.md").write_text(
            f"# Station {n}\n\n## Pumps\n\nPump {n} is serviced every {n + 2} weeks by crew {n % 5}.\n\n"
            f"## Valves\n\nValve {n} is checked monthly and replaced after {n + 3} years.\n\n"
            f"## Filters\n\nFilter {n} is cleaned every {n + 4} days.\n"
        )
    (folder / "battery.md").write_text(
        "# Batteries\n\nIf a lithium battery swells, move it to the fireproof bin outside.\n"
    )


def _run(
    args: list[str], cwd: Path, *, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``python *args`` in *cwd* with its own CAIRN_HOME; return the completed process and the module's runs."""
    runs = cwd / "main-runs.txt"
    env = {
        **os.environ,  # already without the developer's CAIRN_* (tests/conftest.py)
        "CAIRN_HOME": str(cwd / "home"),
        "CAIRN_TEST_MAIN_RUNS": str(runs),
        "PYTHONPATH": os.pathsep.join(p for p in (SOURCE_ROOT, os.environ.get("PYTHONPATH")) if p),
        **(extra_env or {}),
    }
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    return done, runs.read_text().split() if runs.exists() else []


def _launch(how: str, script: str, work: Path) -> list[str]:
    """The arguments that run *script* from *work* as a file, ``-c``, ``-m`` or a notebook cell."""
    if how == "script":
        (work / "example.py").write_text(script)
        return ["example.py"]
    if how == "command":
        return ["-c", script]
    if how == "module":
        package = work / "readme_pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "example.py").write_text(script)
        return ["-m", "readme_pkg.example"]
    (work / "kernel.py").write_text(NOTEBOOK_KERNEL)
    (work / "cell.py").write_text(script)
    return ["kernel.py", "cell.py"]


LAUNCHES = ["script", "command", "module", "notebook"]


@pytest.mark.slow
@pytest.mark.parametrize("how", LAUNCHES)
def test_the_readme_example_runs_verbatim_and_finds_its_documents(how: str, tmp_path: Path) -> None:
    """Ingested through the parser pool and the embedding worker, with the user's module run exactly once."""
    _corpus(tmp_path / "docs")
    done, runs = _run(_launch(how, PROLOGUE + readme_example() + EPILOGUE, tmp_path), tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert len(runs) == 1, f"the example's module ran in {len(runs)} processes: {done.stderr}"
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["failed"] == []
    assert result["ingested"] == NOTES + 1
    assert result["chunks"] == NOTES * 4 + 1 > WORKER_START_AFTER
    assert result["hits"][0].endswith("battery.md")
    assert "fireproof bin" in result["answer"]
    assert result["citations"]
    # The ingest started the embedding worker, and the worker started (a failed start is dropped).
    assert result["worker_started_by_ingest"] is not None
    assert result["worker_after_a_batch"] == result["worker_started_by_ingest"]


@pytest.mark.parametrize("how", ["script", "module"])
def test_cairns_worker_contexts_start_processes_that_do_not_run_main(how: str, tmp_path: Path) -> None:
    """Both contexts' processes start and exit cleanly from a guardless script or module, which runs once."""
    done, runs = _run(_launch(how, START_WORKERS, tmp_path), tmp_path, extra_env={"CONTEXTS": "cairn"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["exitcode", "0", "exitcode", "0"]
    assert done.stderr == ""
    assert len(runs) == 1


def test_without_cairns_contexts_a_guardless_script_runs_again_in_each_worker(tmp_path: Path) -> None:
    """The stdlib contexts run the script again in every child: the defect the tests above would catch."""
    done, runs = _run(_launch("script", START_WORKERS, tmp_path), tmp_path, extra_env={"CONTEXTS": "stdlib"})
    assert len(runs) > 1
    assert "bootstrapping phase" in done.stderr  # the re-run script tried to start a process itself


def test_only_the_thread_starting_a_cairn_worker_leaves_the_main_module_out() -> None:
    """Other threads, and this one before and after, still hand their children the main module."""
    seen_by_another_thread: dict[str, Any] = {}
    with _main_module_withheld():
        for_cairns_worker = spawn.get_preparation_data("worker")
        other = threading.Thread(target=lambda: seen_by_another_thread.update(spawn.get_preparation_data("x")))
        other.start()
        other.join()
    afterwards = spawn.get_preparation_data("worker")
    # pytest's own main module (a script or ``python -m pytest``) is what a user's child would get.
    assert set(MAIN_MODULE_KEYS) & afterwards.keys()
    assert set(MAIN_MODULE_KEYS) & seen_by_another_thread.keys()
    assert not set(MAIN_MODULE_KEYS) & for_cairns_worker.keys()


EMPTY_AND_MISSING = """\
import json, logging, pathlib
logging.basicConfig(level=logging.WARNING)  # an engine error logged anywhere reaches stderr
from cairn import Cairn
from cairn.errors import NotFound
cairn = Cairn()
cairn.ingest(["empty/"], collection="empty")  # creates the collection, with no documents
cairn.ingest(["one/"], collection="emptied")
cairn.remove_documents([str(pathlib.Path("one/battery.md").resolve())], collection="emptied")
found = {
    f"{name}/{mode}": [h.source for h in cairn.search("swollen battery", collection=name, mode=mode).hits]
    for name in ("empty", "emptied") for mode in ("hybrid", "keyword", "dense")
}
try:
    cairn.search("swollen battery", collection="missing")
except NotFound as exc:
    found["missing"] = str(exc)
print("RESULT " + json.dumps(found))
"""


def test_searching_an_empty_collection_is_quiet_and_a_missing_one_is_not_found(tmp_path: Path) -> None:
    """No hits and nothing logged for a collection without documents (never had, or all removed); NotFound else."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "battery.md").write_text("# Batteries\n\nA swollen battery goes to the fireproof bin.\n")
    (tmp_path / "search.py").write_text(EMPTY_AND_MISSING)
    done, _ = _run(["search.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    for noise in ("Traceback", "ERROR", "NaN or Inf", "isfinite"):
        assert noise not in done.stderr, done.stderr
    found = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert found.pop("missing") == (
        "no collection 'missing'; ingest documents into it first (cairn ingest PATH --collection missing)"
    )
    assert found == {f"{name}/{mode}": [] for name in ("empty", "emptied") for mode in ("hybrid", "keyword", "dense")}
