"""Pytest fixtures for a real SeaweedFS S3 server (see cairn/stack/seaweed.py); import them into a conftest.py.

    from tests.s3_fixtures import seaweed, seaweed_bucket  # noqa: F401

`seaweed` is one server for the whole session (about 0.7 s to start, 1-2 s to stop); `seaweed_bucket` is a fresh,
empty bucket on it for each test, so tests never see each other's objects. The first write into a new bucket costs
about 0.2 s (SeaweedFS grows a volume for it).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from cairn.stack.seaweed import SeaweedS3


@pytest.fixture(scope="session")
def seaweed() -> Iterator[SeaweedS3]:
    """A running `weed mini` with an authenticated S3 endpoint on 127.0.0.1, stopped at the end of the session."""
    with SeaweedS3() as server:
        yield server


@pytest.fixture
def seaweed_bucket(seaweed: SeaweedS3) -> str:
    """The name of a new, empty bucket on the session's server (left in place: the server's data dies with it)."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    seaweed.create_bucket(name)
    return name
