"""The tools: their arguments, their descriptions for one key, and thin calls into `Cairn`.

Every tool runs as the caller's principal through the same `Cairn` methods the HTTP routes call,
so roles, grants, tenants and ACLs are enforced in one place (`cairn.access`). Descriptions are
made for the key that lists them: they name the collections it may use and what they hold, so an
agent connected to two cairn servers can tell them apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import mcp_types as types
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cairn.auth import Principal
from cairn.core import Cairn
from cairn.errors import Forbidden, InvalidRequest, NotFound

from .reading import read_passage, read_version
from .render import document_name, render_answer, render_chunk, render_hits, render_version

__all__ = ["CollectionSummary", "ToolOutput", "collection_summaries", "run_tool", "tools_for"]

# Collections and example documents named in a description: enough to recognise a server, short enough to read.
_NAMED_COLLECTIONS = 10
_EXAMPLES = 3

_FILTER_HELP = (
    "Optional filter in cairn's filter language, on source, mime, doc_id, version, created_at (unix seconds) "
    'and metadata.<key>: for example  mime = "application/pdf" and version >= 2  or  source ~ "handbook"  or  '
    'metadata.status in ["open", "pending"].  Combine with and, or, not and parentheses.'
)


class _Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str | None = Field(default=None, max_length=100)


class SearchArguments(_Arguments):
    query: str = Field(min_length=1, max_length=2000, description="What to look for, in words.")
    k: int = Field(default=8, ge=1, le=50, description="How many passages to return, 1 to 50.")
    mode: Literal["hybrid", "dense", "keyword"] = Field(
        default="hybrid", description="hybrid (meaning and keywords, the best default), dense (meaning) or keyword."
    )
    filter: str | None = Field(default=None, max_length=2000, description=_FILTER_HELP)


class AskArguments(_Arguments):
    question: str = Field(min_length=1, max_length=2000, description="The question, as you would ask a colleague.")
    k: int = Field(default=8, ge=1, le=50, description="How many passages the answer may draw on, 1 to 50.")


class ListArguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PassageArguments(_Arguments):
    doc_id: str = Field(min_length=1, max_length=1000, description="The doc_id a search hit or citation gives.")
    chunk_id: str = Field(min_length=1, max_length=64, description="The chunk_id a search hit or citation gives.")
    version: int | None = Field(
        default=None, ge=1, description="The version the hit or citation gives (default: the live version)."
    )


class DocumentArguments(_Arguments):
    doc_id: str = Field(min_length=1, max_length=1000, description="The doc_id a search hit or citation gives.")
    version: int | None = Field(default=None, ge=1, description="Which version (default: the live one).")
    offset: int = Field(default=0, ge=0, description="Character to start from, for reading long documents in pages.")
    max_chars: int = Field(default=20_000, ge=1000, le=50_000, description="At most this many characters, 1000-50000.")


@dataclass(frozen=True)
class ToolOutput:
    """What a tool returns: text for the agent to read, and the same as JSON (cairn's result models)."""

    text: str
    data: dict[str, Any]


@dataclass(frozen=True)
class CollectionSummary:
    """A collection as one key sees it: how many of its documents the key may see, and a few of their names."""

    name: str
    documents: int
    examples: tuple[str, ...]

    def line(self) -> str:
        noun = "document" if self.documents == 1 else "documents"
        shown = f" ({', '.join(self.examples)}{', ...' if self.documents > len(self.examples) else ''})"
        return f"{self.name!r}: {self.documents} {noun}{shown if self.examples else ''}"


def collection_summaries(cairn: Cairn, principal: Principal | None) -> list[CollectionSummary]:
    """The collections *principal* may use, each with the documents it may see (`Cairn.documents`)."""
    summaries: list[CollectionSummary] = []
    for name in cairn.collection_names(principal=principal):
        try:
            documents = cairn.documents(collection=name, principal=principal)
        except (NotFound, Forbidden):  # dropped since it was listed
            continue
        examples = tuple(document_name(d.source) for d in documents[:_EXAMPLES])
        summaries.append(CollectionSummary(name, len(documents), examples))
    return summaries


def _holdings(summaries: list[CollectionSummary]) -> str:
    if not summaries:
        return "No collection of this cairn server is visible to this caller yet."
    named = "; ".join(s.line() for s in summaries[:_NAMED_COLLECTIONS])
    rest = len(summaries) - _NAMED_COLLECTIONS
    more = f"; and {rest} more (see list_collections)" if rest > 0 else ""
    return f"This cairn server's collections, as this key sees them: {named}{more}."


def _schema(model: type[BaseModel], collections: list[str], default: str) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    properties: dict[str, Any] = schema.get("properties", {})
    for field in properties.values():
        field.pop("title", None)
    if "collection" in properties:
        names = ", ".join(repr(n) for n in collections) or "none yet"
        properties["collection"]["description"] = f"The collection to use: one of {names} (default {default!r})."
    return schema


_READ_ONLY = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)


def tools_for(cairn: Cairn, principal: Principal | None) -> list[types.Tool]:
    """The tools, described for *principal*: the collections it may use and what they hold."""
    summaries = collection_summaries(cairn, principal)
    holdings = _holdings(summaries)
    names = [s.name for s in summaries]
    default = cairn.settings.default_collection
    described = {
        "search": (
            "Search this cairn server's documents (only those this key may see) by meaning and keywords. Returns "
            "passages with source, location (page, section, lines), doc_id, version and chunk_id; read_passage and "
            f"read_document read further. {holdings}"
        ),
        "ask": (
            "Answer a question from this cairn server's documents that this key may see: each sentence cites a "
            "passage (source, location) and each citation is checked for how well it supports the sentence. "
            f"{holdings}"
        ),
        "list_collections": (
            "List the collections this key may use on this cairn server, with how many documents it may see in "
            f"each and example document names. {holdings}"
        ),
        "read_passage": (
            "Read one passage in full, as a search hit or an ask citation names it (doc_id, version, chunk_id), "
            "with its source and location. Only documents this key may see."
        ),
        "read_document": (
            "Read the text of one version of a document (doc_id from a search hit or citation; default the live "
            "version), up to max_chars characters from offset; the reply says where the next page starts. Only "
            "documents this key may see."
        ),
    }
    return [
        types.Tool(
            name=name,
            description=described[name],
            input_schema=_schema(_TOOLS[name][0], names, default),
            annotations=_READ_ONLY,
        )
        for name in _TOOLS
    ]


def run_tool(cairn: Cairn, name: str, arguments: dict[str, Any], principal: Principal | None) -> ToolOutput:
    """Run tool *name* as *principal*; cairn's errors (`InvalidRequest` for bad arguments) propagate."""
    if name not in _TOOLS:
        raise InvalidRequest(f"unknown tool {name[:100]!r}; the tools are {', '.join(_TOOLS)}")
    model, run = _TOOLS[name]
    try:
        parsed = model.model_validate(arguments)
    except ValidationError as exc:
        raise InvalidRequest(f"invalid arguments for {name}: {_problems(exc)}") from None
    return run(cairn, parsed, principal)


def _problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "arguments"
        given = f" (got {str(error['input'])[:80]!r})" if error["type"] != "missing" else ""
        problems.append(f"{where}: {error['msg']}{given}")
    return "; ".join(problems)


def _search(cairn: Cairn, args: SearchArguments, principal: Principal | None) -> ToolOutput:
    found = cairn.search(
        args.query, collection=args.collection, k=args.k, mode=args.mode, principal=principal, filter=args.filter
    )
    collection = args.collection or cairn.settings.default_collection
    return ToolOutput(render_hits(found, args.query, collection), found.model_dump(mode="json"))


def _ask(cairn: Cairn, args: AskArguments, principal: Principal | None) -> ToolOutput:
    answer = cairn.ask(args.question, collection=args.collection, k=args.k, principal=principal)
    return ToolOutput(render_answer(answer), answer.model_dump(mode="json"))


def _list(cairn: Cairn, args: ListArguments, principal: Principal | None) -> ToolOutput:
    summaries = collection_summaries(cairn, principal)
    data = {
        "collections": [{"name": s.name, "documents": s.documents, "examples": list(s.examples)} for s in summaries]
    }
    return ToolOutput(_holdings(summaries), data)


def _passage(cairn: Cairn, args: PassageArguments, principal: Principal | None) -> ToolOutput:
    read, chunk = read_passage(
        cairn, args.doc_id, args.chunk_id, version=args.version, collection=args.collection, principal=principal
    )
    source = read.document.source
    data = {"source": source, "collection": read.collection, **chunk.model_dump(mode="json", exclude={"token_count"})}
    return ToolOutput(render_chunk(source, chunk), data)


def _document(cairn: Cairn, args: DocumentArguments, principal: Principal | None) -> ToolOutput:
    read = read_version(cairn, args.doc_id, version=args.version, collection=args.collection, principal=principal)
    text = read.text()
    if args.offset > len(text):
        raise InvalidRequest(f"offset {args.offset} is past the end of the text ({len(text)} characters)")
    end = min(len(text), args.offset + args.max_chars)
    doc = read.document
    data = {
        "source": doc.source,
        "doc_id": doc.doc_id,
        "version": read.version,
        "collection": read.collection,
        "offset": args.offset,
        "end": end,
        "total": len(text),
        "text": text[args.offset : end],
    }
    return ToolOutput(render_version(doc.source, doc.doc_id, read.version, text, args.offset, args.max_chars), data)


_TOOLS: dict[str, tuple[type[BaseModel], Callable[[Cairn, Any, Principal | None], ToolOutput]]] = {
    "search": (SearchArguments, _search),
    "ask": (AskArguments, _ask),
    "list_collections": (ListArguments, _list),
    "read_passage": (PassageArguments, _passage),
    "read_document": (DocumentArguments, _document),
}
