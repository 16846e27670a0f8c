"""pymilvus's own logging around cairn's expected refusals (probes, waits)."""

from __future__ import annotations

import logging

from cairn.index.milvus import quiet_pymilvus


def test_overlapping_quiet_blocks_restore_the_pymilvus_log_level_once_the_last_ends() -> None:
    """Two threads' probes overlap (A in, B in, A out, B out): pymilvus stays quiet until B is out, then logs
    at its own level again, never stuck at CRITICAL."""
    logger = logging.getLogger("pymilvus")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        first, second = quiet_pymilvus(), quiet_pymilvus()
        first.__enter__()
        second.__enter__()
        assert logger.level == logging.CRITICAL
        first.__exit__(None, None, None)
        assert logger.level == logging.CRITICAL  # B's probe is still running
        second.__exit__(None, None, None)
        assert logger.level == logging.WARNING
    finally:
        logger.setLevel(before)
