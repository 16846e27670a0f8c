"""`cairn mcp`: cairn as an MCP server over stdin and stdout, for an agent that starts it itself."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from cairn.cli.output import errors_reported, fail

KEY_VARIABLE = "CAIRN_API_KEY"


def mcp(
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help=f"Without {KEY_VARIABLE}, act as the trusted local caller, who sees every document in CAIRN_HOME.",
        ),
    ] = False,
) -> None:
    """Serve MCP over stdio (tools: search, ask, list_collections, read_passage, read_document).

    The API key comes from the environment (CAIRN_API_KEY), is checked at start and again on every request,
    and the tools see exactly what it may see. stdout carries the protocol only; messages go to stderr.
    """
    from pydantic import SecretStr

    from cairn.core import Cairn
    from cairn.errors import Unauthenticated
    from cairn.mcp import serve_stdio

    token = os.environ.get(KEY_VARIABLE, "").strip()
    if token and local:
        fail(
            f"{KEY_VARIABLE} is set and --local was given: choose one (unset {KEY_VARIABLE} to run --local)",
            as_json=False,
            code=2,
        )
    if not token and not local:
        fail(
            f"no API key: set {KEY_VARIABLE} to a key from `cairn keys create` (a reader's key is enough), "
            "or pass --local to act as the trusted local caller, who sees every document in CAIRN_HOME",
            as_json=False,
            code=2,
        )
    with errors_reported(as_json=False), Cairn() as cairn:
        key = SecretStr(token) if token else None
        if key is not None:
            try:
                cairn.keys.authenticate(token)  # an unknown, expired or revoked key stops here, saying which
            except Unauthenticated as exc:
                fail(f"{KEY_VARIABLE} is not usable: {exc}", as_json=False, code=2)
        serve_stdio(cairn, key)
