# babelfuse: `make run` builds everything and runs the pipeline; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
export TF_CPP_MIN_LOG_LEVEL ?= 2

# The model `make serve` and `make predict` use (any MLflow model URI), and the port it is served on.
MODEL_URI  ?= models:/babelfuse@champion
SERVE_PORT ?= 5001
# `make predict` sends one post; set any of these on the command line (IMAGE/AUDIO: file paths).
POST_LANG  ?= fr
POST_TEXT  ?= Quel repas horrible.
POST_IMAGE ?=
POST_AUDIO ?=

# `make server`: the shared MLflow tracking server (PostgreSQL backend store, proxied artifacts).
SERVER_PORT ?= 5050
ARTIFACTS   ?= $(CURDIR)/mlartifacts

.PHONY: help install run results test test-fast lint ui dashboard serve predict server push pull clean lock

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
	python -m babelfuse.evaluation.results_doc

results: install  ## regenerate docs/RESULTS.md from metrics/*.json (and benchmarks/results/fusion.json)
	python -m babelfuse.evaluation.results_doc

test: install  ## run the test suite (slow tests included), one worker per core (2), a file per worker
	pytest -n 2 --dist loadfile

test-fast: install  ## run the tests not marked slow
	pytest -m "not slow"

lint: install  ## ruff
	ruff check src tests benchmarks

ui: install  ## MLflow UI on http://127.0.0.1:5000
	mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri $(MLFLOW_TRACKING_URI)

dashboard: install  ## optuna-dashboard on the tune stage's study storage, http://127.0.0.1:8080
	optuna-dashboard --host 127.0.0.1 --port 8080 $$($(BIN)/python -c "import yaml;print(yaml.safe_load(open('params.yaml'))['tune']['storage'])")

serve: install  ## serve the champion model on http://127.0.0.1:5001 (MODEL_URI=..., SERVE_PORT=...)
	mlflow models serve -m $(MODEL_URI) --env-manager local --host 127.0.0.1 --port $(SERVE_PORT)

predict: install  ## one post through the champion: POST_LANG=de POST_TEXT="..." [POST_IMAGE=, POST_AUDIO=]
	babelfuse predict --model-uri $(MODEL_URI) --lang "$(POST_LANG)" --text "$(POST_TEXT)" \
	  $(if $(POST_IMAGE),--image "$(POST_IMAGE)") $(if $(POST_AUDIO),--audio "$(POST_AUDIO)")

server: install  ## shared MLflow tracking server on http://127.0.0.1:5050 (PostgreSQL from BABELFUSE_DB_URL, else a local one)
	@url="$${BABELFUSE_DB_URL:-}"; \
	if [ -z "$$url" ]; then \
	  echo "make server: BABELFUSE_DB_URL is not set: using a local PostgreSQL (scripts/postgres.sh)"; \
	  url="$$(bash scripts/postgres.sh babelfuse)" || exit 1; \
	fi; \
	echo "make server: backend store $$(echo $$url | sed 's#://[^@]*@#://***@#'), artifacts in $(ARTIFACTS)"; \
	echo "make server: point the pipeline at it with  export MLFLOW_TRACKING_URI=http://127.0.0.1:$(SERVER_PORT)"; \
	mlflow server --host 127.0.0.1 --port $(SERVER_PORT) --backend-store-uri "$$url" \
	  --serve-artifacts --artifacts-destination "$(ARTIFACTS)"

push: install  ## dvc push: data, features and models to the default DVC remote (.dvc/config)
	dvc push

pull: install  ## dvc pull: fetch what `dvc push` stored (then `dvc status` is clean)
	dvc pull

lock:  ## rewrite requirements.lock from the current .venv
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu$$//' | grep -v '^babelfuse' > requirements.lock

clean:  ## remove pipeline outputs (not .venv, not mlflow.db)
	rm -rf data/raw data/validated data/features data/fused models metrics plots reports
