"""Dataset-scale scoring: `python -m red_core scan` writes the token rewards of every response in a dataset
to Parquet shards, and can be stopped and resumed.

Input (`--data`): a JSONL, CSV or Parquet file, a folder written by `datasets`' `save_to_disk`, or a hub dataset
id (`datasets.load_dataset`: streamed when online; read from the local cache when HF_HUB_OFFLINE or
HF_DATASETS_OFFLINE is set, with a clear error when it is not cached). Rows are streamed, never the whole dataset
in memory: JSONL and CSV line by line through red_core/rows.py (a bad line becomes an error row with its line
number), Parquet in record batches, `datasets` data as memory-mapped Arrow or a stream.

Row shapes (column names detected case-insensitively when unambiguous, else mapped with the flags; a JSONL
file's columns are the keys of its first valid row; an ambiguous or missing mapping is a usage error that lists
the columns found and the flags):
- prompt + response (prompt/question/instruction/input; response/answer/output/completion): one response a row;
- prompt + chosen + rejected (preference pairs): two responses a row, sides "chosen" and "rejected", sharing
  pair_id (= the row's id). A chosen/rejected value that is a chat (a list of turns) carries its own prompt, as
  in a messages column, and then no prompt column is needed;
- a chat (messages/conversations: a list of {role, content} or ShareGPT {from, value} turns; in a CSV, that list
  as JSON text): the LAST assistant turn is the response. The prompt is the text before it: when the turns before
  it are exactly one user turn, that turn's text (so a chat-template RM sees the conversation as it was); otherwise
  (a system turn, several turns) every earlier turn as a "role: content" line, each ending in "\\n". Turns after
  the last assistant turn are ignored.

Output in --out DIR: `shard-00000.parquet`, ... (shard k holds input rows [k*S, (k+1)*S), S = --shard-rows; one
output row per scored response, in input order; the columns are `SCHEMA_FIELDS`, typed by `schema()`), each
written atomically (a temporary name, then a rename), and `manifest.json` (settings, input fingerprint, column
mapping, shards with their row ranges, counts). `id` is the id column's value as text, else the row number. A
response that cannot be scored gets an `error` (score null, lists empty; prompt and response empty when the row
could not be read) and the rest goes on; stderr says how many and which rows (0-based; `line` is the JSONL/CSV
line). After the shards, `red_core.corpus` writes report.json and report.html from them (--no-report skips it).

Resume: the manifest is rewritten after every shard. Running the same command again skips the shards it lists
(whose files are intact) and scores the rest, so the result equals an uninterrupted run. A changed input (path,
size, modification time; a hub id, config, split, --revision) or changed settings (model, method and its
parameters, granularity, batch size, shard size, limit, column mapping) are refused: use --overwrite, or another
--out. The reward model is identified by its path or hub id, not by its weights; the engine and the device may
change between runs.

Batching: each shard's responses are sorted by token length and scored in batches of --batch-size (less
padding), then put back in input order; memory is bounded by one shard whatever the dataset size. `--engine ray`
runs the same shards on a Ray actor pool (red_core/scan_ray.py).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from red_core import outfile
from red_core.cli_common import (
    EXIT_OK,
    EXIT_ROWS_FAILED,
    add_method_args,
    add_model_args,
    load_model,
    method_options,
    model_options,
    score_pairs,
    sigterm_as_interrupt,
)
from red_core.rows import (
    JSON_TYPES,
    UsageError,
    count_rows,
    open_input,
    printable,
    read_csv_table,
    read_jsonl,
    text_problem,
)

EPILOG = ("Shards are written one by one; rerun the same command to continue an interrupted scan. Exit status: "
          "0 all rows scored, 1 some rows failed (see their error column), 2 usage error, 130 interrupted.")
MANIFEST, MANIFEST_VERSION = "manifest.json", 1
OWN_FILES = ("manifest.json", "report.json", "report.html")  # with shard-*.parquet and hidden .*.tmp: what we write
COLUMN_NAMES = {  # role -> column names found without a flag (case-insensitive)
    "prompt": ("prompt", "question", "instruction", "input"),
    "response": ("response", "answer", "output", "completion"),
    "chosen": ("chosen",), "rejected": ("rejected",),
    "messages": ("messages", "conversations"),
    "id": ("id",),
}
COLUMN_HELP = {
    "prompt": "prompt column", "response": "response column (one response a row)",
    "chosen": "preferred response of a pair", "rejected": "other response of a pair",
    "messages": "chat column: a list of {role, content} turns; the last assistant turn is scored",
    "id": "id column (default: the row number)",
}
SHAPES = {"response": ("prompt", "response"), "pairs": ("chosen", "rejected"), "messages": ("messages",)}
SIDES = {"response": ("response",), "pairs": ("chosen", "rejected"), "messages": ("response",)}
ASSISTANT_ROLES, USER_ROLES = {"assistant", "gpt", "bot", "model"}, {"user", "human"}
ITEM_FIELDS = ("row", "line", "id", "pair_id", "side", "prompt", "response", "error")
SCHEMA_FIELDS = ("row", "line", "id", "pair_id", "side", "prompt", "response", "method", "granularity", "score",
                 "baseline", "tokens", "starts", "ends", "special", "rewards", "prefix_scores", "error")
DATA_EXTENSIONS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet",
                   ".pq": "parquet"}
PEEK_ROWS = 1000  # rows read to find one valid row for column detection (JSONL keys vary by row)


class RowError(ValueError):
    """Why one input row cannot be scored; it becomes that row's `error`."""


def need(module: str, purpose: str = "scan"):
    """Import an optional dependency, or say how to install it."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        package = module.split(".")[0]
        raise UsageError(f"{purpose} needs the `{package}` package: pip install {package}") from err


def schema():
    """The shards' Arrow schema: one row per scored response (T units per response in the list columns)."""
    pa = need("pyarrow")
    return pa.schema([
        ("row", pa.int64()), ("line", pa.int64()), ("id", pa.string()), ("pair_id", pa.string()),
        ("side", pa.string()), ("prompt", pa.string()), ("response", pa.string()), ("method", pa.string()),
        ("granularity", pa.string()), ("score", pa.float64()), ("baseline", pa.float64()),
        ("tokens", pa.list_(pa.string())),  # (T,) unit texts
        ("starts", pa.list_(pa.int32())), ("ends", pa.list_(pa.int32())),  # (T,) character offsets into response
        ("special", pa.list_(pa.bool_())), ("rewards", pa.list_(pa.float64())),  # (T,)
        ("prefix_scores", pa.list_(pa.float64())),  # (T,) R(x, y<=t)
        ("error", pa.string())])


def item_schema():
    """What the Ray engine ships to its actors: the input side of SCHEMA, one row per response to score."""
    pa, full = need("pyarrow"), schema()
    return pa.schema([full.field(name) for name in ITEM_FIELDS])


# ----------------------------------------------------------------------------- input


@dataclass
class Source:
    kind: str  # "jsonl", "csv", "parquet", "saved" (a save_to_disk folder) or "hub"
    name: str  # absolute path, or the hub dataset id
    split: str | None = None
    config: str | None = None
    revision: str | None = None


def resolve_source(args) -> Source:
    data = os.path.expanduser(args.data)
    ext = os.path.splitext(data)[1].lower()
    if os.path.isdir(data):
        if not any(os.path.exists(os.path.join(data, f)) for f in ("state.json", "dataset_dict.json")):
            raise UsageError(f"--data {args.data!r} is a folder but not one written by datasets' save_to_disk (no "
                             f"state.json or dataset_dict.json); give a .jsonl, .csv or .parquet file")
        return Source("saved", os.path.abspath(data), args.split)
    if os.path.exists(data):
        if ext not in DATA_EXTENSIONS:
            raise UsageError(f"--data {args.data!r}: unknown file type {ext or '(no extension)'!r}; give a .jsonl, "
                             f".csv or .parquet file, a save_to_disk folder or a hub dataset id")
        return Source(DATA_EXTENSIONS[ext], os.path.abspath(data))
    if ext in DATA_EXTENSIONS or data.startswith((".", "/", "~")) or data.count("/") > 1:
        raise UsageError(f"--data {args.data!r} not found")
    return Source("hub", args.data, args.split, args.config, args.revision)


def fingerprint(src: Source) -> dict:
    """What identifies the input for resume: a hub dataset by name; a file or folder by path, size and mtime."""
    if src.kind == "hub":
        return {"dataset": src.name, "config": src.config, "split": src.split, "revision": src.revision}
    files = [src.name] if os.path.isfile(src.name) else sorted(
        os.path.join(folder, f) for folder, _, names in os.walk(src.name) for f in names)
    stats = [os.stat(f) for f in files]
    return {"path": src.name, "split": src.split, "bytes": sum(st.st_size for st in stats),
            "mtime_ns": max((st.st_mtime_ns for st in stats), default=0)}


@dataclass
class Reader:
    columns: list[str] | None  # None: known only from the rows (JSONL)
    records: Iterator  # (line or None, row dict or error message) per row, from row `skip` on
    total: Callable[[], int | None]  # input rows, when known (for the progress bar; may read the file once)


@contextlib.contextmanager
def reading(src: Source, skip: int = 0):
    """A Reader over the input's rows, from row `skip` on (earlier rows skipped cheaply where the format allows)."""
    if src.kind in ("jsonl", "csv"):
        with open_input(src.name) as f:
            if src.kind == "csv":
                columns, records = read_csv_table(f, src.name)
            else:
                columns, records = None, ((line, row) for line, _, row in read_jsonl(f, src.name))
            yield Reader(columns, itertools.islice(records, skip, None), lambda: count_rows(src.name))
    elif src.kind == "parquet":
        yield parquet_reader(src.name, skip)
    else:
        ds = load_hf(src)
        rows = ds.skip(skip) if skip else ds
        yield Reader(list(ds.column_names) if ds.column_names else None, ((None, row) for row in rows),
                     lambda: len(ds) if hasattr(ds, "__len__") else None)


def parquet_reader(path: str, skip: int) -> Reader:
    pq = need("pyarrow.parquet")
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001 - pyarrow raises several kinds for a file that is not Parquet
        raise UsageError(f"--data {path!r} is not a readable Parquet file: {err}") from err
    meta, group, before = pf.metadata, 0, 0
    while group < meta.num_row_groups and before + meta.row_group(group).num_rows <= skip:
        before += meta.row_group(group).num_rows  # whole row groups before `skip` are never read
        group += 1

    def rows():
        batches = pf.iter_batches(batch_size=1024, row_groups=range(group, meta.num_row_groups))
        flat = (row for batch in batches for row in batch.to_pylist())
        yield from ((None, row) for row in itertools.islice(flat, skip - before, None))

    return Reader(pf.schema_arrow.names, rows(), lambda: meta.num_rows)


def load_hf(src: Source):
    """A datasets.Dataset (memory-mapped) or IterableDataset (streamed) for a save_to_disk folder or a hub id."""
    datasets = need("datasets", "reading a saved dataset or a hub id")
    from huggingface_hub.constants import is_offline_mode

    offline = is_offline_mode() or bool(datasets.config.HF_DATASETS_OFFLINE)  # both libraries' own reading
    try:
        if src.kind == "saved":
            ds = datasets.load_from_disk(src.name)
        else:  # online: stream (nothing stored); offline: the local cache only
            ds = datasets.load_dataset(src.name, src.config, split=src.split, revision=src.revision,
                                       streaming=not offline)
    except Exception as err:  # noqa: BLE001 - datasets raises many kinds; all mean "cannot read this"
        hint = (" (offline: HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set and this dataset is not in the local cache; "
                "unset them to download it, or give a local file)") if offline and src.kind == "hub" else ""
        raise UsageError(f"cannot load --data {src.name!r}: {type(err).__name__}: {err}{hint}") from err
    if isinstance(ds, dict):  # DatasetDict / IterableDatasetDict
        splits = sorted(ds)
        if src.split is None and len(splits) == 1:
            return ds[splits[0]]
        if src.split not in ds:
            raise UsageError(f"--data {src.name!r} has splits {', '.join(splits)}; choose one with --split")
        return ds[src.split]
    return ds


# ----------------------------------------------------------------------------- columns


def first_row(reader: Reader) -> dict | None:
    """The first valid row (its keys name the columns of a JSONL file), looking at most PEEK_ROWS rows ahead."""
    peeked = list(itertools.islice(reader.records, PEEK_ROWS))
    return next((row for _, row in peeked if isinstance(row, dict)), None)


def columns_error(what: str, columns: list[str], reason: str) -> UsageError:
    return UsageError(
        f"cannot tell which columns of {what} to score: {reason}. Columns found: {', '.join(columns) or 'none'}. "
        "Name them with --prompt-col C --response-col C (one response per row), --chosen-col C --rejected-col C "
        "[--prompt-col C] (preference pairs) or --messages-col C (a chat: its last assistant turn is scored); "
        "--id-col C names the id column")


def detect_columns(columns: list[str], flags: dict, row: dict | None, what: str) -> dict:
    """{"shape": response|pairs|messages, and the column of each role (None when unused)}, or a UsageError."""
    for role, col in flags.items():
        if col is not None and col not in columns:
            raise columns_error(what, columns, f"--{role}-col {col!r} is not a column")
    found = {role: [flags[role]] if flags.get(role) else [c for c in columns if c.lower() in names]
             for role, names in COLUMN_NAMES.items()}
    shape = ("messages" if flags.get("messages") else "pairs" if flags.get("chosen") or flags.get("rejected")
             else "response" if flags.get("response") else None)
    if shape is None:
        shapes = [s for s, roles in SHAPES.items() if all(found[r] for r in roles)]
        if len(shapes) != 1:
            reason = f"the columns fit several row shapes ({', '.join(shapes)})" if shapes else \
                "no known column names (prompt+response, chosen+rejected or messages)"
            raise columns_error(what, columns, reason)
        shape = shapes[0]
    optional = ("prompt", "id") if shape == "pairs" else ("id",)
    cols: dict[str, str | None] = {"shape": shape}
    for role in COLUMN_NAMES:
        used = role in SHAPES[shape] or role in optional
        if not used and flags.get(role):
            raise columns_error(what, columns, f"--{role}-col does not apply to {shape} rows")
        if used and len(found[role]) > 1:
            raise columns_error(what, columns, f"several columns could be the {role} ({', '.join(found[role])}); "
                                               f"choose one with --{role}-col")
        if used and not found[role] and role in SHAPES[shape]:
            raise columns_error(what, columns, f"no {role} column")
        cols[role] = found[role][0] if used and found[role] else None
    if shape == "pairs" and cols["prompt"] is None and row is not None and isinstance(row.get(cols["chosen"]), str):
        raise columns_error(what, columns, f"{cols['chosen']!r} holds text, so a prompt column is needed")
    return cols


# ----------------------------------------------------------------------------- rows -> items


def field(row: dict, col: str):
    if col not in row:
        raise RowError(f"missing field {col!r} (fields found: {', '.join(map(str, row)) or 'none'})")
    return row[col]


def text_value(row: dict, col: str, from_csv: bool) -> str:
    value = field(row, col)
    if not isinstance(value, str):
        raise RowError(f"field {col!r} is {JSON_TYPES.get(type(value), type(value).__name__)}, not a string")
    problem = text_problem(value, from_csv)
    if problem:
        raise RowError(f"field {col!r} {problem}")
    return value


def chat_turn(turn, col: str, i: int, from_csv: bool) -> tuple[str, str]:
    if not isinstance(turn, dict):
        raise RowError(f"turn {i} of {col!r} is {JSON_TYPES.get(type(turn), type(turn).__name__)}, not an object "
                       "with role and content")
    role, content = turn.get("role", turn.get("from")), turn.get("content", turn.get("value"))
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(role, str) or not isinstance(content, str):
        raise RowError(f"turn {i} of {col!r} needs a string role and content (or from and value)")
    problem = text_problem(role, from_csv) or text_problem(content, from_csv)
    if problem:
        raise RowError(f"turn {i} of {col!r} {problem}")
    return role, content


def split_chat(messages, col: str, from_csv: bool) -> tuple[str, str]:
    """(prompt, response) of a chat: the last assistant turn, and the text before it (see the module docstring)."""
    if isinstance(messages, str):  # a CSV cell, or a JSON string column
        try:
            messages = json.loads(messages)
        except ValueError as err:
            raise RowError(f"field {col!r} is text that is not a JSON list of turns") from err
    if not isinstance(messages, list):
        raise RowError(f"field {col!r} is {JSON_TYPES.get(type(messages), type(messages).__name__)}, not a list of "
                       "{role, content} turns")
    turns = [chat_turn(t, col, i, from_csv) for i, t in enumerate(messages)]
    last = max((i for i, (role, _) in enumerate(turns) if role.lower() in ASSISTANT_ROLES), default=None)
    if last is None:
        roles = ", ".join(sorted({role for role, _ in turns})) or "none"
        raise RowError(f"field {col!r} has no assistant turn (roles: {roles}); its last assistant turn is scored")
    before = turns[:last]
    if len(before) == 1 and before[0][0].lower() in USER_ROLES:
        return before[0][1], turns[last][1]
    return "".join(f"{role}: {content}\n" for role, content in before), turns[last][1]


def side_texts(row: dict, cols: dict, side: str, from_csv: bool) -> tuple[str, str]:
    """(prompt, response) of one side of a row, or a RowError."""
    col = cols["messages"] if cols["shape"] == "messages" else cols[side]
    value = field(row, col)
    if cols["shape"] == "messages" or isinstance(value, list):
        return split_chat(value, col, from_csv)
    response = text_value(row, col, from_csv)
    if cols["prompt"] is None:
        raise RowError(f"field {col!r} is text and there is no prompt column; map one with --prompt-col")
    return text_value(row, cols["prompt"], from_csv), response


def id_text(row, cols: dict, index: int, from_csv: bool) -> str:
    value = row.get(cols["id"]) if isinstance(row, dict) and cols["id"] else None
    if value is None:
        return str(index)
    return printable(value, from_csv) if isinstance(value, str) else str(value)


def row_items(index: int, line: int | None, row, cols: dict, from_csv: bool) -> list[dict]:
    """The responses of one input row (two for a pair), each with its texts or the row's error."""
    rid = id_text(row, cols, index, from_csv)
    items = []
    for side in SIDES[cols["shape"]]:
        item = {"row": index, "line": line, "id": rid, "pair_id": rid if cols["shape"] == "pairs" else None,
                "side": side, "prompt": "", "response": "", "error": row if isinstance(row, str) else None}
        if isinstance(row, dict):
            try:
                item["prompt"], item["response"] = side_texts(row, cols, side, from_csv)
            except RowError as err:
                item["error"] = printable(str(err), False)  # a column name may hold a lone surrogate
        items.append(item)
    return items


def shard_chunks(src: Source, cols: dict, shard_rows: int, first_shard: int, limit: int | None):
    """(shard index, (first row, end row), items) for each shard from `first_shard` on, reading row by row."""
    skip = first_shard * shard_rows
    with reading(src, skip) as reader:
        rows: Iterator[tuple[int, Any]] = enumerate(reader.records, start=skip)
        if limit is not None:
            rows = itertools.takewhile(lambda r: r[0] < limit, rows)
        for k, grouped in itertools.groupby(rows, key=lambda r: r[0] // shard_rows):
            group = list(grouped)
            items = [it for i, (line, row) in group for it in row_items(i, line, row, cols, src.kind == "csv")]
            yield k, (group[0][0], group[-1][0] + 1), items


# ----------------------------------------------------------------------------- scoring


def score_batch(rm, items: list[dict], opts: dict) -> list:
    """TokenRewards or the exception, per item; a batch that fails as a whole is scored again item by item."""
    return score_pairs(rm, [it["prompt"] for it in items], [it["response"] for it in items], opts)


def record(item: dict, result, opts: dict) -> dict:
    """One output row (SCHEMA_FIELDS) from an item and its TokenRewards, exception, or None (the item's error)."""
    granularity = opts["granularity"] if isinstance(opts["granularity"], str) else f"k={opts['granularity']}"
    out = {**item, "method": opts["method"], "granularity": granularity, "score": None, "baseline": None,
           "tokens": [], "starts": [], "ends": [], "special": [], "rewards": [], "prefix_scores": []}
    if isinstance(result, Exception):
        out["error"] = printable(f"{type(result).__name__}: {result}", False)
    elif result is not None:
        out.update(score=float(result.score), baseline=None if result.baseline is None else float(result.baseline),
                   tokens=list(result.texts), starts=[s for s, _ in result.offsets], ends=[e for _, e in result.offsets],
                   special=list(result.special), rewards=result.rewards.tolist(),
                   prefix_scores=result.prefix_scores.tolist())
    return out


def score_items(rm, items: list[dict], opts: dict, on_row=None) -> list[dict]:
    """Output rows for one shard's items, in their order. The valid items are scored longest-last in batches of
    opts["batch_size"] (less padding); on_row(1) is called as each input row's responses are all done."""
    left = Counter(it["row"] for it in items)

    def done(i: int):
        left[items[i]["row"]] -= 1
        if on_row and left[items[i]["row"]] == 0:
            on_row(1)

    for i, it in enumerate(items):
        if it["error"] is not None:
            done(i)
    todo = [i for i, it in enumerate(items) if it["error"] is None]
    lengths = token_lengths(rm, [items[i] for i in todo])
    todo = [i for _, i in sorted(zip(lengths, todo))]  # ties keep input order
    results: dict[int, object] = {}
    for batch in batches(todo, opts["batch_size"]):
        for i, result in zip(batch, score_batch(rm, [items[i] for i in batch], opts)):
            results[i] = result
            done(i)
    return [record(it, results.get(i), opts) for i, it in enumerate(items)]


def batches(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def token_lengths(rm, items: list[dict]) -> list[int]:
    """Tokens of prompt + response per item: the sort key (the model input adds a template's few tokens)."""
    texts = [it["prompt"] + it["response"] for it in items]
    backend = getattr(rm.tokenizer, "backend_tokenizer", None)
    if backend is None or not texts:
        return [len(t) for t in texts]
    return [len(enc.ids) for enc in backend.encode_batch(texts, add_special_tokens=False)]


# ----------------------------------------------------------------------------- in-process (the app)


def scan_file(rm, path: str, opts: dict, *, limit: int, chunk_rows: int = 32):
    """Score the first `limit` rows of a JSONL, CSV or Parquet file in this process, `chunk_rows` input rows at a
    time: yields (rows done, rows to do, output rows of the chunk). The same readers, column detection and output
    rows (SCHEMA_FIELDS) as the scan, without shards; for the app's Dataset tab, which can stop between chunks."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in DATA_EXTENSIONS or DATA_EXTENSIONS[ext] == "saved":
        raise UsageError(f"unknown file type {ext or '(no extension)'!r}; give a .jsonl, .csv or .parquet file")
    src = Source(DATA_EXTENSIONS[ext], os.path.abspath(path))
    with reading(src) as reader:
        row = first_row(reader)
        columns = reader.columns if reader.columns is not None else list(row or {})
        total = reader.total()
    cols = detect_columns(columns, {role: None for role in COLUMN_NAMES}, row, "the file")
    todo = limit if total is None else min(limit, total)
    for _, (_, end), items in shard_chunks(src, cols, chunk_rows, 0, limit):
        yield end, todo, score_items(rm, items, opts)


# ----------------------------------------------------------------------------- output folder


def atomic_file(target: str):
    """outfile.atomic_file for the scan's own files (--out in its messages)."""
    return outfile.atomic_file(target, flag="--out")


def write_error(err: OSError, path: str) -> str:
    return outfile.write_error(err, path, flag="--out")


def write_shard(out_dir: str, k: int, rows: tuple[int, int], records: list[dict]) -> dict:
    """Write shard k atomically; return its manifest entry."""
    pa, pq = need("pyarrow"), need("pyarrow.parquet")
    name = f"shard-{k:05d}.parquet"
    path = os.path.join(out_dir, name)
    table = pa.Table.from_pylist(records, schema=schema())
    try:
        with atomic_file(path) as f:
            pq.write_table(table, f)
    except OSError as err:
        raise UsageError(write_error(err, path)) from err
    failed = sorted({r["row"] for r in records if r["error"] is not None})
    return {"shard": k, "file": name, "rows": list(rows), "responses": len(records),
            "errors": sum(r["error"] is not None for r in records), "bad_rows": len(failed),
            "first_bad_rows": failed[:20], "bytes": os.path.getsize(path)}


def write_manifest(out_dir: str, manifest: dict) -> None:
    shards = manifest["shards"]
    manifest["counts"] = {"rows": sum(s["rows"][1] - s["rows"][0] for s in shards),
                          "responses": sum(s["responses"] for s in shards), "errors": sum(s["errors"] for s in shards),
                          "bad_rows": sum(s["bad_rows"] for s in shards), "shards": len(shards)}
    path = os.path.join(out_dir, MANIFEST)
    try:
        with atomic_file(path) as f:
            f.write((json.dumps(manifest, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
    except OSError as err:
        raise UsageError(write_error(err, path)) from err


def own_file(name: str) -> bool:
    return name in OWN_FILES or (name.startswith("shard-") and name.endswith(".parquet")) or \
        (name.startswith(".") and name.endswith(".tmp"))


def differences(old: dict, new: dict) -> list[str]:
    out = []
    for key in ("version", "input", "columns", "settings"):
        a, b = old.get(key), new[key]
        if isinstance(b, dict) and isinstance(a, dict):
            out += [f"{key}.{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
                    if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{key}: {a!r} there, {b!r} now")
    return out


def read_manifest(out_dir: str, header: dict, overwrite: bool) -> dict | None:
    """The previous manifest to resume from; None to start afresh. Refuses a folder it should not write into."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"--out {out_dir!r} is a file; give a folder (it is created if missing)")
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        others = [n for n in os.listdir(out_dir) if not own_file(n)] if os.path.isdir(out_dir) else []
        if others:
            raise UsageError(f"--out {out_dir!r} holds other files ({', '.join(sorted(others)[:5])}) and no "
                             f"{MANIFEST}; choose a new or empty folder")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError) as err:
        if overwrite:
            return None
        raise UsageError(f"{path!r} cannot be read ({err}); rerun with --overwrite to start again") from err
    diffs = differences(old, header)
    if diffs and not overwrite:
        raise UsageError(f"--out {out_dir!r} holds a scan of another input or other settings ({'; '.join(diffs)}); "
                         "rerun with --overwrite to replace it, or choose another --out")
    return None if overwrite else old


def intact_shards(out_dir: str, old: dict | None) -> dict[int, dict]:
    """Shard entries of a previous run whose files are there, with the size written down."""
    done = {}
    for entry in (old or {}).get("shards", []):
        path = os.path.join(out_dir, entry["file"])
        if os.path.isfile(path) and os.path.getsize(path) == entry["bytes"]:
            done[entry["shard"]] = entry
    return done


def prepare_out_dir(out_dir: str, keep: dict[int, dict], finished: bool) -> None:
    """Create the folder; remove our files that are not kept (stale temporaries, shards to redo, old reports)."""
    os.makedirs(out_dir, exist_ok=True)
    kept = {entry["file"] for entry in keep.values()} | {MANIFEST} | ({"report.json", "report.html"} if finished else set())
    for name in os.listdir(out_dir):
        if own_file(name) and name not in kept:
            os.remove(os.path.join(out_dir, name))


# ----------------------------------------------------------------------------- options


def add_scan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="JSONL, CSV or Parquet file, a save_to_disk folder, or a hub dataset id")
    p.add_argument("--out", required=True, help="output folder: shard-NNNNN.parquet, manifest.json, report.*")
    p.add_argument("--split", default=None, help="split of a hub dataset or a saved DatasetDict (default: the only one)")
    p.add_argument("--config", default=None, help="hub dataset configuration name")
    p.add_argument("--revision", default=None, help="hub dataset revision (pin a commit to make resume safe)")
    for role, what in COLUMN_HELP.items():
        found = ", ".join(COLUMN_NAMES[role])
        p.add_argument(f"--{role}-col", dest=f"{role}_col", metavar="C", default=None, help=f"{what}; found by itself when named {found}")
    add_method_args(p, batch_help="responses per forward batch")
    p.add_argument("--shard-rows", type=int, default=10_000, help="input rows per output shard (and per sorting window)")
    p.add_argument("--limit", type=int, default=None, help="score only the first N input rows")
    add_model_args(p)
    p.add_argument("--engine", default="local", choices=["local", "ray"], help="local (this process) or ray (actor pool)")
    p.add_argument("--ray-actors", type=int, default=1, help="Ray actors, one reward model each")
    p.add_argument("--ray-gpus-per-actor", type=float, default=0.0, help="GPUs per Ray actor (0: CPU)")
    p.add_argument("--overwrite", action="store_true", help="replace a scan in --out made with other input or settings")
    p.add_argument("--no-report", action="store_true", help="skip the corpus report (report.json, report.html)")
    p.add_argument("--report-min-count", type=int, default=5, help="occurrences a word needs to enter the report")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def scoring_options(args) -> dict:
    """Keyword arguments of token_rewards_batch, or a UsageError (the shared method checks plus scan's own)."""
    for flag, value, low in (("--shard-rows", args.shard_rows, 1), ("--ray-actors", args.ray_actors, 1),
                             ("--report-min-count", args.report_min_count, 1),
                             ("--limit", 0 if args.limit is None else args.limit, 0)):
        if value < low:
            raise UsageError(f"{flag} must be at least {low}, got {value}")
    if not args.ray_gpus_per_actor >= 0:
        raise UsageError(f"--ray-gpus-per-actor must be 0 or more, got {args.ray_gpus_per_actor}")
    return method_options(args)


def settings(args, opts: dict) -> dict:
    """What must not change between a run and its resume (the engine may: both give the same shards)."""
    from red_core.models import DEFAULT_REWARD_MODEL

    model = os.path.expanduser(args.reward_model) if args.reward_model else str(DEFAULT_REWARD_MODEL)
    return {"reward_model": os.path.abspath(model) if os.path.exists(model) else model,
            "label_index": args.label_index, "input_format": model_options(args)["input_format"], "dtype": args.dtype,
            "limit": args.limit, "shard_rows": args.shard_rows, **opts}


# ----------------------------------------------------------------------------- running


def detect(src: Source, args) -> dict:
    flags = {role: getattr(args, f"{role}_col") for role in COLUMN_NAMES}
    with reading(src) as reader:
        row = first_row(reader)
        columns = reader.columns if reader.columns is not None else list(row or {})
    return detect_columns(columns, flags, row, repr(args.data))


def run_scan(args) -> int:
    opts = scoring_options(args)
    if args.engine == "ray":
        from red_core import scan_ray

        scan_ray.import_ray()  # missing Ray: say so before anything else
    src = resolve_source(args)
    cols = detect(src, args)
    header = {"version": MANIFEST_VERSION, "input": fingerprint(src), "columns": cols,
              "settings": settings(args, opts)}
    old = read_manifest(args.out, header, args.overwrite)
    done = intact_shards(args.out, old)
    finished = old is not None and bool(old.get("complete")) and len(done) == len(old["shards"])
    rm = load_model(model_options(args)) if args.engine == "local" and not finished else None
    prepare_out_dir(args.out, done, finished)  # the output is touched only now
    manifest: dict[str, Any] = {**header, "shards": sorted(done.values(), key=lambda e: e["shard"]),
                                "complete": finished}
    write_manifest(args.out, manifest)

    def add_shard(k: int, rows: tuple[int, int], records: list[dict]) -> None:
        manifest["shards"] = sorted([*manifest["shards"], write_shard(args.out, k, rows, records)],
                                    key=lambda e: e["shard"])
        write_manifest(args.out, manifest)

    if not finished:
        try:
            scan(src, cols, done, rm, opts, args, add_shard)
        except KeyboardInterrupt:
            print(f"interrupted: {len(manifest['shards'])} shard(s) are done in {args.out}; run the same command "
                  "again to go on", file=sys.stderr)
            raise
        manifest["complete"] = True
        write_manifest(args.out, manifest)
    if not args.no_report:
        write_report(args.out, manifest, args.report_min_count)
    return summary(args.out, manifest)


def scan(src: Source, cols: dict, done: dict[int, dict], rm, opts: dict, args, add_shard) -> None:
    """Score every shard not in `done` (in order; Ray may finish them out of order) and add_shard() each."""
    from tqdm import tqdm

    first = next(k for k in itertools.count() if k not in done)
    total = input_rows(src, args.limit)
    skipped = first * args.shard_rows if total is None else min(total, first * args.shard_rows)
    with sigterm_as_interrupt(), tqdm(total=total, initial=skipped, unit="row", file=sys.stderr, disable=args.quiet,
                                      desc="scan") as bar:
        chunks = pending(shard_chunks(src, cols, args.shard_rows, first, args.limit), done, bar.update)
        if args.engine == "ray":
            from red_core import scan_ray

            scan_ray.run(chunks, model_options(args), opts, args, add_shard, bar.update)
        else:
            for k, rows, items in chunks:
                add_shard(k, rows, score_items(rm, items, opts, bar.update))


def pending(chunks, done: dict[int, dict], skipped: Callable[[int], object]):
    """The chunks not in `done`; skipped(rows) counts the others."""
    for k, rows, items in chunks:
        if k in done:
            skipped(rows[1] - rows[0])
        else:
            yield k, rows, items


def input_rows(src: Source, limit: int | None) -> int | None:
    """How many rows the scan will read, when known (the progress bar's total)."""
    with reading(src) as reader:
        total = reader.total()
    return total if limit is None else min(limit, total if total is not None else limit)


def shard_rows_of(out_dir: str, manifest: dict):
    """The output rows as dicts (the SCHEMA), shard by shard, read back in batches."""
    pq = need("pyarrow.parquet")
    for entry in manifest["shards"]:
        for batch in pq.ParquetFile(os.path.join(out_dir, entry["file"])).iter_batches(batch_size=1024):
            yield from batch.to_pylist()


def write_report(out_dir: str, manifest: dict, min_count: int) -> None:
    try:
        from red_core import corpus
    except ImportError:
        print("note: red_core.corpus is not available; no report written", file=sys.stderr)
        return
    report = corpus.build_report(shard_rows_of(out_dir, manifest), unit="word", min_count=min_count)  # pairs: by side
    corpus.write_report(report, out_dir)


def summary(out_dir: str, manifest: dict) -> int:
    counts = manifest["counts"]
    if not counts["rows"]:
        print("warning: no rows in --data", file=sys.stderr)
    if counts["errors"]:
        rows = [r for s in manifest["shards"] for r in s["first_bad_rows"]][:20]
        shown = ", ".join(map(str, rows)) + (", ..." if counts["bad_rows"] > len(rows) else "")
        print(f"{counts['errors']} of {counts['responses']} response(s) could not be scored, from "
              f"{counts['bad_rows']} input row(s): {shown} (0-based row numbers; the `line` column gives the input "
              f"line); see their `error` column in {os.path.join(out_dir, 'shard-*.parquet')}", file=sys.stderr)
        return EXIT_ROWS_FAILED
    return EXIT_OK
