"""Rows in: JSONL or CSV files read so that nothing is lost.

The input is decoded line by line (JSONL) or record by record (CSV), so a bad line becomes an error
message for that row (with its line number) and reading goes on: bytes that are not UTF-8, NUL
bytes, lines that are not one JSON object (NaN/Infinity and duplicate keys count as not JSON),
missing or non-string prompt/response, lone surrogates, CSV records with the wrong number of fields
or broken quoting. A UTF-8 byte order mark and CRLF line ends are accepted. Problems with the file
as a whole (a folder, UTF-16, gzip, a spreadsheet, pretty-printed JSON, a bad CSV header) raise
UsageError before anything else happens. Used by `python -m red_core score` and `scan`.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os

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


class UsageError(ValueError):
    """A file or option the user must fix (the CLI exits 2 with the message)."""


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
            yield line, row_id, field_count_error(fields, columns)
            continue
        row = dict(zip(columns, fields))
        yield line, row_id, {k: row[k] for k in ("id", "prompt", "response") if k in row}


def field_count_error(fields: list[str], columns: list[str]) -> str:
    return f"has {len(fields)} field(s) but the header has {len(columns)} " \
           f"({', '.join(columns)}); quote fields that contain commas, e.g. \"a, b\""


def read_csv_table(f, path: str):
    """(columns, records) of a CSV file with any columns: records yields (line, {column: text} or error
    message) per record, decoded and checked as `read_csv` does. Used by `python -m red_core scan`."""
    records = csv_records(io.TextIOWrapper(f, encoding="utf-8-sig", errors="surrogateescape", newline=""))
    header = next(records, None)
    if header is None:
        return [], iter(())
    if isinstance(header[1], str):
        raise UsageError(f"{path!r}: the header (first line) is {header[1]}")
    columns = [name.strip() for name in header[1]]
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})  # unnamed columns are never read
    if repeated:
        raise UsageError(f"{path!r}: column(s) {repeated} appear more than once in the header; keep one of each")
    return columns, _csv_dicts(records, columns)


def _csv_dicts(records, columns: list[str]):
    for line, fields in records:
        if isinstance(fields, str):
            yield line, fields
        elif len(fields) != len(columns):
            yield line, field_count_error(fields, columns)
        else:
            yield line, dict(zip(columns, fields))


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
