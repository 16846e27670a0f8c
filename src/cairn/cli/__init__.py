"""The `cairn` command line: a thin layer over `cairn.Cairn`."""

from cairn.cli.app import app, main

__all__ = ["app", "main"]
