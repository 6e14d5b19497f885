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
# Export the embedding model to ONNX now (into ~/.cache/lede) rather than at the first start.
# Export both models to ONNX now, so the server never loads PyTorch (decision 44).
RUN python -c "from lede.indexer.encoders.embedder import SentenceTransformerEmbedder as E; E().warm_up()" \
    && python -c "from lede.service.answers.model import AnswerModel as A; A().warm_up()"
VOLUME ["/data"]

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
# Serves /data/index; on first start it indexes the bundled samples there (a no-op later).
CMD ["sh", "-c", "[ -e /data/index/manifest.json ] || lede index examples/articles.jsonl --index /data/index; exec lede serve --index /data/index --host 0.0.0.0 --port 8000"]
