"""Dataset scan throughput against plain batched scoring of the same rows, in one process.

    python bench/bench_scan.py [--rows 600] [--batch-size 16] [--repeats 3]

The default reward model (assets/models/reward) and a JSONL of varied rows (1 to 40 words). Two ways:

  plain   tokenise each batch of `--batch-size` rows (prompt + response) and run one forward pass:
          what scoring costs with no token rewards at all
  scan    `python -m red_core scan` in this process: read the file, RED token rewards of every row,
          Parquet shards and the manifest (no report), rows in input order

Target: scan rows/s >= 0.9 x plain rows/s (the scan sorts each shard by length, which cuts padding).
Figures go to bench/results/scan.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import red_core  # noqa: E402
from red_core.__main__ import main as cli  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ("the film was not bad at all and the actors were wonderful but the ending felt slow I love sunny "
         "mornings fresh coffee this is a terrible awful day honestly quite good great").split()


def write_rows(path: Path, n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = [{"id": str(i), "prompt": "Tell me something.\n",
             "response": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 40))).capitalize() + "."}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


@torch.no_grad()
def plain(rm, rows: list[dict], batch_size: int) -> None:
    for i in range(0, len(rows), batch_size):
        texts = [r["prompt"] + r["response"] for r in rows[i:i + batch_size]]
        batch = rm.tokenizer(texts, padding=True, return_tensors="pt").to(rm.device)
        rm.model(**batch).logits.float().cpu()  # (b, 1)


def scan(data: Path, out: Path, batch_size: int) -> None:
    code = cli(["scan", "--data", str(data), "--out", str(out), "--batch-size", str(batch_size), "--no-report",
                "--quiet", "--overwrite"])
    assert code == 0, code


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    rm = red_core.load_reward_model()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "rows.jsonl"
        rows = write_rows(data, args.rows)
        plain(rm, rows[:32], args.batch_size)  # warm-up
        scan(data, Path(tmp) / "warm", args.batch_size)
        times: dict[str, list[float]] = {"plain": [], "scan": []}
        for k in range(args.repeats):  # paired: the two alternate, so machine load hits both alike
            t0 = time.perf_counter()
            plain(rm, rows, args.batch_size)
            times["plain"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            scan(data, Path(tmp) / f"out{k}", args.batch_size)
            times["scan"].append(time.perf_counter() - t0)
    p, s = statistics.median(times["plain"]), statistics.median(times["scan"])
    res = {"rows": args.rows, "batch_size": args.batch_size, "repeats": args.repeats, "threads": torch.get_num_threads(),
           "plain_s": p, "scan_s": s, "plain_rows_per_s": args.rows / p, "scan_rows_per_s": args.rows / s,
           "scan_over_plain_throughput": p / s}
    print(f"{args.rows} rows, batch {args.batch_size}: plain {args.rows / p:.0f} rows/s ({p:.2f} s), scan "
          f"{args.rows / s:.0f} rows/s ({s:.2f} s): scan throughput = {p / s:.2f} x plain (target >= 0.9)")
    (RESULTS / "scan.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
