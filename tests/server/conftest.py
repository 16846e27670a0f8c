"""Server fixtures: one `cairn stack` (Milvus 2.3.5 standalone on SeaweedFS S3, loopback) per test session.

Every test here is marked `server`. The stack is started by the same code as `cairn stack up`, in a temporary
CAIRN_HOME, and stopped (and deleted) at the end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.server.stack_helpers import server_settings

from cairn import Cairn
from cairn.stack import LocalStack

pytestmark = pytest.mark.server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/server/" in str(item.fspath):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, dict[str, str]]]:
    local = LocalStack(tmp_path_factory.mktemp("stack-home"))
    try:
        exports = local.up()
        yield local, exports
    finally:
        local.down(purge=True)


@pytest.fixture
def stack_env(stack: tuple[LocalStack, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The stack's AWS_* settings in the environment (the vault reads them as the AWS CLI would)."""
    _, exports = stack
    for name, value in exports.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    return exports


@pytest.fixture
def server_cairn(stack_env: dict[str, str], tmp_path: Path, embedder) -> Iterator[Cairn]:  # type: ignore[no-untyped-def]
    instance = Cairn(server_settings(stack_env, tmp_path / "home"))
    instance._embedder = embedder
    yield instance
    instance.close()
