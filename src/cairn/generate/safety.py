"""Keep what sources say from acting on the reader: answers carry no remote links or images.

Retrieved passages are data, not instructions, and may have been planted. An answer built from
them must not make a browser or a chat client fetch anything: Markdown images and links keep only
their text, HTML tags go, and bare URLs (any scheme that reaches the network) are replaced by a
marker. Control and zero-width characters are already removed at ingest (`cairn.parse.text`).
"""

from __future__ import annotations

import re

__all__ = ["REMOVED_LINK", "defang"]

REMOVED_LINK = "[link removed]"

_MD_IMAGE = re.compile(r"!\[([^\]]{0,500})\]\([^)]{0,2000}\)")
_MD_LINK = re.compile(r"\[([^\]]{0,500})\]\([^)]{0,2000}\)")
_MD_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]{1,200}\]:\s*\S+.*$", re.MULTILINE)
_HTML_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^>]{0,2000}>")
_URL = re.compile(r"\b(?:https?|ftp|wss?|file|data|javascript)\s*:[^\s<>\"')\]]+", re.IGNORECASE)
_WWW = re.compile(r"\bwww\.[^\s<>\"')\]]+", re.IGNORECASE)


def defang(text: str) -> str:
    """*text* without images, links, HTML tags or URLs; their visible words stay."""
    text = _MD_IMAGE.sub(lambda m: m.group(1), text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = _MD_REFERENCE.sub("", text)
    text = _HTML_TAG.sub("", text)
    text = _URL.sub(REMOVED_LINK, text)
    return _WWW.sub(REMOVED_LINK, text)
