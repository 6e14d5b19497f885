"""The service's settings: one typed object, read from `LEDE_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lede.indexer.runtime import Backend, ModelRuntime, default_cache_dir
from lede.service.engine import EngineSettings
from lede.service.fusion import FusionMethod, Normalization

# Retrieval defaults live in one place, the engine's settings (chosen in docs/decisions.md).
ENGINE = EngineSettings()


class RuntimeSettings(BaseSettings):
    """How every `lede` command and the service run models (`LEDE_EMBED_BACKEND`,
    `LEDE_CACHE_DIR`, `LEDE_MODEL_THREADS`); the process's entry point hands `runtime()` to the
    library."""

    model_config = SettingsConfigDict(env_prefix="LEDE_", extra="ignore")

    embed_backend: Backend = Field(
        "onnx",
        description="Run the embedding and answer models in ONNX Runtime without PyTorch "
        "(onnx) or in PyTorch (torch).",
    )
    cache_dir: Path | None = Field(
        None, description="Where the models' ONNX exports are cached (default ~/.cache/lede)."
    )
    model_threads: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="Threads each model computes on (ONNX Runtime's; a `lede` command also "
        "gives PyTorch this many). Default: one per core. With several processes on one "
        "machine (`--workers`), give each its share.",
    )

    @field_validator("embed_backend", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def runtime(self) -> ModelRuntime:
        cache = default_cache_dir() if self.cache_dir is None else self.cache_dir
        return ModelRuntime(self.embed_backend, cache, self.model_threads)


class Settings(RuntimeSettings):
    """Everything `lede serve` can be told. Each field is also `LEDE_<NAME>` in the env."""

    model_config = SettingsConfigDict(env_prefix="LEDE_", extra="ignore")

    index: Path = Field(description="Index directory to serve.")
    model: str | None = Field(None, description="Embedding model (default: the index's own).")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)

    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        repr=False,
        description="Comma-separated keys for write endpoints. None set: writes are refused.",
    )
    read_requires_key: bool = Field(False, description="Also require an API key for reads.")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated origins allowed by CORS (off if empty)."
    )

    write_timeout: float = Field(
        30.0, gt=0, description="Seconds a write waits for another writer before 503."
    )
    max_query_chars: int = Field(1000, ge=1)
    max_k: int = Field(100, ge=1)
    max_batch: int = Field(100, ge=1, description="Articles per POST /articles.")
    max_body_bytes: int = Field(10_000_000, ge=1024)

    fusion: FusionMethod = ENGINE.fusion
    normalization: Normalization = ENGINE.normalization
    rrf_k: float = Field(ENGINE.rrf_k, gt=0)
    alpha: float = Field(ENGINE.alpha, ge=0, le=1)
    candidates: int = Field(ENGINE.candidates, ge=1)
    ef_search: int | None = Field(None, ge=1, description="HNSW efSearch (HNSW indexes).")
    nprobe: int | None = Field(None, ge=1, description="IVF lists probed (IVF indexes).")
    answer_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Answer only at this confidence or above; unset: the answer model's own "
        "threshold, chosen on dev splits.",
    )
    answer_passages: int = Field(5, ge=1, le=50)
    slack_signing_secret: str | None = Field(
        None,
        repr=False,
        description="Slack app signing secret; the Slack endpoint refuses requests without it.",
    )
    slack_max_body_bytes: int = Field(16_384, ge=256)
    mcp_enabled: bool = Field(True, description="Serve the MCP tools at /mcp.")
    reranker_model: str | None = None
    reader_model: str | None = None

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys_are_long_enough(cls, value: list[str]) -> list[str]:
        short = [key for key in value if len(key) < 16]
        if short:
            raise ValueError(
                f"{len(short)} API key(s) shorter than 16 characters; use long random keys"
            )
        return value
