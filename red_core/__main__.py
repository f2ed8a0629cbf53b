"""Command line: `python -m red_core score|scan|train|bench`.

score  Per-token rewards for a JSONL (or .csv) file of {"prompt", "response", "id"?} rows.

  Output: one JSON line per input row, in input order: the rewards, or {"id", "line", "error"} for a
  row that could not be scored. "line" is the input line where the row starts (for CSV, line 1 is
  the header); "id" is the row's id kept as it is (any JSON value; duplicates allowed, "line" is
  the unique key) or, when the row has none, its line number.

  Nothing is lost: the input is decoded line by line (JSONL) or record by record (CSV), so a bad
  line becomes an error row and the run goes on. Error rows are made for: bytes that are not UTF-8,
  NUL bytes, lines that are not one JSON object (NaN/Infinity and duplicate keys count as not
  JSON), missing or non-string prompt/response, lone surrogates (a JSON escape \\ud800 without its
  pair) in prompt, response or id, CSV records with the wrong number of fields or broken quoting.
  A UTF-8 byte order mark (BOM) and CRLF line ends are accepted. Rows are read, scored in batches
  and written in order, so memory does not grow with the file.

  Nothing is damaged: every option, the input (and a CSV header) and the output location are checked
  and the model is loaded before the output is touched. A regular output file is written to a
  hidden temporary file next to it and renamed over it only at the end, so a failed run leaves a
  previous result as it was. On Ctrl-C (or SIGTERM) the rows written so far are kept in
  OUTPUT.partial; on any other failure the temporary file is deleted. `--output -` (stdout), and
  outputs that are not regular files (/dev/null, a pipe), are written as the rows come.

  Exit status: 0 all rows scored; 1 some rows failed (all rows written, see their "error");
  2 usage error: a one-line message says what to fix, and an existing output file is unchanged
  (this includes a full disk); 130 interrupted (Ctrl-C or SIGTERM).
scan   The same for a whole dataset (JSONL, CSV, Parquet, a saved or hub `datasets` dataset), written as
       resumable Parquet shards plus a corpus report (see red_core/scan.py).
train  RED-PPO (see red_core/train/).
bench  Scoring benchmarks (bench/bench_scoring.py).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from red_core import scan
from red_core.cli_common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    add_method_args,
    add_model_args,
    load_model,
    method_options,
    model_options,
    score_pairs,
    sigterm_as_interrupt,
)
from red_core.outfile import encode_line, output_file, output_row, write
from red_core.rows import UsageError, checked, count_rows, open_input, read_rows
from red_core.train import cli as train_cli

SCORE_EPILOG = ("A bad row becomes {\"id\", \"line\", \"error\"} and the run goes on. An existing --output is replaced "
                "only when the run succeeds. Exit status: 0 all rows scored, 1 some rows failed (all written), "
                "2 usage error (output untouched), 130 interrupted (rows so far in OUTPUT.partial).")


# ----------------------------------------------------------------------------- score: running


def score_batch(rm, batch: list, opts: dict) -> list[tuple[bytes, bool]]:
    """Output lines for a batch of (line, id, row or error message), in input order."""
    good = [row for _, _, row in batch if isinstance(row, dict)]
    results = iter(score_pairs(rm, [r["prompt"] for r in good], [r["response"] for r in good], opts) if good else [])
    return [encode_line(output_row(row_id, line, row if isinstance(row, str) else next(results)))
            for line, row_id, row in batch]


def batches(items, size: int):
    items = iter(items)
    while batch := list(itertools.islice(items, size)):
        yield batch


def run_score(args) -> int:
    from tqdm import tqdm

    opts = method_options(args)
    shown = "stdout" if args.output == "-" else args.output
    written = failed = 0
    with open_input(args.input) as f, sigterm_as_interrupt():
        rows = read_rows(f, args.input)
        first = list(itertools.islice(rows, 1))  # reads a CSV header now: a bad one fails before the model loads
        with output_file(args.output, args.input) as out:
            rm = load_model(model_options(args))
            rows = checked(itertools.chain(first, rows), from_csv=args.input.lower().endswith(".csv"))
            with tqdm(total=count_rows(args.input), unit="row", file=sys.stderr, disable=args.quiet) as bar:
                for batch in batches(rows, args.batch_size):
                    lines = score_batch(rm, batch, opts)
                    write(out, b"".join(line for line, _ in lines), shown)
                    written += len(lines)
                    failed += sum(error for _, error in lines)
                    bar.update(len(lines))
    if not written:
        print(f"warning: no rows in {args.input}", file=sys.stderr)
    if failed:
        print(f"{failed} of {written} row(s) failed; see the \"error\" field of those rows in {shown}", file=sys.stderr)
    return EXIT_ROWS_FAILED if failed else EXIT_OK


def add_score_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="JSONL (or .csv) with prompt, response and optional id per row")
    p.add_argument("--output", default="-", help="JSONL output, one row per input row, same order (default: stdout)")
    add_model_args(p)
    add_method_args(p)
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
    add_score_args(sub.add_parser("score", help="per-token rewards for a JSONL/CSV file", epilog=SCORE_EPILOG))
    scan.add_scan_args(sub.add_parser("scan", help="per-token rewards for a whole dataset, as resumable Parquet shards",
                                      epilog=scan.EPILOG))
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
    try:
        if args.command == "score":
            return run_score(args)
        if args.command == "scan":
            return scan.run_scan(args)
        if args.command == "train":
            return train_cli.run_train(args)
        return run_bench(args)
    except ValueError as err:  # UsageError, RewardModelError and the trainer's RunFolderError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
