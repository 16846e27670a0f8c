"""The ``/v1`` routes: thin translations between HTTP and `Cairn` methods, each given the caller's principal."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, File, Form, Request, Security, UploadFile
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from cairn.auth import Principal
from cairn.catalog import SourceRecord
from cairn.core import Cairn
from cairn.errors import CairnError, InvalidRequest, NotFound
from cairn.generate.answer import AnswerStream
from cairn.generate.conversation import Turn
from cairn.jobs.uploads import IncomingFile, submit_upload, upload_name
from cairn.models import Answer, DocumentInfo, SearchResult

from .jobs import Job, shown
from .streams import StreamBudget

__all__ = ["register"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class SearchBody(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    collection: str | None = None
    k: int = Field(default=10, ge=1, le=100)
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"
    filter: str | dict[str, Any] | list[Any] | None = Field(
        default=None, description='A filter such as `mime = "application/pdf"`, or its JSON form.'
    )
    rerank: bool = Field(default=False, description="Rerank a wider candidate pool with the cross-encoder.")
    diversify: bool = Field(default=False, description="Choose the hits by MMR, so near-duplicates do not crowd.")


class SourceBody(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    uri: str = Field(min_length=1, max_length=2000, description="s3://BUCKET/PREFIX")
    collection: str | None = None
    every: str | None = Field(default=None, description="A schedule such as 15m or 1h.")
    tenant: str | None = None
    allow: list[str] | None = None
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="endpoint, region, path_style, verify_tls, ca_bundle, access_key_env, secret_key_env, acl_prefixes",
    )


class SourceChange(BaseModel):
    every: str | None = Field(default=None, description="A new schedule such as 1h, or off.")
    allow: list[str] | None = None
    settings: dict[str, Any] | None = Field(default=None, description="Settings to replace; null removes one.")


class TurnBody(BaseModel):
    role: Literal["user", "assistant"]
    content: str = Field(max_length=20_000)


class AskBody(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    collection: str | None = None
    k: int = Field(default=8, ge=1, le=50)
    stream: bool = False
    rerank: bool = Field(default=False, description="Rerank a wider candidate pool with the cross-encoder.")
    diversify: bool = Field(default=False, description="Choose passages by MMR, so near-duplicates do not crowd.")
    history: list[TurnBody] = Field(
        default_factory=list, max_length=50, description="Earlier turns, oldest first: a follow-up is made standalone."
    )


class ChatContentPart(BaseModel):
    """One part of an OpenAI-style list content; only ``text`` parts can be answered."""

    type: str = Field(max_length=100)
    text: str | None = Field(default=None, max_length=20_000)


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Annotated[str, Field(max_length=20_000)] | Annotated[list[ChatContentPart], Field(max_length=100)]

    def text(self) -> str:
        """The message's text: its content, or its text parts joined; `InvalidRequest` for any other part."""
        if isinstance(self.content, str):
            return self.content
        for part in self.content:
            if part.type != "text" or part.text is None:
                raise InvalidRequest(
                    f"a {self.role} message has a {part.type!r} part; only text parts "
                    '({"type": "text", "text": "..."}) can be answered'
                )
        return "\n".join(part.text or "" for part in self.content)


class ChatBody(BaseModel):
    model: str = Field(description="The collection to answer from.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False


class AclBody(BaseModel):
    allow: list[str] = Field(min_length=1, max_length=100)
    tenant: str | None = None


class KeyBody(BaseModel):
    role: Literal["reader", "editor", "admin"]
    tenant: str
    user: str | None = None
    groups: list[str] = Field(default_factory=list, max_length=100)
    collections: list[str] | None = None
    expires: str | None = Field(default=None, description="Lifetime such as 30d or 12h.")


class KeyCreated(BaseModel):
    key: str
    key_id: str
    role: str
    tenant: str


def _sse(event: str, data: object) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _question(messages: list[ChatMessage]) -> tuple[str, list[Turn]]:
    """The last user message, and the user and assistant turns before it (system messages are not obeyed)."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "user" and message.text().strip():
            earlier = [Turn(m.role, m.text()) for m in messages[:index] if m.role in ("user", "assistant")]
            return message.text(), earlier
    raise InvalidRequest("the conversation has no user message to answer")


def _answer_events(stream: AnswerStream) -> Iterator[str | Answer | dict[str, str]]:
    """A streamed answer's text pieces, then the verified answer, or an error (as ``{"code", "message"}``)."""
    try:
        yield from stream
        yield stream.result()
    except CairnError as exc:  # the response has started: report in the stream, not with a status
        yield {"code": "generation_failed", "message": str(exc)}


_bearer = HTTPBearer(auto_error=False, description="An API key from `cairn keys create`: `Bearer cairn_...`.")


def _caller(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)] = None
) -> Principal | None:
    """The authenticated principal of the request (see `cairn.http.app.create_app`).

    The bearer parameter declares the key in the OpenAPI schema; the check itself reads the header.
    """
    return request.app.state.principal_dependency(request)  # type: ignore[no-any-return]


Caller = Annotated[Principal | None, Depends(_caller)]


def register(app: FastAPI) -> None:
    cairn: Cairn = app.state.cairn
    streams: StreamBudget = app.state.streams

    # -- retrieval ---------------------------------------------------------------------------
    @app.post("/v1/search", tags=["retrieval"])
    def search(body: SearchBody, principal: Caller) -> SearchResult:
        """The passages that best match the query, among the documents the key may see."""
        return cairn.search(
            body.query,
            collection=body.collection,
            k=body.k,
            mode=body.mode,
            principal=principal,
            filter=body.filter,
            rerank=body.rerank,
            diversify=body.diversify,
        )

    @app.post("/v1/ask", tags=["retrieval"], response_model=None)
    def ask(body: AskBody, principal: Caller) -> Answer | StreamingResponse:
        """A cited answer; with ``stream``, server-sent events: ``answer`` pieces while it is generated,
        ``citations`` (each with ``support`` and ``supported``), ``result`` (the whole verified answer), ``done``.
        A key may have only a few streams open at once (429 beyond, see `cairn.http.streams`)."""
        options: dict[str, Any] = {
            "collection": body.collection,
            "k": body.k,
            "principal": principal,
            "rerank": body.rerank,
            "diversify": body.diversify,
            "history": [Turn(role=turn.role, content=turn.content) for turn in body.history],
        }
        if not body.stream:
            return cairn.ask(body.question, **options)
        with streams.reserve(principal) as slot:
            answered = cairn.ask_stream(body.question, **options)

            def events() -> Iterator[str]:
                for item in _answer_events(answered):
                    if isinstance(item, str):
                        yield _sse("answer", {"text": item})
                    elif isinstance(item, Answer):
                        yield _sse("citations", [c.model_dump(mode="json") for c in item.citations])
                        yield _sse("result", item.model_dump(mode="json"))
                    else:
                        yield _sse("error", item)
                yield _sse("done", {})

            return slot.respond(events())

    @app.post("/v1/chat/completions", tags=["openai"], response_model=None)
    def chat(body: ChatBody, principal: Caller) -> dict[str, Any] | StreamingResponse:
        """OpenAI-compatible chat: the last user message, made standalone with the earlier turns, is answered
        from the collection named by ``model``. A message's content is text, or a list of text parts."""
        question, history = _question(body.messages)
        created, ident = int(time.time()), f"chatcmpl-{time.time_ns():x}"
        if not body.stream:
            answer = cairn.ask_stream(question, collection=body.model, principal=principal, history=history).result()
            citations = [c.model_dump(mode="json") for c in answer.citations]
            return {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": body.model,
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer.answer}, "finish_reason": "stop"}
                ],
                "citations": citations,
                "warnings": answer.warnings,
            }
        with streams.reserve(principal) as slot:
            stream = cairn.ask_stream(question, collection=body.model, principal=principal, history=history)

            def chunks() -> Iterator[str]:
                base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": body.model}
                yield f"data: {json.dumps({**base, 'choices': [{'index': 0, 'delta': {'role': 'assistant'}}]})}\n\n"
                for item in _answer_events(stream):
                    if isinstance(item, str):
                        delta = {"index": 0, "delta": {"content": item}, "finish_reason": None}
                        yield f"data: {json.dumps({**base, 'choices': [delta]}, ensure_ascii=False)}\n\n"
                    elif isinstance(item, Answer):
                        citations = [c.model_dump(mode="json") for c in item.citations]
                        end = {"index": 0, "delta": {}, "finish_reason": "stop"}
                        done = {**base, "choices": [end], "citations": citations, "warnings": item.warnings}
                        yield f"data: {json.dumps(done, ensure_ascii=False)}\n\n"
                    else:
                        yield f"data: {json.dumps({'error': item}, ensure_ascii=False)}\n\n"
                yield "data: [DONE]\n\n"

            return slot.respond(chunks())

    @app.get("/v1/models", tags=["openai"])
    def models(principal: Caller) -> dict[str, Any]:
        """The collections this key may ask, as OpenAI-style models."""
        names = cairn.collection_names(principal=principal)
        return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "cairn"} for n in names]}

    # -- collections --------------------------------------------------------------------------
    @app.get("/v1/collections", tags=["collections"])
    def collections(principal: Caller) -> dict[str, Any]:
        """The collections this key may use, with the number of documents it may see in each."""
        return {
            "collections": [
                {"name": name, "documents": len(cairn.documents(collection=name, principal=principal))}
                for name in cairn.collection_names(principal=principal)
            ]
        }

    @app.delete("/v1/collections/{name}", tags=["collections"])
    def drop(name: str, principal: Caller) -> dict[str, str]:
        """Drop a collection's index and manifest (admins of the tenant owning all of it); bytes stay in the vault."""
        cairn.drop_collection(name, principal=principal)
        return {"dropped": name}

    # -- documents ----------------------------------------------------------------------------
    @app.get("/v1/collections/{name}/documents", tags=["documents"])
    def documents(name: str, principal: Caller) -> dict[str, list[DocumentInfo]]:
        """The live documents of the collection that this key may see."""
        return {"documents": cairn.documents(collection=name, principal=principal)}

    @app.get("/v1/collections/{name}/documents/{doc_id}", tags=["documents"])
    def document(name: str, doc_id: str, principal: Caller) -> DocumentInfo:
        """One document with all its versions."""
        return cairn.document(doc_id, collection=name, principal=principal)

    @app.get("/v1/collections/{name}/documents/{doc_id}/versions/{version}/content", tags=["documents"])
    def content(name: str, doc_id: str, version: int, principal: Caller) -> Response:
        """The exact bytes of one version, as they were ingested."""
        info = cairn.document(doc_id, collection=name, principal=principal)
        data = cairn.document_bytes(doc_id, version=version, collection=name, principal=principal)
        chosen = next(v for v in info.versions if v.version == version)
        filename = _SAFE_NAME.sub("_", Path(upload_name(info.source) or info.source).name) or "document"
        return Response(
            data,
            media_type=chosen.mime or "application/octet-stream",
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox",
            },
        )

    @app.delete("/v1/collections/{name}/documents/{doc_id}", tags=["documents"])
    def delete(name: str, doc_id: str, principal: Caller, purge: bool = False) -> dict[str, list[DocumentInfo]]:
        """Remove a document from search (editors); with ``purge``, delete its stored versions too."""
        if purge:
            return {"removed": cairn.purge_documents([doc_id], collection=name, principal=principal)}
        return {"removed": cairn.remove_documents([doc_id], collection=name, principal=principal)}

    @app.put("/v1/collections/{name}/documents/{doc_id}/acl", tags=["documents"])
    def change_acl(name: str, doc_id: str, body: AclBody, principal: Caller) -> DocumentInfo:
        """Change who may see a document; the very next request obeys it."""
        return cairn.set_access([doc_id], allow=body.allow, tenant=body.tenant, collection=name, principal=principal)[0]

    @app.post("/v1/collections/{name}/documents", tags=["documents"], status_code=202)
    def upload(
        name: str,
        principal: Caller,
        files: Annotated[list[UploadFile], File(description="One or more documents.")],
        tenant: Annotated[str | None, Form()] = None,
        allow: Annotated[str | None, Form(description="Comma-separated: groups, user:NAME, key:ID or *.")] = None,
    ) -> Job:
        """Upload documents and ingest them in the background; follow the returned job.

        The files are stored in the vault and the job recorded in the catalog before this answers, so any
        replica answers for the job and any worker runs it. Each file is the document ``upload:<name>``."""
        allowed = [a for a in allow.split(",") if a.strip()] if allow is not None else None
        return submit_upload(
            cairn,
            app.state.jobs.queue,
            [IncomingFile(name=upload.filename, stream=upload.file) for upload in files],
            collection=name,
            tenant=tenant,
            allow=allowed,
            principal=principal,
            max_bytes=app.state.limits.max_upload_bytes,
        )

    # -- jobs -----------------------------------------------------------------------------------
    def visible_job(job_id: str, principal: Principal | None) -> Job:
        """The job, if it is of the key's tenant and in a collection the key may use; else not found, alike."""
        found: Job = app.state.jobs.get(job_id, tenant=principal.tenant if principal else None)
        if principal is not None and not principal.may_use(found.collection):
            raise NotFound(f"no job {job_id!r}")
        return found

    @app.get("/v1/jobs", tags=["jobs"])
    def jobs(principal: Caller) -> dict[str, list[Job]]:
        """Ingest jobs of this key's tenant, in the collections it may use (file names: its own jobs, or admins)."""
        listed: list[Job] = app.state.jobs.list(tenant=principal.tenant if principal else None)
        return {"jobs": [shown(j, principal) for j in listed if principal is None or principal.may_use(j.collection)]}

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    def job(job_id: str, principal: Caller) -> Job:
        """One job, as any replica sees it in the catalog."""
        return shown(visible_job(job_id, principal), principal)

    @app.get("/v1/jobs/{job_id}/events", tags=["jobs"])
    def job_events(job_id: str, principal: Caller) -> StreamingResponse:
        """Server-sent ``progress`` events until the job is done or failed (a few streams per key at once)."""
        tenant = principal.tenant if principal else None
        visible_job(job_id, principal)  # 404 before the stream starts

        def events() -> Iterator[str]:
            for state in app.state.jobs.follow(job_id, tenant=tenant):
                yield _sse("progress", shown(state, principal).model_dump(mode="json"))

        return streams.reserve(principal).respond(events())

    # -- sources --------------------------------------------------------------------------------
    @app.post("/v1/sources", tags=["sources"], status_code=201)
    def add_source(body: SourceBody, principal: Caller) -> SourceRecord:
        """Register an S3 source (admins of the tenant); credentials are named environment variables, never sent."""
        return cairn.add_source(
            body.name,
            body.uri,
            collection=body.collection,
            every=body.every,
            tenant=body.tenant,
            allow=body.allow,
            settings=body.settings,
            principal=principal,
        )

    @app.get("/v1/sources", tags=["sources"])
    def list_sources(principal: Caller) -> dict[str, list[SourceRecord]]:
        """Sources of this key's tenant in collections it may use (editors and admins)."""
        return {"sources": cairn.sources(principal=principal)}

    @app.get("/v1/sources/{name}", tags=["sources"])
    def show_source(name: str, principal: Caller) -> SourceRecord:
        """One source with its last sync's report."""
        return cairn.source_info(name, principal=principal)

    @app.patch("/v1/sources/{name}", tags=["sources"])
    def change_source(name: str, body: SourceChange, principal: Caller) -> SourceRecord:
        """Change a source's schedule, ACL or settings (admins); the next sync applies it."""
        return cairn.change_source(
            name, every=body.every, allow=body.allow, settings=body.settings, principal=principal
        )

    @app.post("/v1/sources/{name}/sync", tags=["sources"], status_code=202)
    def sync_source(name: str, principal: Caller, confirm_deletions: bool = False) -> Job:
        """Enqueue a sync as a durable job; follow it at /v1/jobs/{job_id}/events."""
        return shown(
            cairn.submit_source_sync(name, confirm_deletions=confirm_deletions, principal=principal), principal
        )

    @app.delete("/v1/sources/{name}", tags=["sources"])
    def remove_source(name: str, principal: Caller, take_down: bool = False) -> dict[str, Any]:
        """Forget a source (admins); with take_down, its documents leave search too."""
        return {"removed": name, "taken_down": cairn.remove_source(name, take_down=take_down, principal=principal)}

    # -- keys -----------------------------------------------------------------------------------
    @app.post("/v1/keys", tags=["keys"], status_code=201)
    def create_key(body: KeyBody, principal: Caller) -> KeyCreated:
        """Create a key (admins); the key is in this response only."""
        from cairn.auth import parse_duration

        token, record = cairn.create_key(
            principal=principal,
            role=body.role,
            tenant=body.tenant,
            user=body.user,
            groups=body.groups,
            collections=body.collections,
            expires_in=parse_duration(body.expires) if body.expires else None,
        )
        return KeyCreated(key=token, key_id=record.key_id, role=record.role, tenant=record.tenant)

    @app.get("/v1/keys", tags=["keys"])
    def list_keys(principal: Caller) -> dict[str, list[dict[str, Any]]]:
        """Keys of this admin's tenant (never their secrets)."""
        return {"keys": [r.model_dump(mode="json", exclude={"digest"}) for r in cairn.list_keys(principal=principal)]}

    @app.delete("/v1/keys/{key_id}", tags=["keys"])
    def revoke_key(key_id: str, principal: Caller) -> dict[str, str]:
        """Revoke a key (admins); it fails from the next request on."""
        cairn.revoke_key(key_id, principal=principal)
        return {"revoked": key_id}
