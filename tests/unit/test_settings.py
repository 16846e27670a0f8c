from pathlib import Path

import pytest
from pydantic import ValidationError

from cairn.settings import Settings


def test_env_prefix_sets_fields(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """CAIRN_HOME and CAIRN_MILVUS_URI are read from the environment."""
    monkeypatch.setenv("CAIRN_HOME", str(tmp_path))
    monkeypatch.setenv("CAIRN_MILVUS_URI", "http://127.0.0.1:19530")
    settings = Settings()
    assert settings.home == tmp_path
    assert settings.engine_uri == "http://127.0.0.1:19530"


def test_default_engine_is_milvus_lite_file_under_home(tmp_path: Path) -> None:
    """Without a server URI the engine is a Milvus Lite file inside CAIRN_HOME."""
    settings = Settings(home=tmp_path)
    assert settings.engine_uri == str(tmp_path / "milvus.db")
    assert settings.vault_dir == tmp_path / "vault"


def test_toml_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A cairn.toml supplies values; the environment overrides it."""
    config = tmp_path / "cairn.toml"
    config.write_text('default_collection = "handbook"\nrrf_k = 20\n')
    monkeypatch.setenv("CAIRN_CONFIG", str(config))
    monkeypatch.setenv("CAIRN_RRF_K", "40")
    settings = Settings()
    assert settings.default_collection == "handbook"
    assert settings.rrf_k == 40


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("default_collection", "Bad Name", "invalid collection name"),
        ("milvus_uri", "localhost:19530", "neither a server URI"),
        ("chunk_overlap_tokens", 200, "less than half"),
        ("embed_batch_size", 0, "greater than or equal to 1"),
    ],
)
def test_invalid_values_are_rejected_with_the_reason(field: str, value: object, needle: str) -> None:
    """Bad settings fail at construction, naming the field and why."""
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    assert needle in str(caught.value)
    assert field in str(caught.value)


def test_secrets_are_redacted_in_public_dict() -> None:
    """The Milvus token never appears in printable settings."""
    settings = Settings(milvus_token="user:supersecret")
    assert "supersecret" not in str(settings.public_dict())
    assert "supersecret" not in repr(settings)
