"""An S3 endpoint that answers slowly: bounded waits, a clear error, nothing corrupted, and work goes on once it
answers in time again.

The vault is on a real SeaweedFS reached through `SlowProxy` (tests/slow_proxy.py), a test tool that holds back
each answer of the server. cairn waits at most ``s3_timeout_s`` for the store's next bytes, per attempt.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.slow_proxy import SlowProxy

from cairn import Cairn, Settings
from cairn.errors import StorageError
from cairn.stack.seaweed import SeaweedS3

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0
ATTEMPTS = 2


@pytest.fixture
def slow_store(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowProxy]:
    """The AWS variables aimed at a delaying proxy in front of the session's SeaweedFS."""
    assert seaweed.s3_port is not None
    proxy = SlowProxy(seaweed.s3_port)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    monkeypatch.setenv("AWS_REGION", seaweed.region)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield proxy
    proxy.close()


def test_a_slow_s3_endpoint_is_a_bounded_clear_error_and_corrupts_nothing(
    slow_store: SlowProxy, seaweed_bucket: str, tmp_path: Path, embedder
) -> None:  # type: ignore[no-untyped-def]
    """A store slower than the timeout fails an ingest's file within a few timeouts (not botocore's 60 s per
    read), with an error naming the store and what to check; a store slow but within the timeout still works; once
    the store answers in time again, the same ingest succeeds, each document is present once, verify is clean."""
    proxy = slow_store
    settings = Settings(
        home=tmp_path / "home",
        store=f"s3://{seaweed_bucket}/slow",
        s3_addressing_style="path",
        s3_timeout_s=TIMEOUT_S,
        s3_max_attempts=ATTEMPTS,
    )
    cairn = Cairn(settings)
    cairn._embedder = embedder
    sources = {}
    for name, text in [("leave", "Employees get 25 days of annual leave."), ("rota", "The rota is set in May.")]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{name}.md").write_text(f"# {name}\n\n{text}\n")
        sources[name] = folder
    try:
        assert cairn.ingest([sources["leave"]]).ingested == 1

        proxy.delay_s = 4 * TIMEOUT_S  # every answer later than the timeout
        started = time.monotonic()
        try:
            report = cairn.ingest([sources["rota"]])
        except StorageError as exc:
            error = str(exc)
        else:
            assert (report.ingested, len(report.failed)) == (0, 1), report
            error = report.failed[0].error
        waited = time.monotonic() - started
        print(f"\na store {proxy.delay_s:g} s slow failed the ingest after {waited:.1f} s: {error}")
        assert waited < 30, f"the ingest waited {waited:.0f} s on a stalled store"
        assert seaweed_bucket in error, error
        assert "AWS_ENDPOINT_URL" in error, error

        proxy.delay_s = TIMEOUT_S / 5  # slow, but each answer within the timeout
        assert cairn.verify().clean
        assert [Path(d.source).name for d in cairn.documents()] == ["leave.md"]

        proxy.delay_s = 0.0
        again = cairn.ingest([sources["rota"]])
        assert (again.ingested, again.failed) == (1, [])
        assert sorted(Path(d.source).name for d in cairn.documents()) == ["leave.md", "rota.md"]
        assert cairn.verify().clean
    finally:
        cairn.close()
