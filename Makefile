# The two commands the README opens with, and the checks CI runs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STORYBOARD ?= examples/launch-teaser.yaml
OUT ?= launch-teaser.mp4
TINY ?= reelgate-data/tiny-models
export REELGATE_TEST_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install install-dev demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0  # the CPU wheel; a bare torch pulls CUDA builds
	$(BIN)/pip install -q -e '.[server,local,gpu]'

install-dev: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0  # the CPU wheel; a bare torch pulls CUDA builds
	$(BIN)/pip install -q -e '.[dev]'

# One shot runs the real diffusers path on tiny random-weight Wan (noise frames).
demo: install
	$(BIN)/reelgate local-backend make-tiny $(TINY)
	REELGATE_LOCAL_MODELS=$(TINY)/models.toml $(BIN)/reelgate render $(STORYBOARD) -o $(OUT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy reelgate adapters gateway local_backend emulator

test: install-dev lint
	$(BIN)/pytest -q

bench: install-dev
	$(BIN)/python benchmarks/embedded_overhead.py
	$(BIN)/python benchmarks/local_backend.py
	$(BIN)/python benchmarks/vendor_inflight.py --jobs 300
	$(BIN)/python benchmarks/storage.py
	$(BIN)/python benchmarks/billing_submit.py

clean:
	rm -rf reelgate-data $(OUT) .pytest_cache
