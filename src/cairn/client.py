"""`Client`: the methods of `Cairn`, over HTTP, against a running ``cairn serve``.

    from cairn import Client

    with Client("http://127.0.0.1:8000", key=os.environ["CAIRN_KEY"]) as cairn:
        print(cairn.ask("How many days of parental leave do we get?").answer)

Each method takes the arguments of the `Cairn` method of the same name and returns the same type,
without ``principal``: the key is the principal, and the service enforces its role, tenant and
ACLs. ``ingest`` uploads the files and returns the service's job (``wait=True``: the job's
`IngestReport` once a worker has run it). A call without ``collection`` uses the client's.

An error the service reports (``{"error": {"code", "message"}}``) is raised as the `cairn.errors`
class `Cairn` raises for it, with the service's message: `Unauthenticated` (401), `Forbidden` (403),
`NotFound` (404), `InvalidRequest` (400, 422), `LimitExceeded` (413), `RateLimited` (429, with
``retry_after``), `ConfigError`, `StorageError` or `CatalogError` (503, by code), `GenerationError`
(502), and `CairnError` for any other failure, a service that cannot be reached or does not answer
in time included. The key never appears in a repr or a message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload
from urllib.parse import quote, urlsplit

import httpx
from pydantic import SecretStr

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
from cairn.generate.answer import AnswerStream
from cairn.generate.conversation import Turn
from cairn.index.milvus import SearchMode
from cairn.ingest import discover
from cairn.jobs import Job
from cairn.models import Answer, DocumentInfo, IngestReport, SearchResult

__all__ = ["Client", "RemoteAnswerStream", "error_from_response"]

# The service's error codes (`cairn.http.app`), and the error class `Cairn` raises for each.
_BY_CODE: dict[str, type[CairnError]] = {
    "unauthenticated": Unauthenticated,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "invalid_request": InvalidRequest,
    "too_large": LimitExceeded,
    "unparseable": ParseError,
    "rate_limited": RateLimited,
    "misconfigured": ConfigError,
    "storage_unavailable": StorageError,
    "catalog_unavailable": CatalogError,
    "llm_unavailable": GenerationError,
    "generation_failed": GenerationError,  # reported inside a streamed answer, after its status was sent
}
# For answers without a known code (a proxy's page, an unknown route).
_BY_STATUS: dict[int, type[CairnError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    413: LimitExceeded,
    422: InvalidRequest,
    429: RateLimited,
}
# How often ``ingest(wait=True)`` reads its job again.
_POLL_S = 0.5


def error_from_response(response: httpx.Response) -> CairnError:
    """The `cairn.errors` error for a failed response of the service, carrying the service's message."""
    code, message = "", ""
    try:
        body = response.json()
        code, message = str(body["error"]["code"]), str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text.strip()[:500]
    message = message or f"the service answered {response.status_code} {response.reason_phrase}"
    kind = _BY_CODE[code] if code in _BY_CODE else _BY_STATUS.get(response.status_code, CairnError)
    if kind is RateLimited:
        try:
            retry_after = max(0.0, float(response.headers.get("retry-after", "1")))
        except ValueError:
            retry_after = 1.0
        return RateLimited(message, retry_after=retry_after)
    return kind(message)


class RemoteAnswerStream(AnswerStream):
    """An `AnswerStream` read from the service's server-sent events; `close` (or leaving a ``with``) ends it early."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._final: Answer | None = None
        super().__init__(self._read_pieces(), self._finished)

    def _read_pieces(self) -> Iterator[str]:
        try:
            for event, data in _server_sent_events(self._response.iter_lines()):
                if event == "answer":
                    yield str(json.loads(data)["text"])
                elif event == "result":
                    self._final = Answer.model_validate_json(data)
                elif event == "error":
                    problem = json.loads(data)
                    raise _BY_CODE.get(problem.get("code", ""), CairnError)(str(problem.get("message", data)))
                elif event == "done":
                    return
        except httpx.HTTPError as exc:
            raise CairnError(f"the answer stream from {self._response.url} broke off: {exc}") from exc
        finally:
            self._response.close()

    def _finished(self, _text: str) -> Answer:
        if self._final is None:
            raise CairnError(f"the answer stream from {self._response.url} ended without its verified answer")
        return self._final

    def close(self) -> None:
        """Stop reading and let the service free the stream (a key may hold only a few open at once)."""
        self._response.close()

    def __enter__(self) -> RemoteAnswerStream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _server_sent_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """``(event, data)`` pairs of a ``text/event-stream``, its data lines joined with newlines."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].removeprefix(" "))
    if data:
        yield event, "\n".join(data)


class Client:
    """A `Cairn` reached through its HTTP service at *url* with the API *key* (``cairn_...``).

    *collection* is used by every call that names none; *timeout* bounds, in seconds, connecting
    and each wait for the service (a streamed answer may take longer in all, not between pieces).
    Safe to share between threads; close it, or use it as a context manager.
    """

    def __init__(
        self,
        url: str,
        key: str | SecretStr,
        *,
        collection: str = "default",
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidRequest(f"the service URL {url!r} is not an http(s) URL such as http://127.0.0.1:8000")
        if not timeout > 0:
            raise InvalidRequest(f"timeout={timeout!r} must be a positive number of seconds")
        self._key = key if isinstance(key, SecretStr) else SecretStr(key)
        if not self._key.get_secret_value().strip():
            raise InvalidRequest("the API key is empty; pass a key from `cairn keys create`")
        self.url = url.rstrip("/")
        self.collection = collection
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url,
            headers={
                "Authorization": f"Bearer {self._key.get_secret_value()}",
                "User-Agent": "cairn-client",
            },
            timeout=timeout,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"Client({self.url!r}, key=<redacted>, collection={self.collection!r})"

    # -- retrieval -----------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        collection: str | None = None,
        k: int = 10,
        mode: SearchMode = "hybrid",
        filter: str | dict[str, object] | list[object] | None = None,  # noqa: A002 - the API's word
        rerank: bool = False,
        diversify: bool = False,
    ) -> SearchResult:
        """The *k* passages that best match *query* among the documents the key may see (`Cairn.search`)."""
        body = {
            "query": query,
            "collection": self._name(collection),
            "k": k,
            "mode": mode,
            "filter": filter,
            "rerank": rerank,
            "diversify": diversify,
        }
        return SearchResult.model_validate(self._json("POST", "/v1/search", json=body))

    def ask(
        self,
        question: str,
        *,
        collection: str | None = None,
        k: int = 8,
        rerank: bool = False,
        diversify: bool = False,
        history: Sequence[Turn] = (),
    ) -> Answer:
        """A grounded answer whose citations are verified, from the passages the key may see (`Cairn.ask`)."""
        body = self._ask_body(question, collection, k, rerank, diversify, history, stream=False)
        return Answer.model_validate(self._json("POST", "/v1/ask", json=body))

    def ask_stream(
        self,
        question: str,
        *,
        collection: str | None = None,
        k: int = 8,
        rerank: bool = False,
        diversify: bool = False,
        history: Sequence[Turn] = (),
    ) -> RemoteAnswerStream:
        """The answer as text pieces while the service generates it; ``.result()`` is the `Answer`.

        The request is answered before this returns, so a refused key or a missing collection raises here.
        """
        body = self._ask_body(question, collection, k, rerank, diversify, history, stream=True)
        request = self._http.build_request("POST", "/v1/ask", json=body)
        return RemoteAnswerStream(self._send(request, stream=True))

    # -- ingest and jobs -----------------------------------------------------------------------
    @overload
    def ingest(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        collection: str | None = ...,
        tenant: str | None = ...,
        allow: Sequence[str] | None = ...,
        wait: Literal[False] = ...,
        wait_timeout: float = ...,
    ) -> Job: ...

    @overload
    def ingest(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        collection: str | None = ...,
        tenant: str | None = ...,
        allow: Sequence[str] | None = ...,
        wait: Literal[True],
        wait_timeout: float = ...,
    ) -> IngestReport: ...

    def ingest(
        self,
        paths: str | Path | Sequence[str | Path],
        *,
        collection: str | None = None,
        tenant: str | None = None,
        allow: Sequence[str] | None = None,
        wait: bool = False,
        wait_timeout: float = 3600.0,
    ) -> Job | IngestReport:
        """Upload files (folders: every file in them, hidden ones skipped) and return the ingest job.

        Each file becomes the document ``upload:<file name>`` of the collection, so names must be unique
        within one call. With *wait*, follow the job until a worker has run it and return its `IngestReport`;
        a failed job raises `CairnError` with the job's error, one still running after *wait_timeout* s too.
        """
        given = [paths] if isinstance(paths, str | Path) else paths
        files, missing = discover(Path(p) for p in given)
        if missing:
            raise InvalidRequest(f"cannot upload what is not there: {', '.join(m.path for m in missing)}")
        if not files:
            raise InvalidRequest(f"no files to upload in {', '.join(str(p) for p in given) or 'nothing'}")
        form: dict[str, str] = {}
        if tenant is not None:
            form["tenant"] = tenant
        if allow is not None:
            form["allow"] = ",".join(allow)
        with ExitStack() as opened:
            parts = [
                ("files", (path.name, opened.enter_context(path.open("rb")), "application/octet-stream"))
                for path in files
            ]
            answer = self._json("POST", f"{self._collection_path(collection)}/documents", files=parts, data=form)
        job = Job.model_validate(answer)
        return self._wait_for(job, wait_timeout) if wait else job

    def job(self, job_id: str) -> Job:
        """One ingest job of the key's tenant, as the service sees it now."""
        return Job.model_validate(self._json("GET", f"/v1/jobs/{_segment(job_id)}"))

    def jobs(self) -> list[Job]:
        """The recent ingest jobs of the key's tenant, in the collections it may use."""
        return [Job.model_validate(job) for job in self._json("GET", "/v1/jobs")["jobs"]]

    def _wait_for(self, job: Job, timeout: float) -> IngestReport:
        deadline = time.monotonic() + timeout
        while not job.finished:
            if time.monotonic() > deadline:
                raise CairnError(
                    f"ingest job {job.job_id} is still {job.state} after {timeout:g} s; follow it with job()"
                )
            time.sleep(_POLL_S)
            job = self.job(job.job_id)
        if job.state == "failed" or job.report is None:
            raise CairnError(f"ingest job {job.job_id} failed: {job.error or 'no reason given'}")
        return job.report

    # -- collections and documents -------------------------------------------------------------
    def collection_names(self) -> list[str]:
        """The collections the key may use (`Cairn.collection_names`)."""
        return [str(entry["name"]) for entry in self._json("GET", "/v1/collections")["collections"]]

    def drop_collection(self, collection: str) -> None:
        """Drop a collection's index and manifest (an admin of the tenant owning all of it)."""
        self._json("DELETE", f"/v1/collections/{_segment(collection)}")

    def documents(self, *, collection: str | None = None) -> list[DocumentInfo]:
        """The live documents of the collection that the key may see, by source."""
        listed = self._json("GET", f"{self._collection_path(collection)}/documents")["documents"]
        return [DocumentInfo.model_validate(doc) for doc in listed]

    def document(self, ref: str, *, collection: str | None = None) -> DocumentInfo:
        """A document by id or source, with every version the vault keeps (live or removed)."""
        return DocumentInfo.model_validate(self._json("GET", self._document_path(ref, collection)))

    def document_bytes(self, ref: str, *, version: int | None = None, collection: str | None = None) -> bytes:
        """The exact bytes of a document version (default: the live one, else the latest)."""
        if version is None:
            info = self.document(ref, collection=collection)
            version = info.version or max((v.version for v in info.versions), default=0)
        path = f"{self._document_path(ref, collection)}/versions/{version}/content"
        return self._send(self._http.build_request("GET", path)).content

    def set_access(
        self, refs: Sequence[str], *, allow: Sequence[str], tenant: str | None = None, collection: str | None = None
    ) -> list[DocumentInfo]:
        """Change who may see documents; the very next request of any key obeys it."""
        body = {"allow": list(allow), "tenant": tenant}
        return [
            DocumentInfo.model_validate(self._json("PUT", f"{self._document_path(ref, collection)}/acl", json=body))
            for ref in refs
        ]

    def remove_documents(self, refs: Sequence[str], *, collection: str | None = None) -> list[DocumentInfo]:
        """Remove documents from search; `NotFound`, before any is removed, for a ref that is not live."""
        return self._delete_documents(refs, collection, purge=False)

    def purge_documents(self, refs: Sequence[str], *, collection: str | None = None) -> list[DocumentInfo]:
        """Remove documents from search and delete their stored versions from the vault."""
        return self._delete_documents(refs, collection, purge=True)

    def _delete_documents(self, refs: Sequence[str], collection: str | None, *, purge: bool) -> list[DocumentInfo]:
        # One request a document: check them all first, so that a wrong ref removes nothing.
        found = [self.document(ref, collection=collection) for ref in refs]
        if not purge and (gone := [info.source for info in found if not info.version]):
            raise NotFound(f"no live document {', '.join(map(repr, gone))} in collection {self._name(collection)!r}")
        removed: list[DocumentInfo] = []
        for info in found:
            answer = self._json(
                "DELETE", self._document_path(info.doc_id, collection), params={"purge": "true"} if purge else None
            )
            removed.extend(DocumentInfo.model_validate(doc) for doc in answer["removed"])
        return removed

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------------
    def _name(self, collection: str | None) -> str:
        return collection if collection is not None else self.collection

    def _collection_path(self, collection: str | None) -> str:
        return f"/v1/collections/{_segment(self._name(collection))}"

    def _document_path(self, ref: str, collection: str | None) -> str:
        if "/" in ref:  # a source path cannot be one segment of a URL: find its id among the documents
            match = next((doc for doc in self.documents(collection=collection) if doc.source == ref), None)
            if match is None:
                raise NotFound(f"no document {ref!r} in collection {self._name(collection)!r}; documents() lists them")
            ref = match.doc_id
        return f"{self._collection_path(collection)}/documents/{_segment(ref)}"

    def _ask_body(
        self,
        question: str,
        collection: str | None,
        k: int,
        rerank: bool,
        diversify: bool,
        history: Sequence[Turn],
        *,
        stream: bool,
    ) -> dict[str, Any]:
        return {
            "question": question,
            "collection": self._name(collection),
            "k": k,
            "rerank": rerank,
            "diversify": diversify,
            "history": [{"role": turn.role, "content": turn.content} for turn in history],
            "stream": stream,
        }

    def _json(self, method: str, path: str, **options: Any) -> Any:
        return self._send(self._http.build_request(method, path, **options)).json()

    def _send(self, request: httpx.Request, *, stream: bool = False) -> httpx.Response:
        """Send *request*; a failure of the service or of the network raised as a `cairn.errors` error."""
        try:
            response = self._http.send(request, stream=stream)
        except httpx.TimeoutException as exc:
            raise CairnError(
                f"cairn at {self.url} did not answer {request.method} {request.url.path} within {self.timeout:g} s"
            ) from exc
        except httpx.HTTPError as exc:
            raise CairnError(f"cannot reach cairn at {self.url}: {exc}") from exc
        if response.is_error:
            if stream:
                response.read()
                response.close()
            raise error_from_response(response)
        return response


def _segment(value: str) -> str:
    """*value* as one segment of a URL path."""
    return quote(value, safe="")
