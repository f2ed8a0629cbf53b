"""`python -m red_core scan --engine ray`: the same scan on Ray Data, one reward model per actor.

The driver reads the input with the local engine's readers (so bad rows, row numbers and column detection are
the same) and puts each pending shard's responses, as one Arrow table, into Ray's object store (which spills to
disk when full, so the driver's memory stays bounded). `ray.data.from_arrow_refs` makes one block per shard;
`map_batches(ShardScorer, batch_size=None)` hands whole blocks to a pool of actors (`ActorPoolStrategy(size=
--ray-actors)`, `num_gpus=--ray-gpus-per-actor` each), and each actor scores a shard with the local engine's
`scan.score_items`: the same length-sorted batches, so the same numbers. The driver writes each shard (atomically)
and the manifest as soon as all of a shard's responses are back, so shards may finish out of order and resume
works as for the local engine.

Why not `ray.data.read_json` / `read_parquet` on the input: Ray's readers fail the whole job on one bad JSON
line and know no global row or line numbers, so the output would differ from the local engine's. The price: the
driver reads all pending rows before the actors start (reading is far cheaper than scoring), and the texts pass
through the object store.

Where Ray runs: with RAY_ADDRESS set, `ray.init(address="auto")` joins that cluster (its nodes need red_core and
the reward model; --out must be writable by this driver). Otherwise a local Ray is started (no dashboard) and
stopped at the end; an already initialised Ray (`ray.init(...)` before calling `run_scan`) is used as it is.
"""

from __future__ import annotations

import itertools
import logging
import os

from red_core import scan
from red_core.rows import UsageError

SIDE_ORDER = {"response": 0, "chosen": 0, "rejected": 1}


def import_ray():
    try:
        import ray
        import ray.data
    except ImportError as err:
        raise UsageError("--engine ray needs Ray Data: pip install 'ray[data]'") from err
    return ray


class ShardScorer:
    """A Ray actor: loads the reward model once, then scores the shards in each block it is given."""

    def __init__(self, model_opts: dict, opts: dict, shard_rows: int):
        self.rm = scan.load_model(model_opts)
        self.opts, self.shard_rows = opts, shard_rows

    def __call__(self, block):  # pyarrow.Table of scan.ITEM_FIELDS -> pyarrow.Table of scan.schema()
        import pyarrow as pa

        items, records = block.to_pylist(), []
        for _, shard in itertools.groupby(items, key=lambda it: it["row"] // self.shard_rows):
            records += scan.score_items(self.rm, list(shard), self.opts)
        return pa.Table.from_pylist(records, schema=scan.schema())


def start(ray) -> bool:
    """Connect to Ray; True when this call started it (and should stop it)."""
    if ray.is_initialized():
        return False
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address="auto", logging_level=logging.WARNING)
    else:  # local workers find red_core where this process does (Ray puts the driver's folder on their path)
        ray.init(include_dashboard=False, logging_level=logging.WARNING)
    return True


def run(chunks, model_opts: dict, opts: dict, args, add_shard, progress) -> None:
    """Score `chunks` ((shard, (first row, end row), items) from scan.shard_chunks) on Ray; add_shard() each."""
    import pyarrow as pa

    ray = import_ray()
    started = start(ray)
    try:
        refs, expected = [], {}  # expected: shard -> ((first row, end row), responses)
        for k, rows, items in chunks:
            refs.append(ray.put(pa.Table.from_pylist(items, schema=scan.item_schema())))
            expected[k] = (rows, len(items))
        if not refs:
            return
        ray.data.DataContext.get_current().enable_progress_bars = False  # the scan's own bar counts rows
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # no per-run INFO lines; failures still raise
        gpus = {"num_gpus": args.ray_gpus_per_actor} if args.ray_gpus_per_actor else {}
        scored = ray.data.from_arrow_refs(refs).map_batches(
            ShardScorer, fn_constructor_kwargs={"model_opts": model_opts, "opts": opts, "shard_rows": args.shard_rows},
            batch_size=None, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=args.ray_actors), **gpus)
        collect(scored, expected, args.shard_rows, add_shard, progress)
    finally:
        if started:
            ray.shutdown()


def collect(scored, expected: dict, shard_rows: int, add_shard, progress) -> None:
    """Gather the output rows by shard; write a shard once all its responses are back."""
    open_shards: dict[int, list[dict]] = {}
    for batch in scored.iter_batches(batch_size=None, batch_format="pyarrow"):
        for rec in batch.to_pylist():
            k = rec["row"] // shard_rows
            open_shards.setdefault(k, []).append(rec)
            rows, n = expected[k]
            if len(open_shards[k]) == n:
                records = sorted(open_shards.pop(k), key=lambda r: (r["row"], SIDE_ORDER[r["side"]]))
                add_shard(k, rows, records)
                progress(rows[1] - rows[0])
