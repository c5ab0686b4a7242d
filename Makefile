# The two quick-start commands: `make run` serves a node on http://127.0.0.1:8080; `make test` runs CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check lint typecheck pytest vectors screenshots bench bench-setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,fast]'
	touch $(STAMP)

run: $(STAMP)
	./scripts/build-web
	$(BIN)/chatserver serve

test: $(STAMP)
	./scripts/test

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

vectors: $(STAMP)
	$(BIN)/python scripts/gen_vectors.py
	$(BIN)/python scripts/gen_replica_fixtures.py

screenshots: $(STAMP)
	./scripts/build-web
	$(BIN)/python scripts/screenshots.py

bench-setup: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,fast,bench]'
	cd bench/node-peer && npm ci --no-audit --no-fund

bench: bench-setup
	$(BIN)/python bench/run.py --write-docs

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
