"""Export a Hugging Face model to an ONNX graph (needs PyTorch; the graphs run without it).

A light graph (`light=True`) takes the token embeddings as its input instead of token ids: the
word-embedding table (30,522 x 384 floats, 47 MB for MiniLM, the same in the embedding and the
answer model) is stored once as a `.npy` file beside the graphs and looked up through a memory
map, so a serving process holds in memory only the rows of the tokens it has seen, and both
models share one file (decision 44). Light graphs keep their weights in a file beside them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lede.indexer.encoders.onnx_cache import (
    OPSET,
    OnnxUnavailable,
    cache_dir,
    package_version,
    sidecar_path,
    write_atomic,
)

logger = logging.getLogger(__name__)

EMBEDS = "inputs_embeds"


def export_graph(
    model: Any,
    output: str,
    features: dict[str, Any],
    names: list[str],
    *,
    light: bool,
    per_token: bool = False,
) -> tuple[bytes, np.ndarray | None]:
    """The ONNX graph of `model(**inputs).<output>`, traced on `features` (tensors by input
    name), taking `names` as inputs (`inputs_embeds` in place of `input_ids` when `light`);
    and, when `light`, the word-embedding table the graph expects its input looked up in.
    `per_token`: the output has a row per token (its second axis varies with the input's).

    Raises:
        OnnxUnavailable: the export failed.
    """
    import torch

    inputs = [EMBEDS if light and name == "input_ids" else name for name in names]
    models = [module for module in model.modules() if hasattr(module, "set_attn_implementation")]

    class Selected(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *values: torch.Tensor) -> torch.Tensor:
            given = dict(zip(inputs, values, strict=True))
            return getattr(self.inner(**given, return_dict=True), output)  # type: ignore[no-any-return]

    table = model.get_input_embeddings().weight if light else None
    examples = []
    for name in inputs:
        if name == EMBEDS:
            assert table is not None
            examples.append(torch.nn.functional.embedding(features["input_ids"], table))
        else:
            examples.append(features[name])
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "tokens"} for name in inputs}
    axes[output] = {0: "batch", 1: "tokens"} if per_token else {0: "batch"}
    try:
        with (
            tempfile.TemporaryDirectory() as scratch,
            torch.inference_mode(),
            warnings.catch_warnings(),
            eager_attention(models),
        ):
            target = Path(scratch) / "model.onnx"
            warnings.simplefilter("ignore")  # tracer notes on shapes; outputs are checked
            torch.onnx.export(
                Selected(model).eval(),
                tuple(examples),
                target,
                input_names=inputs,
                output_names=[output],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
            data = target.read_bytes()
    except Exception as error:
        raise OnnxUnavailable(f"ONNX export failed: {error}") from error
    weights = None if table is None else table.detach().float().numpy().copy()
    return data, weights


@contextmanager
def eager_attention(models: list[Any]) -> Iterator[None]:
    """Trace the attention as plain matrix products (transformers' "eager" implementation)
    instead of PyTorch's `scaled_dot_product_attention`, whose trace scales the queries and the
    keys apart and guards every attention matrix against NaN (IsNaN, Where): elementwise passes
    over each batch x heads x tokens x tokens tensor. Eager graphs embedded 600 Reuters
    articles in 0.88x the time, with the same vectors to 1.2e-7 (decision 57). Each model's
    implementation is restored after."""
    before = [model.config._attn_implementation for model in models]
    for model in models:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        for model, implementation in zip(models, before, strict=True):
            model.set_attn_implementation(implementation)


def write_light_graph(path: Path, graph: bytes) -> None:
    """Store a graph in the cache with its weights in a file beside it (`PATH.data`): ONNX
    Runtime maps external weights from the file instead of copying them out of the parsed
    model, which halved a session's memory (decision 44)."""
    import onnx

    model = onnx.load_from_string(graph)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = f"{path.name}.data"
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        staged = Path(scratch) / path.name
        onnx.save_model(
            model,
            str(staged),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=data,
            size_threshold=1024,
        )
        os.replace(Path(scratch) / data, path.parent / data)
        os.replace(staged, path)


def write_light_export(
    path: Path, graph: bytes, table: np.ndarray, sidecar: dict[str, Any]
) -> bool:
    """Store a light graph, its word-embedding table and its sidecar (the sidecar last: what a
    runner looks for); False when the cache is not writable."""
    try:
        full = {
            **sidecar,
            "embeddings": write_table(table),
            "exported_with": {
                "torch": package_version("torch"),
                "onnxruntime": package_version("onnxruntime"),
            },
        }
        write_light_graph(path, graph)
        write_atomic(sidecar_path(path), json.dumps(full).encode())
    except OSError as error:
        logger.info("ONNX cache %s not writable (%s)", path, error)
        return False
    logger.info("exported %s to %s", sidecar.get("kind"), path)
    return True


def write_table(table: np.ndarray) -> str:
    """Store a word-embedding table in the cache under its content's hash (so two models with
    the same table share one file); returns the file's name."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(table, dtype=np.float32))
    data = buffer.getvalue()
    name = f"embeddings-{hashlib.sha256(data).hexdigest()[:20]}.npy"
    path = cache_dir() / "onnx" / name
    if not path.is_file() or path.stat().st_size != len(data):
        write_atomic(path, data)
    return name
