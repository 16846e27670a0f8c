"""An unreachable catalog is a clear, fast failure: a failing /readyz and a 503 that names the catalog, no hang."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from cairn import Cairn, Settings
from cairn.http import create_app

UNREACHABLE = "postgresql+psycopg://cairn:do-not-print@127.0.0.1:9/cairn"


def test_an_unreachable_catalog_fails_readiness_and_requests_quickly(tmp_path: Path) -> None:
    """/readyz answers 503 within seconds, and a search answers 503 `catalog_unavailable` saying what to check,
    without the password."""
    cairn = Cairn(Settings(home=tmp_path / "home", catalog_url=UNREACHABLE))
    try:
        with TestClient(create_app(cairn, dev=True), raise_server_exceptions=False) as client:
            started = time.monotonic()
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert ready.json()["components"]["catalog"] in ("unavailable", "timeout")
            found = client.post("/v1/search", json={"query": "leave"})
            assert time.monotonic() - started < 20
        assert found.status_code == 503
        error = found.json()["error"]
        assert error["code"] == "catalog_unavailable"
        assert "CAIRN_CATALOG_URL" in error["message"] or "reachable" in error["message"]
        assert "do-not-print" not in found.text
    finally:
        cairn.close()
