"""The cost model of `lede bench cluster`: fitted parts, predictions, projections."""

from __future__ import annotations

import pytest

from lede.eval.bench.cluster_model import CostModel, Measured, check, projections

IN_PROCESS = Measured(3, 90_000, 1, 2, 0.3, 6.0, 0.3, 0.6, 7.5)
ONE_NODE = Measured(3, 90_000, 1, 2, 2.2, 8.0, 0.2, 3.4, 14.0, qps=60.0)


def test_the_model_splits_work_from_round_trips_and_reproduces_its_own_run() -> None:
    model = CostModel.fit(IN_PROCESS, ONE_NODE)
    assert model.work_ms == pytest.approx({"statistics": 0.1, "search": 2.0, "fetch": 0.2})
    # Two cores for three shards: two waves of shard work per round.
    assert model.rpc_ms == pytest.approx({"statistics": 2.0, "search": 4.0, "fetch": 3.0})
    assert model.coordinator_ms == pytest.approx(0.6)
    assert model.latency_ms(3, 90_000, 1, 2) == pytest.approx(14.2)
    assert model.qps(3, 90_000, 1, 2) == pytest.approx(60.0)
    assert check(model, ONE_NODE)["measured_over_predicted"] == pytest.approx(0.99)


def test_more_nodes_cut_the_shard_work_but_not_the_round_trips() -> None:
    model = CostModel.fit(IN_PROCESS, ONE_NODE)
    # Three nodes of two cores: one wave; twice the chunks on twice the shards: same work.
    assert model.latency_ms(6, 180_000, 3, 2) == pytest.approx(0.6 + 9.0 + 2.3)
    rows = projections(model, 1_000_000, 2)
    assert [row["shards"] for row in rows] == [2, 4, 8, 16, 32]
    latencies = [row["p50_ms"] for row in rows]
    assert latencies == sorted(latencies, reverse=True)
    assert latencies[-1] > sum(model.rpc_ms.values())  # the floor: three round trips
