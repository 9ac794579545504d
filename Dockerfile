# syntax=docker/dockerfile:1
# Two stages: `build` installs the pinned, hash-checked dependencies (deploy/requirements.lock,
# made by pip-compile from pyproject.toml, see docs/operating.md) and the project into a
# virtualenv; the runtime stage copies only that virtualenv, the Feast repo and the scripts.
# One image for every service: api, setup, nightly (`reco schedule`), feature-server.

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY deploy/requirements.lock /tmp/requirements.lock
RUN pip install --require-hashes --no-deps -r /tmp/requirements.lock
WORKDIR /src
COPY pyproject.toml README.md ./
COPY recommender ./recommender
COPY jobs ./jobs
COPY api ./api
RUN pip install --no-deps . && pip check

FROM python:3.11.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1 \
    PATH=/opt/venv/bin:$PATH RECO_HOST=0.0.0.0 RECO_PORT=8000
# libgomp: the OpenMP runtime of implicit and faiss
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY feature_repo ./feature_repo
COPY scripts ./scripts
RUN useradd --create-home reco && mkdir -p /app/artifacts /app/.cache /app/feature_repo/data \
    && chown -R reco /app
USER reco
EXPOSE 8000 6566
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s CMD ["reco", "healthcheck"]
CMD ["reco", "serve"]
