# One entry point for users and CI. `make test` is what .ci/run calls.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv lint test run demo bench soak scale fuzz clean

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
	$(BIN)/python bench/proxy.py

# Mixed load against a server: throughput over time, p99, errors, RSS growth (SOAK_SECONDS).
SOAK_SECONDS ?= 30
soak: $(STAMP)
	$(BIN)/python bench/soak.py --seconds $(SOAK_SECONDS)

# GenerateDataKey/Decrypt throughput with 1 and 2 workers, on SQLite and PostgreSQL.
scale: $(STAMP)
	$(BIN)/python bench/scale.py

# Coverage-guided fuzzing of every parser that reads untrusted bytes (tests/fuzz/).
# FUZZ_SECONDS per target; FUZZ_TARGETS to pick; FUZZ_ARGS for extra libFuzzer flags.
# Corpus and crashes go to .fuzz/<target>/; it stops at the first crash.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= attestation cms ciphertext wire
FUZZ_ARGS    ?=

fuzz: $(STAMP)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s (corpus and crashes in .fuzz/$$t/)"; \
	  $(BIN)/python tests/fuzz/fuzz_$$t.py -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 $(FUZZ_ARGS); \
	done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .fuzz
