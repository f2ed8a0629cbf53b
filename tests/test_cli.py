"""`python -m red_core score`: streaming JSONL/CSV, per-row errors with line numbers, exit codes,
an existing output never damaged, usage errors as one line and exit 2."""

import errno
import json
import os
import subprocess
import sys

import pytest
import torch

import red_core
from red_core import __main__ as cli
from red_core.__main__ import main


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def good(i):
    return json.dumps({"id": f"r{i}", "prompt": "Q: ", "response": f"Answer number {i}."}).encode()


def score(model_dir, src, out, *extra):
    return main(["score", "--reward-model", model_dir("llama"), "--input", str(src), "--output", str(out),
                 "--batch-size", "2", "--quiet", *extra])


def read_out(path):
    """Output rows; the file must be strict UTF-8 JSON lines."""
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()]


def assert_scored(row):
    assert "error" not in row, row["error"]
    assert sum(t["reward"] for t in row["tokens"]) == pytest.approx(row["score"] - row["baseline"], abs=1e-5)


def errors_by_line(rows):
    return {r["line"]: r["error"] for r in rows if "error" in r}


def one_error_line(err):
    """The usage message: exactly one `error:` line and no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith((".tmp", ".partial")))


def test_jsonl_with_broken_lines_processes_the_good_ones(model_dir, tmp_path, capsys):
    src = write(tmp_path / "in.jsonl", [
        json.dumps({"id": "a", "prompt": "Q: ", "response": "Good answer."}),
        "{this is not json",
        json.dumps({"id": "c", "prompt": "Q: "}),
        json.dumps({"prompt": "Q: ", "response": ""}),
        "",
        json.dumps({"id": "e", "prompt": "", "response": "Fine 🌞"}),
    ])
    out = tmp_path / "out.jsonl"
    code = main(["score", "--reward-model", model_dir("llama"), "--input", src, "--output", str(out),
                 "--batch-size", "2", "--quiet"])
    assert code == 1
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 6]
    assert [r["id"] for r in rows] == ["a", None, "c", 4, "e"]
    assert "not valid JSON" in rows[1]["error"] and "response" in rows[2]["error"] and "empty" in rows[3]["error"]
    for r in (rows[0], rows[4]):
        assert "error" not in r and r["method"] == "red"
        assert sum(t["reward"] for t in r["tokens"]) == pytest.approx(r["score"] - r["baseline"], abs=1e-5)
        assert set(r["tokens"][0]) == {"text", "start", "end", "id", "special", "reward", "prefix_score"}
    assert "3 of 5 row(s) failed" in capsys.readouterr().err

def test_csv_input_all_good_exits_zero(model_dir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,prompt,response\n1,"Q: ","Yes, ""quoted"", fine."\n2,,Plain.\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(["score", "--reward-model", model_dir("bert"), "--input", str(src), "--output", str(out),
                 "--method", "uniform", "--granularity", "word", "--quiet"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "2"] and rows[0]["granularity"] == "word"
    assert rows[0]["tokens"][1]["text"] == ' "quoted",'


def test_usage_errors_exit_two(model_dir, tmp_path, capsys):
    assert main(["score", "--reward-model", model_dir("llama"), "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err
    src = write(tmp_path / "in.jsonl", [json.dumps({"prompt": "", "response": "x"})])
    assert main(["score", "--reward-model", model_dir("llama"), "--input", src, "--method", "nope"]) == 2
    assert "choose one of" in capsys.readouterr().err
    assert main(["score", "--input", src, "--reward-model", str(tmp_path / "missing")]) == 2
    assert main(["score"]) == 2


def test_module_entry_point_streams_to_stdout_and_keeps_going(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(json.dumps({"prompt": "Q: ", "response": "ok"}).encode() + b"\n\xff\xfe\n" + good(3) + b"\n")
    proc = subprocess.run([sys.executable, "-m", "red_core", "score", "--reward-model", model_dir("llama"),
                           "--input", str(src)], capture_output=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert [r["line"] for r in rows] == [1, 2, 3] and [r["id"] for r in rows] == [1, None, "r3"]
    assert "not valid UTF-8 (byte 0xFF at byte 1" in rows[1]["error"]
    assert_scored(rows[0]) and assert_scored(rows[2])


# ----------------------------------------------------------------------------- bad input -> error rows


def test_invalid_utf8_byte_spoils_only_its_line(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(good(0) + b'\n{"id": "r1", "prompt": "Q: ", "response": "caf\xe9"}\n' + good(2) + b"\n"
                    + good(3) + b"\n")
    out = tmp_path / "out.jsonl"
    assert score(model_dir, src, out) == 1
    rows = read_out(out)
    assert [r["line"] for r in rows] == [1, 2, 3, 4] and [r["id"] for r in rows] == ["r0", None, "r2", "r3"]
    assert list(errors_by_line(rows)) == [2]
    assert "not valid UTF-8 (byte 0xE9 at byte 47 of the line)" in rows[1]["error"]
    for r in (rows[0], rows[2], rows[3]):
        assert_scored(r)


def test_lone_surrogates_become_error_rows_and_the_file_stays_utf8(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join([
        good(0),
        b'{"id": "a\\udfff", "prompt": "Q: ", "response": "fine"}',      # in the id
        b'{"id": "r2", "prompt": "Q: ", "response": "x\\ud800y"}',       # in the response
        b'{"id": "r3", "prompt": "\\ud83d", "response": "fine"}',        # high half of an emoji, in the prompt
        b'{"id": "r4", "prompt": "Q: ", "response": "ok \\ud83d\\ude00"}',  # a proper pair is fine
    ]) + b"\n")
    out = tmp_path / "out.jsonl"
    assert score(model_dir, src, out) == 1
    rows = read_out(out)  # strict UTF-8: the writer never saw a surrogate
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5]
    errors = errors_by_line(rows)
    assert list(errors) == [2, 3, 4]
    assert "field 'id' contains an invalid character (lone surrogate U+DFFF) at position 1" in errors[2]
    assert rows[1]["id"] == "a\\udfff"  # written with a visible escape
    assert "field 'response' contains an invalid character (lone surrogate U+D800) at position 1" in errors[3]
    assert "field 'prompt' contains an invalid character (lone surrogate U+D83D) at position 0" in errors[4]
    assert_scored(rows[0]) and assert_scored(rows[4])
    assert "😀" in "".join(t["text"] for t in rows[4]["tokens"])


def test_bom_on_jsonl_is_accepted(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\xef\xbb\xbf" + good(0) + b"\n" + good(1) + b"\n\xef\xbb\xbf" + good(2) + b"\n")  # + a `cat` join
    out = tmp_path / "out.jsonl"
    assert score(model_dir, src, out) == 0
    rows = read_out(out)
    assert [r["id"] for r in rows] == ["r0", "r1", "r2"] and [r["line"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert_scored(r)


def test_excel_csv_with_bom_and_crlf(model_dir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(b"\xef\xbb\xbfid,prompt,response\r\n1,Q: ,Yes.\r\n2,Q: ,\"No, \"\"never\"\".\"\r\n")
    out = tmp_path / "out.jsonl"
    assert score(model_dir, src, out) == 0
    rows = read_out(out)
    assert [r["id"] for r in rows] == ["1", "2"] and [r["line"] for r in rows] == [2, 3]  # not `\ufeffid`
    assert "".join(t["text"] for t in rows[1]["tokens"]).startswith('No, "never".')
    for r in rows:
        assert_scored(r)


def test_messy_csv_each_bad_record_is_one_error_row(model_dir, tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(b"\n".join([
        b"id, prompt, response",      # line 1: spaces after the commas are fine
        b"1,Q: ,caf\xe9",             # 2: not UTF-8
        b'2,Q: ,"two',                # 3-4: a quoted field over two lines is one record
        b'lines"',
        b"3,Q: ,Ye\x00s",             # 5: NUL
        b"4\xff,Q: ,Yes,extra",       # 6: too many fields (and a bad byte in the id)
        b",,",                        # 7: an empty record (Excel) is skipped
        b'5,Q: ,"a"b',                # 8: broken quoting
        b"6,Q: ,Fine.",               # 9
        b'7,Q: ,"never closed',       # 10: runs to the end
        b"8,Q: ,lost inside the quote",
    ]) + b"\n")
    out = tmp_path / "out.jsonl"
    assert score(model_dir, src, out) == 1
    rows = read_out(out)
    assert [r["line"] for r in rows] == [2, 3, 5, 6, 8, 9, 10]
    assert [r["id"] for r in rows] == ["1", "2", "3", "4\\xff", None, "6", None]
    errors = errors_by_line(rows)
    assert list(errors) == [2, 5, 6, 8, 10]
    assert "column 'response' is not valid UTF-8 (byte 0xE9 at position 3)" in errors[2]
    assert "column 'response' contains a NUL byte at position 2" in errors[5]
    assert "has 4 field(s) but the header has 3 (id, prompt, response)" in errors[6]
    assert "not valid CSV" in errors[8] and "never closed" in errors[10]
    assert_scored(rows[1]) and assert_scored(rows[5])
    assert "\n" in "".join(t["text"] for t in rows[1]["tokens"])


def test_json_values_ids_and_duplicates(model_dir, tmp_path):
    ids = ["x", "x", 7, 1.5, [1, "a"], {"k": [None]}, None, True]  # any JSON id is kept; duplicates are allowed
    lines = [json.dumps({"id": v, "prompt": "Q: ", "response": "ok"}) for v in ids] + [
        "[1, 2]", "42", '"text"', "null",
        '{"id": NaN, "prompt": "Q: ", "response": "ok"}',
        '{"prompt": "Q: ", "response": "a", "response": "b"}',
        '{"prompt": 5, "response": "ok"}',
        '{"Prompt": "Q: ", "response": "ok"}',
        "[" * 100_000 + "]" * 100_000,
    ]
    out = tmp_path / "out.jsonl"
    assert score(model_dir, write(tmp_path / "in.jsonl", lines), out) == 1
    rows = read_out(out)
    assert [r["line"] for r in rows] == list(range(1, 18))
    assert [r["id"] for r in rows[:8]] == ids
    for r in rows[:8]:
        assert_scored(r)
    errors = errors_by_line(rows)
    assert list(errors) == list(range(9, 18))
    assert "is an array, not a JSON object" in errors[9] and "jq" in errors[9]
    assert "is a number, not" in errors[10] and "is a string, not" in errors[11] and "is null, not" in errors[12]
    assert "NaN is not a JSON value" in errors[13]
    assert "['response'] appear more than once" in errors[14]
    assert "field 'prompt' is a number, not a string" in errors[15]
    assert "missing field 'prompt' (fields found: Prompt, response)" in errors[16]
    assert "nested too deeply" in errors[17]


def test_a_batch_that_fails_as_a_whole_is_retried_row_by_row(model_dir, tmp_path, monkeypatch):
    real = red_core.token_rewards_batch

    def flaky(rm, prompts, responses, *a, **kw):
        if "BOOM" in responses:
            raise RuntimeError("CUDA out of memory (pretend)")
        return real(rm, prompts, responses, *a, **kw)

    monkeypatch.setattr(red_core, "token_rewards_batch", flaky)
    src = write(tmp_path / "in.jsonl", [json.dumps({"prompt": "Q: ", "response": r}) for r in ("a", "BOOM", "c")])
    out = tmp_path / "out.jsonl"
    assert score(model_dir, src, out, "--batch-size", "3") == 1
    rows = read_out(out)
    assert errors_by_line(rows) == {2: "RuntimeError: CUDA out of memory (pretend)"}
    assert_scored(rows[0]) and assert_scored(rows[2])


def test_a_result_that_is_not_strict_json_becomes_an_error_row():
    line, is_error = cli.encode_line({"id": "a", "line": 3, "score": float("nan")})
    assert is_error and json.loads(line) == {"id": None, "line": 3, "error": json.loads(line)["error"]}
    assert "NaN or infinite" in json.loads(line)["error"]
    line, is_error = cli.encode_line({"id": ["\udfff"], "line": 4, "error": "x"})
    assert is_error and "lone surrogate" in json.loads(line.decode("utf-8"))["error"]


def test_empty_input_writes_an_empty_output(model_dir, tmp_path, capsys):
    for name, data in (("in.jsonl", b"\n  \n"), ("in.csv", b""), ("head.csv", b"id,prompt,response\r\n")):
        (tmp_path / name).write_bytes(data)
        out = tmp_path / (name + ".out")
        assert score(model_dir, tmp_path / name, out) == 0
        assert out.read_bytes() == b""
        assert "warning: no rows" in capsys.readouterr().err


# ----------------------------------------------------------------------------- usage errors: exit 2, output untouched


BAD_ARGS = [
    (["--granularity", "0"], "--granularity must be token, word, sentence or a positive integer"),
    (["--granularity", "-1"], "got '-1'"),
    (["--granularity", "abc"], "got 'abc'"),
    (["--batch-size", "0"], "--batch-size must be a positive integer"),
    (["--batch-size", "-3"], "got -3"),
    (["--beta-c", "1.5"], "--beta-c must be between 0 and 1, got 1.5"),
    (["--beta-c", "nan"], "--beta-c must be between 0 and 1, got nan"),
    (["--method", "sparse", "--beta-c", "7"], "--beta-c must be between 0 and 1"),  # even if sparse ignores it
    (["--method", "abc", "--beta", "-0.1"], "--beta must be between 0 and 1"),
    (["--method", "nope"], "choose one of"),
    (["--label-index", "5"], "out of range"),
    (["--dtype", "float8"], "unknown dtype"),
    (["--device", "cuda"], "no CUDA GPU is visible; use --device cpu"),
]


@pytest.mark.parametrize("extra,message", BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_argument_exits_two_and_keeps_the_existing_output(model_dir, tmp_path, capsys, extra, message):
    if "cuda" in extra and torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    out = tmp_path / "out.jsonl"
    out.write_text("PREVIOUS RESULT\n")
    assert score(model_dir, write(tmp_path / "in.jsonl", [good(0).decode()]), out, *extra) == 2
    assert message in one_error_line(capsys.readouterr().err)
    assert out.read_text() == "PREVIOUS RESULT\n" and leftovers(tmp_path) == []


def test_bad_file_locations_exit_two(model_dir, tmp_path, capsys):
    src = write(tmp_path / "in.jsonl", [good(0).decode()])
    (tmp_path / "dir").mkdir()
    cases = [
        (tmp_path / "dir", tmp_path / "o.jsonl", "is a folder; give a .jsonl or .csv file"),
        (tmp_path / "nope.jsonl", tmp_path / "o.jsonl", "not found"),
        (src, tmp_path / "dir", "is a folder; give a file name, e.g."),
        (src, tmp_path / "no" / "such" / "o.jsonl", "does not exist; create it first"),
        (src, tmp_path / "in.jsonl" / "o.jsonl", "is a file, not a folder"),
        (src, src, "is the --input file"),
    ]
    for inp, out, message in cases:
        assert score(model_dir, inp, out) == 2
        assert message in one_error_line(capsys.readouterr().err), (inp, out)
    assert read_out(tmp_path / "in.jsonl")[0]["id"] == "r0" and leftovers(tmp_path) == []


def test_bad_input_files_exit_two(model_dir, tmp_path, capsys):
    cases = [
        ("utf16.jsonl", "\ufeff".encode("utf-16-le") + good(0).decode().encode("utf-16-le"), "is UTF-16 text"),
        ("rows.jsonl.gz", b"\x1f\x8b\x08\x00rest", "is gzip-compressed"),
        ("book.csv", b"PK\x03\x04rest", "is a zip file"),
        ("pretty.json", b'[\n  {"prompt": "Q: ", "response": "a"}\n]\n', "looks like pretty-printed JSON"),
        ("cols.csv", b"id,prompt,answer\n1,Q: ,Yes.\n", "has no 'response' column (columns found: id, prompt, answer)"),
        ("twice.csv", b"id,prompt,prompt,response\n1,a,b,c\n", "column(s) ['prompt'] appear more than once"),
    ]
    out = tmp_path / "out.jsonl"
    out.write_text("PREVIOUS RESULT\n")
    for name, data, message in cases:
        (tmp_path / name).write_bytes(data)
        assert score(model_dir, tmp_path / name, out) == 2
        assert message in one_error_line(capsys.readouterr().err), name
    assert out.read_text() == "PREVIOUS RESULT\n" and leftovers(tmp_path) == []


def test_unwritable_output_folder_exits_two(model_dir, tmp_path, capsys):
    src = write(tmp_path / "in.jsonl", [good(0).decode()])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes (see test_bad_file_locations_exit_two)")
        assert score(model_dir, src, locked / "o.jsonl") == 2
        assert "no permission to write" in one_error_line(capsys.readouterr().err)
    finally:
        locked.chmod(0o700)


def test_full_disk_exits_two_with_a_clear_message(model_dir, tmp_path, capsys):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    src = write(tmp_path / "in.jsonl", [good(0).decode(), good(1).decode()])
    (tmp_path / "link.jsonl").symlink_to("/dev/full")
    for out in ("/dev/full", tmp_path / "link.jsonl"):
        assert score(model_dir, src, out) == 2
        assert "the disk is full (no space left on device)" in one_error_line(capsys.readouterr().err)
    assert os.path.islink(tmp_path / "link.jsonl")  # a device is written in place, never replaced


def test_full_disk_at_the_end_keeps_the_previous_output(model_dir, tmp_path, capsys, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    out = tmp_path / "out.jsonl"
    out.write_text("PREVIOUS RESULT\n")
    assert score(model_dir, write(tmp_path / "in.jsonl", [good(0).decode()]), out) == 2
    assert "the disk is full" in one_error_line(capsys.readouterr().err)
    assert out.read_text() == "PREVIOUS RESULT\n" and leftovers(tmp_path) == []


def test_success_replaces_the_output_and_keeps_its_mode(model_dir, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("PREVIOUS RESULT\n")
    out.chmod(0o640)
    assert score(model_dir, write(tmp_path / "in.jsonl", [good(0).decode()]), out) == 0
    assert read_out(out)[0]["id"] == "r0" and (out.stat().st_mode & 0o777) == 0o640 and leftovers(tmp_path) == []


def test_interrupt_keeps_the_previous_output_and_the_rows_so_far(model_dir, tmp_path, capsys, monkeypatch):
    real, calls = red_core.token_rewards_batch, []

    def interrupted_second_time(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(red_core, "token_rewards_batch", interrupted_second_time)
    out = tmp_path / "out.jsonl"
    out.write_text("PREVIOUS RESULT\n")
    src = write(tmp_path / "in.jsonl", [good(i).decode() for i in range(6)])
    assert score(model_dir, src, out) == 130
    assert out.read_text() == "PREVIOUS RESULT\n"
    assert [r["id"] for r in read_out(tmp_path / "out.jsonl.partial")] == ["r0", "r1"]  # the first batch
    assert "out.jsonl.partial" in capsys.readouterr().err
    assert leftovers(tmp_path) == ["out.jsonl.partial"]


def test_api_rejects_bad_batch_sizes(rm_llama):
    for bad in (0, -1, 1.5, True, "8"):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            red_core.token_rewards_batch(rm_llama, ["Q: "], ["ok"], batch_size=bad)
    with pytest.raises(ValueError, match="max_batch_tokens must be a positive int"):
        red_core.token_rewards_batch(rm_llama, ["Q: "], ["ok"], max_batch_tokens=0)
