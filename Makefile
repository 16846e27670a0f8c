# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint install system-packages

# Debian packages: tesseract for OCR of images and scanned PDFs; chromium for the web UI's browser tests;
# postgresql for the catalog's PostgreSQL tests and `cairn stack` (cairn starts its own servers from its binaries).
APT_PACKAGES := tesseract-ocr tesseract-ocr-eng chromium postgresql

system-packages:
	@if ! command -v tesseract >/dev/null || ! command -v chromium >/dev/null \
		|| ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES); \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to 2.13.0 in pyproject.toml; pip (not uv/poetry) picks the local CPU wheel.
$(VENV)/.installed: pyproject.toml requirements/peers.txt | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps -r requirements/peers.txt
	touch $@

install: system-packages $(VENV)/.installed

demo: install
	$(BIN)/cairn demo

lint: install
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest
