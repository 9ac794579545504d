FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OPENBLAS_NUM_THREADS=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# libgomp: OpenMP runtime for implicit and faiss
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY recommender ./recommender
COPY jobs ./jobs
COPY api ./api
RUN pip install --no-cache-dir .
COPY feature_repo ./feature_repo
COPY scripts ./scripts
RUN useradd --create-home reco && mkdir -p /app/artifacts /app/.cache /app/feature_repo/data \
    && chown -R reco /app
USER reco
EXPOSE 8000
CMD ["reco", "serve", "--host", "0.0.0.0", "--port", "8000"]
