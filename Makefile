# OneCard Hub — the commands README.md lists. Everything runs from ./.venv/bin explicitly;
# no activated venv is needed. Every target is .PHONY (a folder named loadtest/ exists).

PYTHON_BOOTSTRAP ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# Re-install when the dependencies or their lock change; repeated runs are then a no-op.
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# Prometheus' checker for deploy/prometheus (make lint, make test): a promtool on PATH, else ./.tools/bin/promtool,
# which `make lint` and `make test` unpack from Debian's package when it is missing (`make promtool`).
PROMTOOL ?= $(firstword $(shell command -v promtool 2>/dev/null) .tools/bin/promtool)

.PHONY: venv lock lock-upgrade demo test check lint fmt protos contract-docs bench bench-blocklist bench-scale bench-tap-path bench-fold loadtest fuzz promtool clean

venv: $(STAMP)

# Installs exactly what requirements.lock pins, every file checked against its hash, then the project itself
# (editable, built by the locked hatchling). Refuses to install when the lock was made from another
# pyproject.toml: run `make lock`.
$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON_BOOTSTRAP) scripts/lock.py --check
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# After editing pyproject.toml's dependencies: re-resolve, keeping every pin that still fits.
lock:
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) scripts/lock.py

# Every pin to the newest release the bounds allow; then `make protos` and `make test` before committing.
lock-upgrade:
	test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) scripts/lock.py --upgrade

# A short meal-rush scenario: seeds 2 schools, starts its own hub on a simulated clock, plays lunch
# 11:00–13:00 in 12 s, prints the summary; report.json, chart.png and hub.log go to .demo/meal-rush/.
demo: venv
	rm -rf .demo/meal-rush
	$(BIN)/onecard-sim scenario meal-rush --duration 12 --seed 7 --students 1000 --out .demo/meal-rush

# The fuzz suite at length (tests/fuzz/): FUZZ_MESSAGES messages in all, spread over every RPC the hub serves,
# random each run; prints the figures by status code. `make test` runs a few fixed examples per RPC.
FUZZ_MESSAGES ?= 100000
fuzz: venv
	ONECARD_FUZZ_MESSAGES=$(FUZZ_MESSAGES) $(BIN)/pytest -q tests/fuzz --hypothesis-profile=onecard-fuzz

# pytest exits 5 when it collected no test: that must fail loudly, not pass quietly.
test: venv promtool
	@$(BIN)/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: FAILED — pytest collected no tests (exit 5)" >&2; exit 1; fi; \
	exit $$rc

check: lint
	@$(BIN)/pytest -q -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make check: FAILED — pytest collected no fast tests (exit 5)" >&2; exit 1; fi; \
	exit $$rc

# Runs every checker even when an earlier one fails, then fails if any did.
lint: venv promtool
	@failed=""; \
	echo "== ruff format --check"; $(BIN)/ruff format --check --output-format concise . || failed="$$failed ruff-format"; \
	echo "== ruff check"; $(BIN)/ruff check . || failed="$$failed ruff-check"; \
	echo "== mypy"; $(BIN)/mypy || failed="$$failed mypy"; \
	echo "== buf lint"; (cd protos && ../$(BIN)/buf lint) || failed="$$failed buf-lint"; \
	echo "== lock"; $(PY) scripts/lock.py --check || failed="$$failed lock"; \
	echo "== stub staleness"; $(PY) scripts/gen_protos.py --check || failed="$$failed stubs"; \
	echo "== contract docs"; $(PY) scripts/gen_contract_docs.py --check || failed="$$failed contract-docs"; \
	echo "== promtool (deploy/prometheus: the scrape config, the alert rules and their tests)"; \
	if [ -x "$(PROMTOOL)" ]; then \
		{ $(PROMTOOL) check config deploy/prometheus/prometheus.yml \
		  && $(PROMTOOL) test rules deploy/prometheus/rules/onecard-hub.rules.test.yml; } || failed="$$failed promtool"; \
	else \
		echo "promtool is not installed: run \`make promtool\` (Debian's prometheus package, unpacked into .tools/)" >&2; \
		failed="$$failed promtool(missing)"; \
	fi; \
	if [ -n "$$failed" ]; then echo "make lint: FAILED:$$failed" >&2; exit 1; fi; \
	echo "make lint: all checks passed"

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

protos: venv
	$(PY) scripts/gen_protos.py

# protos/CONTRACT.md from the proto comments, protos/contract_notes.toml and the hub's decline texts.
contract-docs: venv
	$(PY) scripts/gen_contract_docs.py

bench: venv
	$(PY) scripts/bench.py

# promtool into ./.tools/bin (make lint and the deploy/ tests check deploy/prometheus with it): the binary out
# of Debian's `prometheus` package, downloaded and unpacked, not installed (no service starts). Only when no
# promtool is on PATH.
promtool:
	@test -x "$(PROMTOOL)" || bash scripts/install_promtool.sh

bench-blocklist: venv
	$(PY) scripts/bench_blocklist.py

# Start-up time, memory, throughput and disk bytes per call of a hub with 20,000 and with 1,000,000 cards;
# the seeded campuses are kept in .bench/scale/ (a million takes minutes to seed, once per schema version).
bench-scale: venv
	$(PY) scripts/bench_scale.py

# Where a tap's CPU goes inside the hub (no gRPC): each phase of Authorize alone, the whole call at 64 and at
# 1 per commit, with and without the fsync; last line `bench-tap-path: …`.
bench-tap-path: venv
	$(PY) scripts/bench_tap_path.py

# What the journal's folds cost the calls served meanwhile (no gRPC, 1,000 calls/s after a burst): loop lag,
# commit waits, the fold's longest stretch on the loop and on the journal's thread, folds on and off;
# last line `bench-fold: …`.
bench-fold: venv
	$(PY) scripts/bench_fold.py

# A short headless Locust run (the meal rush, 30 s) against a freshly seeded local hub on a simulated clock;
# CSV and HTML go to loadtest/results/<timestamp>/; non-zero exit when any request failed.
# More: make loadtest LOADTEST_ARGS="--shape morning-gate --rate 400 --seconds 60" (see loadtest/README.md).
LOADTEST_ARGS ?=
loadtest: venv
	$(PY) -m onecard_load.run $(LOADTEST_ARGS)

clean:
	rm -rf $(VENV) .tools build dist .mypy_cache .ruff_cache .pytest_cache .demo .bench
	find . -path ./.git -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -prune -exec rm -rf {} +
