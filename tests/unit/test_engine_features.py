"""Engine capability detection: which optional Milvus features cairn uses, by engine and version."""

from __future__ import annotations

import pytest

from cairn.index.features import detect_features, parse_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v2.3.5-lite", (2, 3, 5)), ("2.5.4", (2, 5, 4)), ("v2.6", (2, 6, 0)), ("", (0, 0, 0)), ("dev", (0, 0, 0))],
)
def test_versions_parse_from_what_servers_report(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(text) == expected


@pytest.mark.parametrize(("version", "bm25"), [("v2.3.5-lite", False), ("v2.4.15", False), ("v2.5.0", True)])
def test_bm25_and_hybrid_need_a_2_5_server(version: str, bm25: bool) -> None:
    features = detect_features("milvus-server", version)
    assert features.bm25 is bm25
    assert ("hybrid" in features.active) is bm25
    assert (features.fallback_warning is None) is bm25
    assert {"aliases", "partition_key", "consistency_per_read"} <= set(features.active)


def test_the_fallback_warning_names_the_version_and_what_happens() -> None:
    warning = detect_features("milvus-server", "v2.3.5-lite").fallback_warning
    assert warning is not None
    assert "v2.3.5-lite" in warning
    assert "run as dense" in warning


def test_milvus_lite_has_bm25_but_no_server_features() -> None:
    features = detect_features("milvus-lite", "2.5.1")
    assert features.active == ["bm25", "hybrid"]
    assert features.fallback_warning is None
