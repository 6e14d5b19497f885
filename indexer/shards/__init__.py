"""A sharded index in one process: shards, their layout (`shards.json`) and the index over them."""
