"""cairn as an MCP server, on the official ``mcp`` SDK: ``cairn mcp`` over stdio, and ``/mcp`` of ``cairn serve``.

Tools: ``search``, ``ask``, ``list_collections``, ``read_passage`` and ``read_document``, each a thin call
into the `Cairn` methods the HTTP routes use, as the caller's principal (`cairn.mcp.tools`).

    server.py   the SDK's low-level Server: tools per request, errors as tool errors
    tools.py    arguments, per-key descriptions, the calls into Cairn
    reading.py  a cited passage or a version's text, as the key may see it
    render.py   results as text for an agent, passages fenced as data
    stdio.py    ``cairn mcp``: the key from CAIRN_API_KEY, checked on every request
    http.py     ``/mcp``: bearer keys checked on every request, stateless JSON responses
"""

from .http import MCP_PATH, MCPEndpoint, mount_mcp
from .server import build_server
from .stdio import serve_stdio

__all__ = ["MCP_PATH", "MCPEndpoint", "build_server", "mount_mcp", "serve_stdio"]
