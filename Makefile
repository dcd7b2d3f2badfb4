# babelfuse: `make run` builds everything and runs the pipeline; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help install run test test-fast lint ui dashboard clean lock

help:  ## show this help
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	{ $(BIN)/python -m pip install --quiet -r requirements.lock 2>&1; echo $$? > $(VENV)/.pip-rc; } \
	  | grep -v "is ignored: it is neither" || true
	test "$$(cat $(VENV)/.pip-rc)" = 0
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	$(BIN)/dvc config --global core.analytics false 2>/dev/null || true
	touch $@

install: $(BIN)/.installed  ## create .venv from requirements.lock (only when missing or stale)

run: install  ## run the whole DVC pipeline on the bundled dataset (logs to MLflow at ./mlflow.db)
	BABELFUSE_RUN_GROUP=repro-$$(date +%Y%m%d-%H%M%S) dvc repro

test: install  ## run the test suite (slow tests included)
	pytest

test-fast: install  ## run the tests not marked slow
	pytest -m "not slow"

lint: install  ## ruff
	ruff check src tests benchmarks

ui: install  ## MLflow UI on http://127.0.0.1:5000
	mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri $(MLFLOW_TRACKING_URI)

dashboard: install  ## optuna-dashboard on the tune stage's study storage, http://127.0.0.1:8080
	optuna-dashboard --host 127.0.0.1 --port 8080 $$($(BIN)/python -c "import yaml;print(yaml.safe_load(open('params.yaml'))['tune']['storage'])")

lock:  ## rewrite requirements.lock from the current .venv
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' | grep -v '^babelfuse' > requirements.lock

clean:  ## remove pipeline outputs (not .venv, not mlflow.db)
	rm -rf data/raw data/validated data/features data/fused models metrics plots reports
