# CPU image that indexes and searches articles with Lede.
FROM python:3.11-slim

# TOKENIZERS_PARALLELISM is a setting, not a secret.
# hadolint ignore=DL3064
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY service ./service
COPY eval ./eval
COPY examples ./examples
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
    && pip install .

RUN useradd --create-home --uid 10001 lede && mkdir -p /data && chown lede /data
USER 10001
VOLUME ["/data"]

# Index the bundled samples unless /data already holds an index, then show its summary.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["lede", "info", "--index", "/data/index"]
CMD ["sh", "-c", "lede index examples/articles.jsonl --index /data/index && lede info --index /data/index && sleep infinity"]
