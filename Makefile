# The two commands the README opens with, and the checks CI runs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STORYBOARD ?= examples/launch-teaser.yaml
OUT ?= launch-teaser.mp4
export REELGATE_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install install-dev demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e '.[server,local]'

install-dev: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0  # the CPU wheel; a bare torch pulls CUDA builds
	$(BIN)/pip install -q -e '.[dev]'

demo: install
	$(BIN)/reelgate render $(STORYBOARD) -o $(OUT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy reelgate adapters gateway local_backend

test: install-dev lint
	$(BIN)/pytest -q

bench: install-dev
	$(BIN)/python benchmarks/embedded_overhead.py

clean:
	rm -rf reelgate-data $(OUT) .pytest_cache
