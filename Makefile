# One entry point for users and CI. `make test` is what .ci/run calls.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv lint test run demo bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -q

# Serve the KMS on 127.0.0.1:4599 with the embedded store in ./.enclave-kms.
run: $(STAMP)
	$(BIN)/enclave-kms serve --data-dir .enclave-kms

# The whole Nitro flow on one machine: KMS server, proxy, attested enclave, refused impostor.
demo: $(STAMP)
	$(BIN)/enclave-kms demo

# Each benchmark compares against its peer or the unavoidable crypto in the same run.
bench: $(STAMP)
	$(BIN)/python bench/verify.py
	$(BIN)/python bench/formats.py
	$(BIN)/python bench/core.py
	$(BIN)/python bench/server.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
