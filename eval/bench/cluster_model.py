"""A cost model of a sharded query: fitted on the parts one run measures, checked on another
run, and used to predict more nodes (`lede bench cluster`).

A query over S shards makes three rounds to the shards (statistics, search, records); the
coordinator (the process, or a Serve replica) encodes, merges, fuses and pages by itself.

    latency = coordinator + sum over rounds of (rpc + shard work x waves)
    waves   = ceil(S / (nodes x cores per node)): shards that can work at once
    work    = a round's per-shard time measured in one process, scaled by chunks per shard
              (BM25 postings and Flat vectors are both read in proportion to it)
    QPS     = nodes x cores / CPU per query,
              CPU per query = coordinator + S x (per-shard work + per-shard RPC CPU)

The in-process sharded run gives the coordinator and the per-shard work (its rounds call the
shards one after another); a Ray run gives each round's RPC cost and the CPU per query (from
its QPS with enough clients to keep the cores busy). Another run (another node count) checks
the prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

ROUNDS = ("statistics", "search", "fetch")


@dataclass(frozen=True, slots=True)
class Measured:
    """One run's p50 parts in ms (`fetch`: fusion, paging and the records round) and QPS."""

    shards: int
    chunks: int
    nodes: int
    cores_per_node: int
    statistics_ms: float
    search_ms: float
    merge_ms: float
    fetch_ms: float
    total_ms: float
    qps: float | None = None

    def round_ms(self, name: str) -> float:
        return float(getattr(self, f"{name}_ms"))


@dataclass(frozen=True, slots=True)
class CostModel:
    coordinator_ms: float  # encode, merge, fuse, page: outside the rounds
    work_ms: dict[str, float]  # per round, one shard's work at `chunks_per_shard` chunks
    rpc_ms: dict[str, float]  # per round, the round trip beyond the work
    chunks_per_shard: float
    cpu_per_query_ms: float | None  # at the fitted run's shard count
    rpc_cpu_per_shard_ms: float | None

    @classmethod
    def fit(cls, in_process: Measured, cluster: Measured) -> CostModel:
        """From one in-process sharded run (shards called in turn) and one cluster run of the
        same shards and chunks."""
        shards = in_process.shards
        work = {name: in_process.round_ms(name) / shards for name in ROUNDS}
        coordinator = in_process.total_ms - sum(in_process.round_ms(n) for n in ROUNDS)
        waves = _waves(cluster)
        rpc = {name: max(0.0, cluster.round_ms(name) - work[name] * waves) for name in ROUNDS}
        cpu = rpc_cpu = None
        if cluster.qps:
            cpu = 1000 * cluster.nodes * cluster.cores_per_node / cluster.qps
            rpc_cpu = max(0.0, (cpu - coordinator - shards * sum(work.values())) / shards)
        return cls(coordinator, work, rpc, in_process.chunks / shards, cpu, rpc_cpu)

    def latency_ms(self, shards: int, chunks: int, nodes: int, cores_per_node: int) -> float:
        scale = chunks / shards / self.chunks_per_shard
        waves = math.ceil(shards / (nodes * cores_per_node))
        rounds = sum(self.rpc_ms[n] + self.work_ms[n] * scale * waves for n in ROUNDS)
        return self.coordinator_ms + rounds

    def qps(self, shards: int, chunks: int, nodes: int, cores_per_node: int) -> float | None:
        if self.rpc_cpu_per_shard_ms is None:
            return None
        scale = chunks / shards / self.chunks_per_shard
        per_shard = sum(self.work_ms.values()) * scale + self.rpc_cpu_per_shard_ms
        cpu = self.coordinator_ms + shards * per_shard
        return 1000 * nodes * cores_per_node / cpu

    def to_json(self) -> dict[str, Any]:
        return {key: _rounded(value) for key, value in asdict(self).items()}


def _waves(run: Measured) -> int:
    return math.ceil(run.shards / (run.nodes * run.cores_per_node))


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return round(value, 3) if isinstance(value, float) else value


def check(model: CostModel, run: Measured) -> dict[str, Any]:
    """The model's prediction for another run, beside what it measured."""
    latency = model.latency_ms(run.shards, run.chunks, run.nodes, run.cores_per_node)
    found: dict[str, Any] = {
        "nodes": run.nodes,
        "cores_per_node": run.cores_per_node,
        "predicted_p50_ms": round(latency, 2),
        "measured_p50_ms": round(run.total_ms, 2),
        "measured_over_predicted": round(run.total_ms / latency, 2),
    }
    qps = model.qps(run.shards, run.chunks, run.nodes, run.cores_per_node)
    if qps is not None and run.qps:
        found.update(
            predicted_qps=round(qps, 1),
            measured_qps=run.qps,
            measured_over_predicted_qps=round(run.qps / qps, 2),
        )
    return found


def projections(model: CostModel, chunks: int, cores_per_node: int) -> list[dict[str, Any]]:
    """Predicted p50 and QPS for 1 to 16 nodes, one shard per core."""
    found = []
    for nodes in (1, 2, 4, 8, 16):
        shards = nodes * cores_per_node
        qps = model.qps(shards, chunks, nodes, cores_per_node)
        found.append(
            {
                "nodes": nodes,
                "shards": shards,
                "chunks": chunks,
                "p50_ms": round(model.latency_ms(shards, chunks, nodes, cores_per_node), 2),
                "qps": None if qps is None else round(qps, 1),
            }
        )
    return found
