"""A sharded index on a Ray cluster: shard actors, and bulk indexing on the cluster."""
