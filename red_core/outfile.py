"""Rows out: the score command's output file, written so that a failed run damages nothing.

A regular output file is written to a hidden temporary file next to it and renamed over it only at
the end, so a failed run leaves a previous result as it was. On Ctrl-C (or SIGTERM) the rows written
so far are kept in OUTPUT.partial; on any other failure the temporary file is deleted. `-` (stdout),
and outputs that are not regular files (/dev/null, a pipe), are written as the rows come. Each row is
one line of strict JSON; a row that cannot be written as JSON becomes an error row.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import sys
import tempfile

import numpy as np

from red_core.rows import UsageError


def write_error(err: OSError, path: str, flag: str = "--output") -> str:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk is full (no space left on device) while writing {path!r}; free some space or " \
               f"choose another {flag}"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write {path!r}; choose an {flag} in a folder you can write to"
    if err.errno == errno.EROFS:
        return f"cannot write {path!r}: the file system is read-only; choose another {flag}"
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
    with atomic_file(target, path, keep_on_interrupt=True) as f:
        yield f


@contextlib.contextmanager
def atomic_file(target: str, shown: str | None = None, *, keep_on_interrupt: bool = False, flag: str = "--output"):
    """A binary file that replaces `target` only when the block ends without error (temp name next to it, fsync,
    rename, the target's mode kept). On Ctrl-C, with keep_on_interrupt, what was written goes to TARGET.partial;
    otherwise the temporary file is removed. Write errors are UsageErrors that name `shown` and `flag`."""
    shown = shown or target
    folder, name = os.path.split(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    except OSError as err:
        raise UsageError(write_error(err, shown, flag)) from err
    f = os.fdopen(fd, "wb")
    try:
        yield f
        commit(f, tmp, target, shown)
    except KeyboardInterrupt:
        close_quietly(f)
        if keep_on_interrupt:
            keep_partial(tmp, target)
        else:
            _remove(tmp)
        raise
    except BaseException:
        close_quietly(f)
        _remove(tmp)
        raise


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


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


def plain_json(x):
    """x as strict JSON data: NaN / inf floats -> None, numpy scalars -> Python numbers, tuples -> lists, keys -> str.

    Used wherever a result is written as JSON (the corpus report, training state and summaries), so none of
    them can write a NaN literal that strict JSON readers refuse."""
    if isinstance(x, dict):
        return {str(k): plain_json(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain_json(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
