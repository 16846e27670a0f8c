"""Benchmarks runnable by anyone: `cairn bench ...` prints JSON and records the machine."""
