"""`cairn.Client` against a real `cairn serve`: the same answers, types and errors as `Cairn` on the same home.

One `cairn serve` process runs for the module over a CAIRN_HOME that a local `Cairn` filled first. Milvus Lite
admits one process at a time, so the local `Cairn` runs in a process of its own, answers the same calls (as the
reader's key) and exits before the service starts; the client's answers must then equal those, record for record.
Uploads go through the client, readable only by the editor that made them, so the reader's view stays what the
local `Cairn` saw.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cairn import Answer, Client, DocumentInfo, IngestReport, SearchResult
from cairn.client import error_from_response
from cairn.errors import (
    CairnError,
    CatalogError,
    ConfigError,
    Forbidden,
    GenerationError,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    ParseError,
    RateLimited,
    StorageError,
    Unauthenticated,
)
from cairn.jobs import Job

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TENANT = "acme"
LEAVE = "How many days of paid parental leave do employees get?"
BATTERY = "What to do when a lithium battery swells?"
MERGER = "When does the merger with Globex close?"
DOCS = {
    "leave.md": "# Leave policy\n\n## Parental leave\n\nEmployees receive 120 days of paid parental leave.\n\n"
    "## Sick leave\n\nSick leave is 15 days per year and needs a note after three days.\n",
    "batteries.txt": "Battery handling\n\nIf a lithium battery swells, move it to the fireproof bin outside.\n\n"
    "Charge batteries only on the steel shelf in the workshop.\n",
    "api.html": "<html><body><h1>Atlas API</h1><h2>Regions</h2><p>Atlas serves from Frankfurt and Sydney.</p>"
    "</body></html>",
}


@dataclass
class Expected:
    """What the local `Cairn` answered the reader's key, on the home the service then serves."""

    search: SearchResult
    keyword: SearchResult
    answer: Answer
    names: list[str]
    documents: list[DocumentInfo]


@dataclass
class Service:
    url: str
    admin: str
    editor: str
    editor_id: str
    reader: str
    docs: Path
    expected: Expected
    work: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`cairn serve` in its own process group, once it answers /healthz."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", "from cairn.cli import main; main()", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"cairn serve exited {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.2)
    _stop(process)
    raise AssertionError(f"cairn serve did not answer /healthz within 180 s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# Run in a process of its own, which exits (and so frees the Milvus Lite database) before the service starts.
PREPARE = """
import json, sys
from cairn import Cairn
tenant, docs = sys.argv[1], sys.argv[2]
leave, battery = sys.argv[3], sys.argv[4]
with Cairn() as local:
    admin, _ = local.create_key(role="admin", tenant=tenant)
    editor, editor_record = local.create_key(role="editor", tenant=tenant)
    reader, _ = local.create_key(role="reader", tenant=tenant)
    local.ingest([docs], tenant=tenant, allow=["*"])
    as_reader = local.keys.authenticate(reader)
    print(json.dumps({
        "keys": [admin, editor, editor_record.key_id, reader],
        "search": local.search(leave, principal=as_reader).model_dump(mode="json"),
        "keyword": local.search(
            battery, k=2, mode="keyword", filter='mime = "text/plain"', principal=as_reader
        ).model_dump(mode="json"),
        "answer": local.ask(leave, principal=as_reader).model_dump(mode="json"),
        "names": local.collection_names(principal=as_reader),
        "documents": [d.model_dump(mode="json") for d in local.documents(principal=as_reader)],
    }))
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A home with three documents of tenant acme (everyone may read them) and three keys, served by `cairn serve`."""
    work = tmp_path_factory.mktemp("client")
    home, docs = work / "home", work / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    env = {name: value for name, value in os.environ.items() if not name.startswith("CAIRN_")}
    env.update(CAIRN_HOME=str(home), CAIRN_CONFIG=str(work / "no-cairn.toml"))
    prepared = subprocess.run(
        [sys.executable, "-c", PREPARE, TENANT, str(docs), LEAVE, BATTERY],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert prepared.returncode == 0, prepared.stderr
    local = json.loads(prepared.stdout.splitlines()[-1])
    admin, editor, editor_id, reader = local["keys"]
    expected = Expected(
        search=SearchResult.model_validate(local["search"]),
        keyword=SearchResult.model_validate(local["keyword"]),
        answer=Answer.model_validate(local["answer"]),
        names=local["names"],
        documents=[DocumentInfo.model_validate(d) for d in local["documents"]],
    )
    port = _free_port()
    process = _serve(env, port, work / "serve.log")
    try:
        yield Service(
            url=f"http://127.0.0.1:{port}",
            admin=admin,
            editor=editor,
            editor_id=editor_id,
            reader=reader,
            docs=docs,
            expected=expected,
            work=work,
        )
    finally:
        _stop(process)


@pytest.fixture
def reader(service: Service) -> Iterator[Client]:
    with Client(service.url, service.reader) as client:
        yield client


@pytest.fixture
def editor(service: Service) -> Iterator[Client]:
    with Client(service.url, service.editor) as client:
        yield client


def test_search_through_the_client_is_the_local_search(service: Service, reader: Client) -> None:
    """A hybrid search, and a keyword search with k and a filter, return the `SearchResult` the local `Cairn`
    returned for the same key and arguments, hit for hit and score for score."""
    found = reader.search(LEAVE)
    assert isinstance(found, SearchResult)
    assert found == service.expected.search
    assert found.hits[0].source.endswith("leave.md")
    keyword = reader.search(BATTERY, k=2, mode="keyword", filter='mime = "text/plain"')
    assert keyword == service.expected.keyword
    assert [Path(hit.source).name for hit in keyword.hits] == ["batteries.txt"]


def test_ask_through_the_client_is_the_local_answer(service: Service, reader: Client) -> None:
    """`ask` returns the same verified `Answer` as the local `Cairn`, with its citations."""
    answer = reader.ask(LEAVE)
    assert isinstance(answer, Answer)
    assert answer == service.expected.answer
    assert "120 days" in answer.answer
    assert answer.citations
    assert answer.citations[0].source.endswith("leave.md")


def test_a_streamed_ask_yields_pieces_and_then_the_same_answer(service: Service, reader: Client) -> None:
    """`ask_stream` yields the answer's text in pieces as the service streams them; `result()` is the verified
    `Answer` (equal to the local one) whose text is the pieces joined, citations included."""
    with reader.ask_stream(LEAVE) as stream:
        pieces = list(stream)
        answer = stream.result()
    assert pieces
    assert all(isinstance(piece, str) for piece in pieces)
    assert "".join(pieces) == answer.answer
    assert answer == service.expected.answer
    assert answer.citations[0].location.label.startswith("Leave policy › Parental leave")


def test_collections_and_documents_are_the_local_ones(service: Service, reader: Client) -> None:
    """Collection names, the document list and one document (by id and by its source path) equal the local
    `Cairn`'s; `document_bytes` returns the file's bytes, for the live version and for version 1."""
    assert reader.collection_names() == service.expected.names == ["default"]
    documents = reader.documents()
    assert documents == service.expected.documents
    leave = next(doc for doc in documents if doc.source.endswith("leave.md"))
    assert reader.document(leave.doc_id) == leave
    assert reader.document(leave.source) == leave  # a source path is a ref too, as locally
    original = (service.docs / "leave.md").read_bytes()
    assert reader.document_bytes(leave.doc_id) == original
    assert reader.document_bytes(leave.source, version=1) == original


def test_an_upload_with_wait_returns_its_report_and_the_document_is_then_searchable(
    service: Service, editor: Client, tmp_path: Path
) -> None:
    """`ingest(wait=True)` uploads the file, follows its job and returns the job's `IngestReport`; the document is
    then found by search as ``upload:<name>``, and `job`/`jobs` show the same finished job."""
    merger = tmp_path / "merger.txt"
    merger.write_text("The merger with Globex closes on the first of June.\n")
    report = editor.ingest(merger, allow=[f"key:{service.editor_id}"], wait=True)
    assert isinstance(report, IngestReport)
    assert (report.collection, report.ingested, report.failed) == ("default", 1, [])
    hit = editor.search(MERGER, k=1).hits[0]
    assert hit.source == "upload:merger.txt"
    assert "first of June" in hit.text
    finished = [job for job in editor.jobs() if job.report == report]
    assert len(finished) == 1
    assert finished[0].state == "done"
    assert editor.job(finished[0].job_id) == finished[0]


def test_an_upload_without_wait_returns_its_job(service: Service, editor: Client, tmp_path: Path) -> None:
    """`ingest` of a folder uploads each file in it and returns the queued `Job` at once; the job then runs."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "cabinet.md").write_text("The ledger is filed under cabinet 42.\n")
    (folder / "parking.md").write_text("Visitors park on level minus two.\n")
    job = editor.ingest([folder], allow=[f"key:{service.editor_id}"])
    assert isinstance(job, Job)
    assert (job.collection, job.tenant, job.kind) == ("default", TENANT, "upload")
    assert job.state in ("queued", "running")
    deadline = time.monotonic() + 120
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.2)
        job = editor.job(job.job_id)
    assert job.state == "done"
    assert job.report is not None
    assert (job.files, job.report.ingested) == (2, 2)
    assert {d.source for d in editor.documents()} >= {"upload:cabinet.md", "upload:parking.md"}


def test_set_access_and_remove_documents_take_effect_for_the_next_request(
    service: Service, editor: Client, reader: Client, tmp_path: Path
) -> None:
    """An editor's `set_access` opens a document to the reader and closes it again (each returning the changed
    `DocumentInfo`); `remove_documents` takes it out of search, and removing it again is `NotFound`."""
    memo = tmp_path / "memo.txt"
    memo.write_text("The quarterly offsite is in Lisbon this year.\n")
    editor.ingest(memo, allow=[f"key:{service.editor_id}"], wait=True)
    question = "Where is the quarterly offsite?"
    assert all(hit.source != "upload:memo.txt" for hit in reader.search(question).hits)

    [opened] = editor.set_access(["upload:memo.txt"], allow=["*"])
    assert isinstance(opened, DocumentInfo)
    assert opened.allowed == ["*"]
    assert reader.search(question, k=1).hits[0].source == "upload:memo.txt"
    [closed] = editor.set_access([opened.doc_id], allow=[f"key:{service.editor_id}"])
    assert closed.allowed == [f"key:{service.editor_id}"]
    assert all(hit.source != "upload:memo.txt" for hit in reader.search(question).hits)
    with pytest.raises(NotFound):
        reader.document(opened.doc_id)

    [removed] = editor.remove_documents([opened.doc_id])
    assert (removed.doc_id, removed.source) == (opened.doc_id, "upload:memo.txt")
    assert all(hit.source != "upload:memo.txt" for hit in editor.search(question).hits)
    assert editor.document(opened.doc_id).version == 0  # its versions are kept in the vault
    with pytest.raises(NotFound):
        editor.remove_documents([opened.doc_id])


def test_service_errors_are_the_errors_cairn_raises(service: Service, reader: Client) -> None:
    """A bad key is `Unauthenticated`, a reader removing a document `Forbidden`, a missing document `NotFound`,
    k=0 `InvalidRequest`; each carries the service's message, and none shows the key."""
    bad_key = "cairn_" + "x" * 40
    with Client(service.url, bad_key) as stranger, pytest.raises(Unauthenticated) as refused:
        stranger.search(LEAVE)
    assert "API key" in str(refused.value)
    assert bad_key not in str(refused.value)
    leave = next(doc for doc in reader.documents() if doc.source.endswith("leave.md"))
    with pytest.raises(Forbidden, match=r"may not delete"):
        reader.remove_documents([leave.doc_id])
    with pytest.raises(NotFound, match=r"no document 'no-such-doc'"):
        reader.document("no-such-doc")
    with pytest.raises(NotFound):
        reader.document_bytes(leave.doc_id, version=7)
    with pytest.raises(InvalidRequest, match=r"k: "):
        reader.search(LEAVE, k=0)
    with pytest.raises(Forbidden):
        reader.ingest(service.docs / "leave.md")
    # Nothing was removed: the same chunks in the same order. (Scores may differ from the first search: BM25's
    # statistics count the documents other tests of this module added and removed since.)
    assert [(h.chunk_id, h.text) for h in reader.search(LEAVE).hits] == [
        (h.chunk_id, h.text) for h in service.expected.search.hits
    ]


def test_a_service_that_does_not_answer_is_a_cairn_error() -> None:
    """Nothing listening at the URL: `CairnError` naming the URL, not an httpx exception."""
    url = f"http://127.0.0.1:{_free_port()}"
    with Client(url, "cairn_key", timeout=5) as client, pytest.raises(CairnError, match="cannot reach cairn at"):
        client.collection_names()


def test_the_key_is_never_shown(service: Service, reader: Client) -> None:
    """The client's repr, and that of its HTTP headers, redact the key."""
    assert service.reader not in repr(reader)
    assert "<redacted>" in repr(reader)
    assert service.reader not in repr(reader._http.headers)


def test_client_arguments_are_checked_at_construction() -> None:
    """A URL that is not http(s), an empty key or a non-positive timeout is refused naming the value."""
    with pytest.raises(InvalidRequest, match="localhost:8000"):
        Client("localhost:8000", "cairn_key")
    with pytest.raises(InvalidRequest, match="key is empty"):
        Client("http://127.0.0.1:8000", " ")
    with pytest.raises(InvalidRequest, match="timeout=0"):
        Client("http://127.0.0.1:8000", "cairn_key", timeout=0)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (401, "unauthenticated", Unauthenticated),
        (403, "forbidden", Forbidden),
        (404, "not_found", NotFound),
        (400, "invalid_request", InvalidRequest),
        (422, "invalid_request", InvalidRequest),
        (413, "too_large", LimitExceeded),
        (422, "unparseable", ParseError),
        (503, "misconfigured", ConfigError),
        (503, "storage_unavailable", StorageError),
        (503, "catalog_unavailable", CatalogError),
        (502, "llm_unavailable", GenerationError),
        (500, "internal", CairnError),
        (504, "timeout", CairnError),
    ],
)
def test_each_error_code_of_the_service_is_its_cairn_error(status: int, code: str, kind: type[CairnError]) -> None:
    """The service's error codes (`cairn.http.app`) become the class `Cairn` raises, with the service's message."""
    error = error_from_response(httpx.Response(status, json={"error": {"code": code, "message": "what happened"}}))
    assert type(error) is kind
    assert str(error) == "what happened"


def test_rate_limited_carries_the_retry_after_and_unknown_answers_fall_back_on_the_status() -> None:
    """429 is `RateLimited` with the service's Retry-After; an answer without cairn's error body (a proxy's page)
    is mapped by its status, or is a `CairnError` with the page's text."""
    limited = error_from_response(
        httpx.Response(
            429, json={"error": {"code": "rate_limited", "message": "slow down"}}, headers={"Retry-After": "7"}
        )
    )
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 7.0
    assert type(error_from_response(httpx.Response(404, text="Not Found"))) is NotFound
    gateway = error_from_response(httpx.Response(502, text="Bad Gateway from the proxy"))
    assert type(gateway) is CairnError
    assert str(gateway) == "Bad Gateway from the proxy"
