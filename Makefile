# Account Radar — set up with uv (installed into .tools/ when it is not on PATH).
# `make demo` runs the main job on the embedded sample workspace; `make test` runs the tests.

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
SAMPLE := workspace/sample
RADAR = $(UV) run --frozen $(EXTRAS) radar
# optional extras, e.g. EXTRAS="--extra spark" for `build-features --engine spark` (CI sets it)
EXTRAS ?=

.PHONY: setup demo serve bento lint format test test-slow clean

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

setup: $(if $(findstring .tools,$(UV)),$(UV))
	$(UV) sync --frozen $(EXTRAS)

demo: setup
	$(RADAR) sample-data $(SAMPLE)
	$(RADAR) ingest $(SAMPLE)
	$(RADAR) build-features
	$(RADAR) train --target all --promote
	$(RADAR) score --to workspace
	$(RADAR) digest
	$(RADAR) backtest
	@echo "Next: 'make serve', then open http://127.0.0.1:3000/ui/ (portfolio, accounts, alert queue, leadership)"

# the HTTP service on the champion models (after `make demo`): http://127.0.0.1:3000
serve: setup
	$(RADAR) serve

# package the service as a Bento (bentoml build runs uv, so it must be on PATH)
bento: setup
	PATH="$(dir $(UV)):$$PATH" $(UV) run --frozen bentoml build

# ruff (lint and format), mypy on the typed modules, and the import rules of the layout
lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy
	$(UV) run --frozen lint-imports

format: setup
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

test: setup
	$(UV) run --frozen $(EXTRAS) pytest -m "not slow"

# slow tests (marked @pytest.mark.slow); exit code 5 means none are collected
test-slow: setup
	$(UV) run --frozen $(EXTRAS) pytest -m slow; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

clean:
	rm -rf out workspace .pytest_cache
