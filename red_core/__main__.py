"""Command line: `python -m red_core score|train|bench`.

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
train  RED-PPO (see red_core/train/).
bench  Scoring benchmarks (bench/bench_scoring.py).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import errno
import io
import itertools
import json
import math
import os
import signal
import sys
import tempfile
from pathlib import Path

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
              bool: "true/false", type(None): "null"}
NOT_TEXT = {  # leading bytes of files that are not UTF-8 text; UTF-32 before UTF-16 (same first bytes)
    codecs.BOM_UTF32_LE: "is UTF-32 text; save it as UTF-8",
    codecs.BOM_UTF32_BE: "is UTF-32 text; save it as UTF-8",
    codecs.BOM_UTF16_LE: "is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8)",
    codecs.BOM_UTF16_BE: "is UTF-16 text; save it as UTF-8 (in Excel: CSV UTF-8)",
    b"\x1f\x8b": "is gzip-compressed; decompress it first (gunzip)",
    b"PK\x03\x04": "is a zip file (an Excel .xlsx?); save it as CSV UTF-8 or JSONL",
}


SCORE_EPILOG = ("A bad row becomes {\"id\", \"line\", \"error\"} and the run goes on. An existing --output is replaced "
                "only when the run succeeds. Exit status: 0 all rows scored, 1 some rows failed (all written), "
                "2 usage error (output untouched), 130 interrupted (rows so far in OUTPUT.partial).")


class UsageError(Exception):
    """Bad command-line use: exit 2 with the message."""


# ----------------------------------------------------------------------------- score: reading


def open_input(path: str):
    """The input, opened in binary, after the checks that make it a usage error."""
    if not os.path.exists(path):
        raise UsageError(f"input file {path!r} not found")
    if os.path.isdir(path):
        raise UsageError(f"--input {path!r} is a folder; give a .jsonl or .csv file")
    try:
        f = open(path, "rb")
        head = f.peek(4)[:4]
    except OSError as err:
        raise UsageError(f"cannot read --input {path!r}: {err.strerror}") from err
    for magic, problem in NOT_TEXT.items():
        if head.startswith(magic):
            f.close()
            raise UsageError(f"--input {path!r} {problem}")
    return f


def read_rows(f, path: str):
    """Yield (line, id, row or error message) per input row."""
    return read_csv(f, path) if path.lower().endswith(".csv") else read_jsonl(f, path)


def read_jsonl(f, path: str):
    first = True
    for n, raw in enumerate(f, start=1):
        raw = raw.removeprefix(codecs.BOM_UTF8)  # on any line: files joined with `cat` keep their BOMs
        if not raw.strip():
            continue
        if first and raw.strip() in (b"[", b"{"):
            raise UsageError(f"{path!r} looks like pretty-printed JSON, not JSONL (one JSON object per line); "
                             f"convert it, e.g. jq -c '.[]' {path} > rows.jsonl")
        first = False
        row = parse_json_line(raw)
        yield n, row.get("id", n) if isinstance(row, dict) else None, row


def parse_json_line(raw: bytes) -> dict | str:
    """The row, or why the line is not one."""
    if b"\0" in raw:
        return f"contains a NUL byte (byte {raw.index(0) + 1} of the line); is the file UTF-16 or binary? " \
               "Save it as UTF-8 text"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"not valid UTF-8 (byte 0x{raw[err.start]:02X} at byte {err.start + 1} of the line); " \
               "save the file as UTF-8"
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                           object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as err:
        return f"not valid JSON ({err.msg} at column {err.colno}); each line must be one JSON object"
    except ValueError as err:
        return f"not valid JSON ({err}); each line must be one JSON object"
    except RecursionError:
        return "not valid JSON (nested too deeply); each line must be one JSON object"
    if not isinstance(value, dict):
        hint = " (a JSON array of rows? convert it with jq -c '.[]')" if isinstance(value, list) else ""
        return f"the line is {JSON_TYPES[type(value)]}, not a JSON object{hint}; " \
               "each line must be one object with \"prompt\" and \"response\""
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON value; use null or a number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text} is too large")
    return value


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"key(s) {repeated} appear more than once in one object")
    return dict(pairs)


def read_csv(f, path: str):
    """Rows of a CSV file whose first line names the columns (prompt, response, optional id).

    Decoded with utf-8-sig (an Excel BOM is dropped) and errors='surrogateescape', so a bad byte
    spoils only its own record (`row_problem` reports it)."""
    records = csv_records(io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline=""))
    header = next(records, None)
    if header is None:
        return
    columns = check_header(header[1], path)
    for line, fields in records:
        if isinstance(fields, str):
            yield line, None, fields
            continue
        row_id = fields[columns.index("id")] if "id" in columns and columns.index("id") < len(fields) else line
        if len(fields) != len(columns):
            yield line, row_id, f"has {len(fields)} field(s) but the header has {len(columns)} " \
                                f"({', '.join(columns)}); quote fields that contain commas, e.g. \"a, b\""
            continue
        row = dict(zip(columns, fields))
        yield line, row_id, {k: row[k] for k in ("id", "prompt", "response") if k in row}


def csv_records(text):
    """Yield (first line, fields or error message) per CSV record; blank records are skipped."""
    reader = csv.reader(text, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield start, csv_error(err)
            continue
        if any(field.strip() for field in fields):
            yield start, fields


def csv_error(err: csv.Error) -> str:
    if "end of data" in str(err):
        return "not valid CSV: a quoted field starting on this line is never closed (it runs to the end of the file)"
    return f"not valid CSV ({err}); quote a field that contains quotes, commas or line breaks and double its quotes"


def check_header(header: list[str] | str, path: str) -> list[str]:
    if isinstance(header, str):
        raise UsageError(f"{path!r}: the header (first line) is {header}")
    columns = [name.strip() for name in header]
    missing = [c for c in ("prompt", "response") if c not in columns]
    if missing:
        raise UsageError(f"{path!r} has no {' or '.join(map(repr, missing))} column (columns found: "
                         f"{', '.join(columns)}); the first line must name the columns: prompt,response (id optional)")
    repeated = [c for c in ("id", "prompt", "response") if columns.count(c) > 1]
    if repeated:
        raise UsageError(f"{path!r}: column(s) {repeated} appear more than once in the header; keep one of each")
    return columns


def row_problem(row: dict, from_csv: bool) -> str | None:
    """Why a parsed row cannot be scored, or None."""
    for key in ("prompt", "response"):
        if key not in row:
            found = ", ".join(map(str, row)) or "none"
            return f"missing field {key!r} (fields found: {found}); each row needs \"prompt\" and \"response\" strings"
        if not isinstance(row[key], str):
            return f"field {key!r} is {JSON_TYPES.get(type(row[key]), 'not a string')}, not a string"
    for key in ("id", "prompt", "response"):
        problem = text_problem(row.get(key), from_csv)
        if problem:
            return f"{'column' if from_csv else 'field'} {key!r} {problem}"
    return None


def text_problem(value, from_csv: bool) -> str | None:
    """A lone surrogate (from a JSON escape, or a byte that was not UTF-8 in a CSV) or a NUL in a CSV."""
    if not isinstance(value, str):
        return None
    if from_csv and "\0" in value:
        return f"contains a NUL byte at position {value.index(chr(0))}; is the file UTF-16 or binary? " \
               "Save it as UTF-8 text"
    try:
        value.encode("utf-8")
        return None
    except UnicodeEncodeError as err:
        pos, code = err.start, ord(value[err.start])
    if from_csv:  # surrogateescape: U+DC80..U+DCFF stand for the undecodable bytes 0x80..0xFF
        return f"is not valid UTF-8 (byte 0x{code - 0xDC00:02X} at position {pos}); save the file as UTF-8 " \
               "(in Excel: CSV UTF-8)"
    return f"contains an invalid character (lone surrogate U+{code:04X}) at position {pos}; \\uD800-\\uDFFF " \
           "escapes must come in pairs (high then low); the text was probably cut inside an emoji"


def checked(rows, from_csv: bool):
    """Rows with a problem become their error message; an error row's id is made writable."""
    for line, row_id, row in rows:
        if isinstance(row, dict):
            row = row_problem(row, from_csv) or row
        yield line, printable(row_id, from_csv) if isinstance(row, str) else row_id, row


def printable(value, from_csv: bool):
    """A string id with lone surrogates, written with backslash escapes instead (a CSV's bad bytes as \\xNN)."""
    if not isinstance(value, str):
        return value
    if from_csv:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def count_rows(path: str) -> int | None:
    """Rows to expect, for the progress bar (regular files only: a pipe cannot be read twice)."""
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip()) - (1 if path.lower().endswith(".csv") else 0)


# ----------------------------------------------------------------------------- score: writing


def write_error(err: OSError, path: str) -> str:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full (no space left on device) while writing {path!r}; free some space or " \
               "choose another --output"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write {path!r}; choose an --output in a folder you can write to"
    if err.errno == errno.EROFS:
        return f"cannot write {path!r}: the file system is read-only; choose another --output"
    if err.errno == errno.EPIPE:
        return "the output was closed before all rows were written (broken pipe)"
    return f"cannot write {path!r}: {err.strerror or err}"


def check_output(path: str, input_path: str) -> str:
    """The file to write (symlinks resolved), or a UsageError saying what is wrong with `path`."""
    if os.path.isdir(path):
        raise UsageError(f"--output {path!r} is a folder; give a file name, e.g. {os.path.join(path, 'scores.jsonl')}")
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    if not os.path.isdir(folder):
        what = "is a file, not a folder" if os.path.exists(folder) else "does not exist; create it first"
        raise UsageError(f"cannot write --output {path!r}: {folder!r} {what}")
    if os.path.exists(target) and os.path.samefile(target, input_path):
        raise UsageError(f"--output {path!r} is the --input file; choose another output file")
    if os.path.isfile(target) and not os.access(target, os.W_OK):
        raise UsageError(f"--output {path!r} is read-only; choose another output file or make it writable")
    return target


@contextlib.contextmanager
def output_file(path: str, input_path: str):
    """A binary file to write the rows to; see the module docstring for what happens on failure."""
    if path == "-":
        yield sys.stdout.buffer
        return
    target = check_output(path, input_path)
    if os.path.exists(target) and not os.path.isfile(target):  # /dev/null, /dev/full, a pipe: no rename
        f = open_for_writing(target, path)
        try:
            yield f
        finally:
            close_quietly(f)
        return
    folder, name = os.path.split(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise UsageError(write_error(err, path)) from err
    f = os.fdopen(fd, "wb")
    try:
        yield f
        commit(f, tmp, target, path)
    except KeyboardInterrupt:
        close_quietly(f)
        keep_partial(tmp, target)
        raise
    except BaseException:
        close_quietly(f)
        os.remove(tmp)
        raise


def close_quietly(f) -> None:
    """Close after a failure: data left in the buffer (the disk was full) is dropped, not raised again."""
    with contextlib.suppress(OSError):
        f.close()


def open_for_writing(target: str, path: str):
    try:
        return open(target, "wb")
    except OSError as err:
        raise UsageError(write_error(err, path)) from err


def commit(f, tmp: str, target: str, path: str) -> None:
    """Flush the temporary file to disk and rename it over the target (keeping the target's mode)."""
    try:
        f.flush()
        os.fsync(f.fileno())
        f.close()
        if os.path.exists(target):
            mode = os.stat(target).st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as err:
        raise UsageError(write_error(err, path)) from err


def keep_partial(tmp: str, target: str) -> None:
    """Keep the complete rows written so far in TARGET.partial (an interrupted write can leave half a line)."""
    if trim_to_last_line(tmp) == 0:
        os.remove(tmp)
        return
    os.replace(tmp, target + ".partial")
    print(f"the rows written before the interruption are in {target}.partial; {target} was not changed",
          file=sys.stderr)


def trim_to_last_line(path: str) -> int:
    """Cut the file after its last newline; return its new size."""
    with open(path, "rb+") as f:
        end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - (1 << 16))
            f.seek(start)
            newline = f.read(end - start).rfind(b"\n")
            if newline >= 0:
                return f.truncate(start + newline + 1)
            end = start
        return f.truncate(0)


def write(out, data: bytes, path: str) -> None:
    try:
        out.write(data)
        out.flush()
    except OSError as err:
        if out is sys.stdout.buffer:  # what is left in its buffer would fail again when Python exits
            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise UsageError(write_error(err, path)) from err


def output_row(row_id, line: int, result) -> dict:
    if isinstance(result, str):
        return {"id": row_id, "line": line, "error": result}
    if isinstance(result, Exception):
        return {"id": row_id, "line": line, "error": f"{type(result).__name__}: {result}"}
    return {"id": row_id, "line": line, "method": result.method, "params": result.params, "score": result.score,
            "baseline": result.baseline, "sum": result.total, "granularity": result.granularity,
            "tokens": result.rows(), "warnings": result.warnings}


def encode_line(row: dict) -> tuple[bytes, bool]:
    """One output line (strict JSON, UTF-8) and whether it is an error row. A row that cannot be
    written as strict JSON becomes an error row instead of stopping the run."""
    try:
        return (json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"), "error" in row
    except UnicodeEncodeError:
        reason = "it contains an invalid character (a lone surrogate)"
    except ValueError:
        reason = "a score is NaN or infinite (did the model overflow? try --dtype float32)"
    except RecursionError:
        reason = "it is nested too deeply"
    fallback = {"id": None, "line": row["line"], "error": f"this row could not be written as JSON: {reason}"}
    return (json.dumps(fallback) + "\n").encode("utf-8"), True


# ----------------------------------------------------------------------------- score: running


def parse_granularity(text: str):
    from red_core.align import LEVELS

    if text in LEVELS:
        return text
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise UsageError(f"--granularity must be token, word, sentence or a positive integer k (chunks of k tokens), "
                         f"got {text!r}")
    return k


def check_options(args) -> dict:
    """The scoring options (keyword arguments of token_rewards_batch), or a UsageError."""
    import red_core

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer (rows per batch), got {args.batch_size}")
    for flag, value in (("--beta-c", args.beta_c), ("--beta", args.beta)):
        if not 0.0 <= value <= 1.0:  # also catches nan
            raise UsageError(f"{flag} must be between 0 and 1, got {value}")
    params = {"beta_c": args.beta_c, "prompt_baseline": not args.no_prompt_baseline, "beta": args.beta}
    try:
        red_core.methods.resolve_params(args.method, params)
    except ValueError as err:
        raise UsageError(f"--method: {err}") from err
    return {"method": args.method, "batch_size": args.batch_size, "granularity": parse_granularity(args.granularity),
            **params}


def load_model(args):
    import red_core

    try:
        return red_core.load_reward_model(args.reward_model, device=args.device, dtype=args.dtype,
                                          label_index=args.label_index, allow_pickle=args.allow_pickle,
                                          trust_remote_code=args.trust_remote_code,
                                          input_format="concat" if args.no_chat_template else args.input_format)
    except ValueError as err:  # RewardModelError is a ValueError
        raise UsageError(str(err)) from err


def score_rows(rm, rows: list[dict], opts: dict) -> list:
    """TokenRewards or the exception, per row. A batch that fails as a whole (out of memory, say) is
    scored again row by row, so one bad row cannot sink the others."""
    import red_core

    try:
        return red_core.token_rewards_batch(rm, [r["prompt"] for r in rows], [r["response"] for r in rows],
                                            on_error="return", **opts)
    except Exception as err:  # noqa: BLE001 - reported per row
        if len(rows) == 1:
            return [err]
        return [score_rows(rm, [row], opts)[0] for row in rows]


def score_batch(rm, batch: list, opts: dict) -> list[tuple[bytes, bool]]:
    """Output lines for a batch of (line, id, row or error message), in input order."""
    good = [row for _, _, row in batch if isinstance(row, dict)]
    results = iter(score_rows(rm, good, opts) if good else [])
    return [encode_line(output_row(row_id, line, row if isinstance(row, str) else next(results)))
            for line, row_id, row in batch]


def batches(items, size: int):
    items = iter(items)
    while batch := list(itertools.islice(items, size)):
        yield batch


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (kill, job schedulers) stops the run like Ctrl-C, so the clean-up runs."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_score(args) -> int:
    from tqdm import tqdm

    opts = check_options(args)
    shown = "stdout" if args.output == "-" else args.output
    written = failed = 0
    with open_input(args.input) as f, sigterm_as_interrupt():
        rows = read_rows(f, args.input)
        first = list(itertools.islice(rows, 1))  # reads a CSV header now: a bad one fails before the model loads
        with output_file(args.output, args.input) as out:
            rm = load_model(args)
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
    add_score_args(sub.add_parser("score", help="per-token rewards for a JSONL/CSV file", epilog=SCORE_EPILOG))
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
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
