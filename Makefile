# `make demo` and `make test` do all the set-up on a fresh machine with Python and make.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test stress integration lint venv bench docs clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# A stamp per extra, so a second `make` reinstalls only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/python examples/quickstart.py

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,dev,postgres,prov]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

# The quick suite: a few minutes. Long runs are in `make stress`; the real MLflow,
# DVC and OpenLineage clients (large installs) in `make integration`.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not stress" --ignore=tests/integration

# Load, fault and crash tests, bounded to a few minutes (CI runs them too).
stress: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m stress --ignore=tests/integration

# The type and lint gates CI runs before the tests.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check lineage tests benchmarks examples
	$(BIN)/mypy

# Real MLflow, DVC and OpenLineage clients, in an environment of their own (MLflow
# pins much of the scientific stack; the main one stays light).
INTEG := .venv-integration
$(INTEG)/.installed: pyproject.toml
	$(PY) -m venv $(INTEG)
	$(INTEG)/bin/python -m pip install -q --upgrade pip
	$(INTEG)/bin/python -m pip install -q -e '.[test,mlflow,dvc,openlineage,prov,pandas]'
	touch $@

integration: $(INTEG)/.installed
	$(INTEG)/bin/python -m pytest -q tests/integration

# docs/cli.md is generated from the commands' --help (tests/test_docs.py checks it);
# docs/lineage.svg and docs/example-audit.html from the quickstart
docs: $(VENV)/.installed
	$(BIN)/python docs/make_cli_reference.py
	$(BIN)/python docs/make_examples.py
	$(BIN)/python docs/make_architecture.py

# The full goals need the 1M-node store (built once, ~30 s, cached in benchmarks/.cache);
# `make bench QUICK=1` runs smaller sizes in a minute or two.
# The peers' benchmarks run their peer's half when it is there (MLMD: the interpreter
# $MLMD_PYTHON names; MLflow: `make integration`'s venv) and say so when it is not.
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_tracking.py $(if $(QUICK),--quick)
	$(BIN)/python benchmarks/bench_queries.py $(if $(QUICK),--sizes 10k,100k --quick)
	$(BIN)/python benchmarks/bench_audit.py $(if $(QUICK),--size 100k --models 5)
	$(BIN)/python benchmarks/bench_vs_mlmd.py $(if $(QUICK),--groups 200)
	$(BIN)/python benchmarks/bench_trace_vs_mlmd.py $(if $(QUICK),--sizes 10k)
	PYTHONPATH=$(CURDIR) $(if $(wildcard $(INTEG)/bin/python),$(INTEG),$(VENV))/bin/python benchmarks/bench_mlflow.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) $(INTEG) out .lineage build *.egg-info
