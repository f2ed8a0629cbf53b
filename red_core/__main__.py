"""Command line: `python -m red_core score|train|bench`.

score  Per-token rewards for a JSONL (or CSV) file of {"prompt", "response", "id"?} rows. Streams:
       rows are read, scored in batches and written in order, so memory does not grow with the
       file. A bad row becomes {"id", "line", "error"} and the run goes on.
       Exit status: 0 all rows scored, 1 some rows failed (all written), 2 usage error.
train  RED-PPO (see red_core/train/).
bench  Scoring benchmarks (bench/bench_scoring.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line use: exit 2 with the message."""


# ----------------------------------------------------------------------------- score


def read_rows(path: str):
    """Yield (line_number, row_or_error) from JSONL or CSV, one at a time."""
    if path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):  # line 1 is the header
                yield n, row
        return
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                yield n, ValueError(f"not valid JSON ({err.msg} at column {err.colno}); each line must be one JSON object")
                continue
            yield n, row if isinstance(row, dict) else ValueError("each line must be a JSON object with prompt and response")


def check_row(row: dict):
    missing = [k for k in ("prompt", "response") if not isinstance(row.get(k), str)]
    if missing:
        raise ValueError(f"missing or non-string field(s) {missing}; each row needs \"prompt\" and \"response\" strings")


def output_row(row_id, line: int, tr) -> dict:
    if isinstance(tr, Exception):
        return {"id": row_id, "line": line, "error": f"{type(tr).__name__}: {tr}"}
    return {"id": row_id, "line": line, "method": tr.method, "params": tr.params, "score": tr.score,
            "baseline": tr.baseline, "sum": tr.total, "granularity": tr.granularity, "tokens": tr.rows(),
            "warnings": tr.warnings}


def count_lines(path: str) -> int | None:
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip()) - (1 if path.endswith(".csv") else 0)
    except OSError:
        return None


def run_score(args) -> int:
    from tqdm import tqdm

    import red_core

    if not os.path.exists(args.input):
        raise UsageError(f"input file {args.input!r} not found")
    red_core.methods.resolve_params(args.method, {"beta_c": args.beta_c, "beta": args.beta})
    rm = red_core.load_reward_model(args.reward_model, device=args.device, dtype=args.dtype, label_index=args.label_index,
                                    allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code,
                                    input_format="concat" if args.no_chat_template else args.input_format)
    params = {"beta_c": args.beta_c, "prompt_baseline": not args.no_prompt_baseline, "beta": args.beta}
    granularity = int(args.granularity) if args.granularity.isdigit() else args.granularity
    failed = 0
    out = open(args.output, "w", encoding="utf-8") if args.output != "-" else sys.stdout
    bar = tqdm(total=count_lines(args.input), unit="row", file=sys.stderr, disable=args.quiet)

    def flush(pending):
        nonlocal failed
        good = [p for p in pending if not isinstance(p[2], Exception)]
        scored = red_core.token_rewards_batch(rm, [p[2]["prompt"] for p in good], [p[2]["response"] for p in good],
                                              args.method, batch_size=args.batch_size, granularity=granularity,
                                              on_error="return", **params) if good else []
        results = iter(scored)
        for line, row_id, row in pending:
            tr = row if isinstance(row, Exception) else next(results)
            failed += isinstance(tr, Exception)
            out.write(json.dumps(output_row(row_id, line, tr), ensure_ascii=False) + "\n")
        out.flush()
        bar.update(len(pending))

    pending = []
    try:
        for line, row in read_rows(args.input):
            row_id = row.get("id", line) if isinstance(row, dict) else None
            if isinstance(row, dict):
                try:
                    check_row(row)
                except ValueError as err:
                    row = err
            pending.append((line, row_id, row))
            if len(pending) >= args.batch_size:
                flush(pending)
                pending = []
        if pending:
            flush(pending)
    finally:
        bar.close()
        if out is not sys.stdout:
            out.close()
    if failed:
        print(f"{failed} row(s) failed; see the \"error\" field of those rows in {args.output}", file=sys.stderr)
    return EXIT_ROWS_FAILED if failed else EXIT_OK


def add_score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reward-model", default=None, help="hub id or local folder (default: assets/models/reward)")
    p.add_argument("--input", required=True, help="JSONL (or .csv) with prompt, response and optional id per row")
    p.add_argument("--output", default="-", help="JSONL output, one row per input row, same order (default: stdout)")
    p.add_argument("--method", default="red", help="credit method: red, sparse, uniform, abc")
    p.add_argument("--beta-c", type=float, default=1.0, help="RED mixing weight beta_c (Eq. 7); 1 = pure RED")
    p.add_argument("--beta", type=float, default=0.5, help="ABC mixing weight beta")
    p.add_argument("--no-prompt-baseline", action="store_true", help="paper's w/o-DI variant: R(x, ∅) taken as 0")
    p.add_argument("--granularity", default="token", help="token, word, sentence, or an integer k (chunks of k tokens)")
    p.add_argument("--batch-size", type=int, default=8, help="rows per forward batch")
    p.add_argument("--device", default=None, help="cpu, cuda, or auto (default)")
    p.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16, float16, auto")
    p.add_argument("--label-index", type=int, default=None, help="which output is the reward, for RMs with several")
    p.add_argument("--input-format", default="auto", choices=["auto", "concat", "pair"],
                   help="auto: chat template if the RM has one, else prompt+response; pair: tokenizer text pairs")
    p.add_argument("--no-chat-template", action="store_true", help="same as --input-format concat")
    p.add_argument("--allow-pickle", action="store_true", help="allow .bin (pickle) weights; only for trusted sources")
    p.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code; only if trusted")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


# ----------------------------------------------------------------------------- bench


def run_bench(args) -> int:
    import runpy

    script = Path(__file__).resolve().parent.parent / "bench" / "bench_scoring.py"
    if not script.exists():
        raise UsageError(f"{script} not found; the benchmarks ship with the repository, not the wheel")
    sys.argv = [str(script)] + args.bench_args
    runpy.run_path(str(script), run_name="__main__")
    return EXIT_OK


# ----------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m red_core", description="Token-level rewards (RED) from any reward model.")
    sub = parser.add_subparsers(dest="command", required=True)
    add_score_args(sub.add_parser("score", help="per-token rewards for a JSONL/CSV file"))
    try:
        from red_core.train import cli as train_cli
    except ImportError:
        train_cli = None
    if train_cli is not None:
        train_cli.add_train_args(sub.add_parser("train", help="RED-PPO: train a policy with token rewards"))
    b = sub.add_parser("bench", help="scoring benchmarks (bench/bench_scoring.py)")
    b.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark script")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on usage errors, 0 on --help
        return int(e.code or 0)
    from red_core.models import RewardModelError

    try:
        if args.command == "score":
            return run_score(args)
        if args.command == "train":
            from red_core.train import cli as train_cli

            return train_cli.run_train(args)
        return run_bench(args)
    except (UsageError, RewardModelError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
