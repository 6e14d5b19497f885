"""`lede serve --ray`: the HTTP app as Ray Serve replicas over a sharded index's actors.

The shard actors and the writer (`indexer/cluster/shards.py`) are placed first; then Serve runs
`create_app` unchanged in each of R replicas, whose index is a `ClusterIndex`: a replica
encodes the query, gathers the corpus statistics, scatters the search to every shard actor,
merges and fuses, and reads only the final records. Replicas keep no state of their own.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

import ray
from fastapi import FastAPI

from lede.indexer.cluster import shards as ray_shards
from lede.indexer.searchable import WritableIndex
from lede.service.settings import Settings

logger = logging.getLogger(__name__)

APP_NAME = "lede"


@dataclass(slots=True)
class Served:
    """What `serve_on_ray` started: the shard actors and the Serve application."""

    cluster: ray_shards.Cluster
    url: str

    def stop(self) -> None:
        from ray import serve

        serve.delete(APP_NAME)
        self.cluster.stop()


def serving_process_setup() -> None:
    """Runs first in every worker process of a serving job (`connect(..., serving=True)`):
    leave pandas and pyarrow out of it.

    Ray Serve imports pandas only to encode DataFrames in responses, and Ray's serializer
    imports pyarrow only to register Ray Data's Arrow serializers; both treat the module as
    optional (they catch the ImportError), and a replica or shard actor uses neither. Without
    them a replica takes about 65 MB less (decision 46). A job that runs Ray Data
    (`lede index --ray`) needs pyarrow, so only `lede serve --ray` connects this way."""
    for name in ("pandas", "pyarrow"):
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]


def connect(address: str, *, serving: bool = False, **options: Any) -> None:
    """Join the Ray cluster at `address` ("local" starts one on this machine); `serving`: this
    job only serves (see `serving_process_setup`)."""
    if ray.is_initialized():
        return
    if serving:
        hook = f"{serving_process_setup.__module__}.{serving_process_setup.__name__}"
        options.setdefault("runtime_env", {"worker_process_setup_hook": hook})
    ray.init(
        address=None if address == "local" else address, namespace=ray_shards.NAMESPACE, **options
    )


def serve_on_ray(
    settings: Settings,
    *,
    replicas: int = 1,
    host: str = "127.0.0.1",
    port: int = 8000,
    replica_cpus: float = 0.25,
    shard_cpus: float = 0.25,
) -> Served:
    """Place the shard actors of the sharded directory `settings.index`, then serve the app
    through Ray Serve as `replicas` replicas on host:port. Call after `connect`."""
    from ray import serve

    cluster = ray_shards.start(settings.index, shard_cpus=shard_cpus)
    spec = cluster.spec

    def build() -> FastAPI:  # runs in each replica
        from lede.service.http.app import create_app

        def opener(_: Settings) -> WritableIndex:
            return ray_shards.ClusterIndex(spec)

        return create_app(settings, opener)

    deployment: Any = serve.deployment(
        serve.ingress(build)(),
        name="lede-api",
        num_replicas=replicas,
        ray_actor_options={"num_cpus": replica_cpus},
    )
    serve.start(proxy_location="HeadOnly", http_options={"host": host, "port": port})
    serve.run(deployment.bind(), name=APP_NAME, route_prefix="/")
    url = f"http://{host}:{port}"
    logger.info("serving %s on %s through Ray Serve (%d replicas)", settings.index, url, replicas)
    return Served(cluster, url)
