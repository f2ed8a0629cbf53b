"""`python -m red_core scan`: every input format gives the same rows, pairs and chats, bad rows reported with their
numbers while the rest is scored, column detection, resume after a kill equals an uninterrupted run, the shards'
rewards equal `token_rewards` (and telescope), and the Ray engine equals the local one."""

import csv
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import red_core
from red_core import scan
from red_core.__main__ import main
from red_core.rows import UsageError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parents[1]
ROWS = [
    {"id": "r0", "prompt": "How was the film?", "response": " Not bad at all, truly great!"},
    {"id": "r1", "prompt": "Tell me about it", "response": " It was awful, a waste of time."},
    {"id": "r2", "prompt": "Hi", "response": " Lovely day."},
    {"id": "r3", "prompt": "Weather?", "response": " Grey and cold, with rain all afternoon and evening."},
    {"id": "r4", "prompt": "", "response": " Fine."},
]


def run_scan(model, data, out, *extra):
    return main(["scan", "--reward-model", model, "--data", str(data), "--out", str(out), "--batch-size", "2",
                 "--quiet", "--no-report", *extra])


def read_out(out) -> list[dict]:
    files = sorted(Path(out).glob("shard-*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def manifest(out) -> dict:
    return json.loads((Path(out) / "manifest.json").read_text())


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def without(rows, *keys):
    return [{k: v for k, v in r.items() if k not in keys} for r in rows]


def one_error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ----------------------------------------------------------------------------- formats


def test_jsonl_csv_parquet_and_saved_dataset_give_the_same_rows(model_dir, tmp_path, capsys):
    model = model_dir("llama")
    sources = {"jsonl": write_jsonl(tmp_path / "in.jsonl", ROWS), "csv": write_csv(tmp_path / "in.csv", ROWS)}
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "in.parquet", row_group_size=2)
    sources["parquet"] = tmp_path / "in.parquet"
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "saved"))
    sources["saved"] = tmp_path / "saved"
    outs = {}
    for kind, path in sources.items():
        assert run_scan(model, path, tmp_path / f"out-{kind}", "--shard-rows", "2") == 0, capsys.readouterr().err
        outs[kind] = read_out(tmp_path / f"out-{kind}")
    assert [r["line"] for r in outs["jsonl"]] == [1, 2, 3, 4, 5]
    assert [r["line"] for r in outs["csv"]] == [2, 3, 4, 5, 6]  # line 1 is the header
    assert [r["line"] for r in outs["parquet"]] == [None] * 5
    for kind in ("csv", "parquet", "saved"):
        assert without(outs[kind], "line") == without(outs["jsonl"], "line"), kind
    rows = outs["jsonl"]
    assert [r["row"] for r in rows] == [0, 1, 2, 3, 4] and [r["id"] for r in rows] == ["r0", "r1", "r2", "r3", "r4"]
    assert [r["response"] for r in rows] == [r["response"] for r in ROWS]
    assert all(r["error"] is None and r["side"] == "response" and r["pair_id"] is None for r in rows)
    m = manifest(tmp_path / "out-jsonl")
    assert m["complete"] and m["counts"] == {"rows": 5, "responses": 5, "errors": 0, "bad_rows": 0, "shards": 3}
    assert [(s["file"], s["rows"]) for s in m["shards"]] == [
        ("shard-00000.parquet", [0, 2]), ("shard-00001.parquet", [2, 4]), ("shard-00002.parquet", [4, 5])]
    assert pq.read_schema(tmp_path / "out-jsonl" / "shard-00000.parquet").names == list(scan.SCHEMA_FIELDS)


def test_saved_dataset_dict_needs_a_split_and_hub_ids_fail_clearly_offline(model_dir, tmp_path, capsys, monkeypatch):
    datasets = pytest.importorskip("datasets")
    model = model_dir("llama")
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:2]),
                               "test": datasets.Dataset.from_list(ROWS[2:])})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert run_scan(model, tmp_path / "dd", tmp_path / "out") == 2
    assert "has splits test, train; choose one with --split" in one_error_line(capsys.readouterr().err)
    assert run_scan(model, tmp_path / "dd", tmp_path / "out", "--split", "test") == 0
    assert [r["id"] for r in read_out(tmp_path / "out")] == ["r2", "r3", "r4"]
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert run_scan(model, "nobody/no-such-dataset", tmp_path / "hub") == 2
    err = one_error_line(capsys.readouterr().err)
    assert "nobody/no-such-dataset" in err and "not in the local cache" in err
    assert not (tmp_path / "hub").exists()  # nothing written before the input is known to be readable


# ----------------------------------------------------------------------------- row shapes


def test_preference_pairs_give_two_rows_sharing_a_pair_id(model_dir, tmp_path, capsys):
    model = model_dir("llama")
    rows = [{"prompt": "Rate it", "chosen": " Wonderful!", "rejected": " Dreadful."},
            {"prompt": "Again", "chosen": " Good.", "rejected": " Bad."},
            {"prompt": "Half", "chosen": " Present."}]
    assert run_scan(model, write_jsonl(tmp_path / "pairs.jsonl", rows), tmp_path / "out") == 1
    assert "1 of 6 response(s) could not be scored, from 1 input row(s): 2 (" in capsys.readouterr().err
    out = read_out(tmp_path / "out")
    assert [(r["row"], r["side"], r["pair_id"], r["id"]) for r in out] == [
        (0, "chosen", "0", "0"), (0, "rejected", "0", "0"), (1, "chosen", "1", "1"), (1, "rejected", "1", "1"),
        (2, "chosen", "2", "2"), (2, "rejected", "2", "2")]
    assert out[4]["error"] is None and "missing field 'rejected'" in out[5]["error"]
    rm = red_core.load_reward_model(model)
    for r in out[:5]:
        want = red_core.token_rewards(rm, r["prompt"], r["response"])
        assert r["response"] == rows[r["row"]][r["side"]]
        assert r["score"] == pytest.approx(want.score, abs=1e-5)


def test_chat_messages_score_the_last_assistant_turn(model_dir, tmp_path):
    model = model_dir("llama")
    rows = [
        {"messages": [{"role": "user", "content": "Hello?"}, {"role": "assistant", "content": " Hi there."}]},
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Q1"},
                      {"role": "assistant", "content": " A1"}, {"role": "user", "content": "Q2"},
                      {"role": "assistant", "content": [{"type": "text", "text": " A2, "}, {"type": "text", "text": "ok"}]},
                      {"role": "user", "content": "ignored"}]},
        {"messages": [{"role": "user", "content": "no answer"}]},
    ]
    assert run_scan(model, write_jsonl(tmp_path / "chat.jsonl", rows), tmp_path / "out") == 1
    out = read_out(tmp_path / "out")
    assert (out[0]["prompt"], out[0]["response"]) == ("Hello?", " Hi there.")  # one user turn: its text
    assert out[1]["prompt"] == "system: Be kind.\nuser: Q1\nassistant:  A1\nuser: Q2\n"
    assert out[1]["response"] == " A2, ok"
    assert out[2]["score"] is None and "no assistant turn (roles: user)" in out[2]["error"]
    # ShareGPT turns, and preference pairs given as chats (no prompt column needed)
    share = [{"conversations": [{"from": "human", "value": "Hey"}, {"from": "gpt", "value": " Yo."}]}]
    assert run_scan(model, write_jsonl(tmp_path / "share.jsonl", share), tmp_path / "share") == 0
    assert [(r["prompt"], r["response"]) for r in read_out(tmp_path / "share")] == [("Hey", " Yo.")]
    chats = [{"chosen": [{"role": "user", "content": "P"}, {"role": "assistant", "content": " yes"}],
              "rejected": [{"role": "user", "content": "P"}, {"role": "assistant", "content": " no"}]}]
    assert run_scan(model, write_jsonl(tmp_path / "cp.jsonl", chats), tmp_path / "cp") == 0
    assert [(r["side"], r["prompt"], r["response"]) for r in read_out(tmp_path / "cp")] == [
        ("chosen", "P", " yes"), ("rejected", "P", " no")]


# ----------------------------------------------------------------------------- bad rows and columns


def test_bad_rows_are_reported_with_their_numbers_and_the_rest_is_scored(model_dir, tmp_path, capsys):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"\n".join([
        json.dumps(ROWS[0]).encode(),
        b'{"prompt": "x", "response": ',  # not JSON
        json.dumps({"prompt": "x"}).encode(),  # no response
        b'{"prompt": "x", "response": "cut \\ud800 emoji"}',  # lone surrogate
        b"",
        json.dumps({"prompt": "x", "response": 3}).encode(),
        json.dumps(ROWS[1]).encode(),
    ]) + b"\n")
    assert run_scan(model_dir("llama"), src, tmp_path / "out", "--shard-rows", "4") == 1
    err = capsys.readouterr().err
    assert "4 of 6 response(s) could not be scored, from 4 input row(s): 1, 2, 3, 4 (0-based" in err
    out = read_out(tmp_path / "out")
    assert [(r["row"], r["line"]) for r in out] == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 6), (5, 7)]
    errors = {r["row"]: r["error"] for r in out if r["error"]}
    assert "not valid JSON" in errors[1] and "missing field 'response'" in errors[2]
    assert "lone surrogate U+D800" in errors[3] and "field 'response' is a number" in errors[4]
    assert all(r["score"] is None and r["rewards"] == [] and r["tokens"] == [] for r in out if r["error"])
    assert [r["id"] for r in out if not r["error"]] == ["r0", "r1"]
    assert manifest(tmp_path / "out")["counts"]["errors"] == 4
    csv_src = tmp_path / "bad.csv"
    csv_src.write_text('prompt,response\nQ," fine"\nQ, a, b\n', encoding="utf-8")
    assert run_scan(model_dir("llama"), csv_src, tmp_path / "out-csv") == 1
    out = read_out(tmp_path / "out-csv")
    assert out[0]["error"] is None and "has 3 field(s) but the header has 2" in out[1]["error"]
    assert out[1]["line"] == 3


def test_column_detection_and_ambiguous_mappings():
    def detect(columns, row=None, **flags):
        return scan.detect_columns(columns, {role: flags.get(role) for role in scan.COLUMN_NAMES}, row, "'d'")

    assert detect(["question", "answer", "ID"]) == {
        "shape": "response", "prompt": "question", "response": "answer", "chosen": None, "rejected": None,
        "messages": None, "id": "ID"}
    assert detect(["prompt", "chosen", "rejected"])["shape"] == "pairs"
    assert detect(["conversations", "source"])["messages"] == "conversations"
    assert detect(["instruction", "input", "output"], prompt="instruction")["prompt"] == "instruction"
    with pytest.raises(UsageError) as e:
        detect(["instruction", "input", "output"])
    assert "several columns could be the prompt (instruction, input); choose one with --prompt-col" in str(e.value)
    assert "Columns found: instruction, input, output" in str(e.value) and "--response-col" in str(e.value)
    with pytest.raises(UsageError, match=r"fit several row shapes \(response, pairs\)"):
        detect(["prompt", "response", "chosen", "rejected"])
    with pytest.raises(UsageError, match="no known column names.*Columns found: a, b"):
        detect(["a", "b"])
    with pytest.raises(UsageError, match="--response-col 'text' is not a column"):
        detect(["prompt", "answer"], response="text")
    with pytest.raises(UsageError, match="'chosen' holds text, so a prompt column is needed"):
        detect(["chosen", "rejected"], row={"chosen": "a", "rejected": "b"})
    with pytest.raises(UsageError, match="--prompt-col does not apply to messages rows"):
        detect(["messages", "q"], prompt="q")
    assert detect(["q", "a"], prompt="q", response="a")["shape"] == "response"


def test_ambiguous_columns_on_the_command_line(model_dir, tmp_path, capsys):
    src = write_csv(tmp_path / "alpaca.csv", [{"instruction": "Say hi", "input": "", "output": " Hi."}])
    assert run_scan(model_dir("llama"), src, tmp_path / "out") == 2
    err = one_error_line(capsys.readouterr().err)
    assert "Columns found: instruction, input, output" in err and "--prompt-col" in err
    assert not (tmp_path / "out").exists()
    assert run_scan(model_dir("llama"), src, tmp_path / "out", "--prompt-col", "instruction") == 0
    assert read_out(tmp_path / "out")[0]["prompt"] == "Say hi"


# ----------------------------------------------------------------------------- numbers


def test_shard_rewards_equal_token_rewards_and_telescope(model_dir, tmp_path):
    model = model_dir("qwen2", chat=True)  # a chat template: special tokens after the response carry rewards too
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    assert run_scan(model, src, tmp_path / "tok", "--shard-rows", "3") == 0
    assert run_scan(model, src, tmp_path / "word", "--granularity", "word") == 0
    rm = red_core.load_reward_model(model)
    for granularity in ("token", "word"):
        out = read_out(tmp_path / ("tok" if granularity == "token" else "word"))
        for r, src_row in zip(out, ROWS):
            want = red_core.token_rewards(rm, src_row["prompt"], src_row["response"], granularity=granularity)
            assert r["granularity"] == granularity and r["method"] == "red"
            assert r["tokens"] == want.texts and r["special"] == want.special
            assert list(zip(r["starts"], r["ends"])) == want.offsets
            # batched (padded, length-sorted) vs one row: float32 noise, as in test_core's batch-invariance tests
            np.testing.assert_allclose(r["rewards"], want.rewards, atol=1e-5)
            np.testing.assert_allclose(r["prefix_scores"], want.prefix_scores, atol=1e-5)
            assert r["score"] == pytest.approx(want.score, abs=1e-5)
            assert sum(r["rewards"]) == pytest.approx(r["score"] - r["baseline"], abs=1e-6)  # telescoping
    assert any(any(r["special"]) for r in out)


# ----------------------------------------------------------------------------- resume


def scan_command(model, data, out, *extra):
    return [sys.executable, "-m", "red_core", "scan", "--reward-model", model, "--data", str(data), "--out", str(out),
            "--shard-rows", "2", "--batch-size", "2", "--no-report", "--quiet", *extra]


def finished_shards(out) -> list:
    """The shards the manifest lists (written after each shard file, atomically: never half a file)."""
    path = Path(out) / "manifest.json"
    return json.loads(path.read_text())["shards"] if path.exists() else []


def test_resume_after_a_kill_equals_an_uninterrupted_run(model_dir, tmp_path, capsys):
    model = model_dir("llama")
    rows = [{"prompt": f"Question {i}?", "response": f" Answer {i}: " + "good and bad, " * (i % 7)}
            for i in range(120)]
    rows[5] = {"prompt": "broken"}
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    killed = tmp_path / "killed"
    with open(tmp_path / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(scan_command(model, src, killed), cwd=ROOT, stderr=err)
    deadline = time.monotonic() + 120
    while not finished_shards(killed):  # wait for a finished shard, then kill mid-run
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        assert time.monotonic() < deadline, "no shard written in 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = manifest(killed)
    assert not before["complete"] and 1 <= len(before["shards"]) < 60
    assert run_scan(model, src, killed, "--shard-rows", "2") == 1  # resumes (one bad row: exit 1)
    assert "Traceback" not in capsys.readouterr().err
    assert run_scan(model, src, tmp_path / "whole", "--shard-rows", "2") == 1
    after, whole = manifest(killed), manifest(tmp_path / "whole")
    assert after["shards"][:len(before["shards"])] == before["shards"]  # the finished shards were kept
    assert after["complete"] and after["shards"] == whole["shards"] and after["counts"] == whole["counts"]
    names = sorted(p.name for p in killed.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "whole").iterdir())  # no temporary files left
    for name in names:
        if name.endswith(".parquet"):
            assert pq.read_table(killed / name).equals(pq.read_table(tmp_path / "whole" / name)), name
    # a finished scan run again does nothing; other settings or another input are refused
    assert run_scan(model, src, killed, "--shard-rows", "2") == 1
    assert run_scan(model, src, killed, "--shard-rows", "2", "--method", "sparse") == 2
    err = one_error_line(capsys.readouterr().err)
    assert "settings.method: 'red' there, 'sparse' now" in err and "--overwrite" in err
    with open(src, "a") as f:
        f.write(json.dumps(rows[0]) + "\n")
    assert run_scan(model, src, killed, "--shard-rows", "2") == 2
    assert "input.bytes" in one_error_line(capsys.readouterr().err)
    assert run_scan(model, src, killed, "--shard-rows", "2", "--overwrite", "--limit", "3") == 0
    assert manifest(killed)["counts"]["rows"] == 3 and len(list(killed.glob("shard-*.parquet"))) == 2


def test_report_is_written_from_the_shards(model_dir, tmp_path):
    pytest.importorskip("red_core.corpus")
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    assert main(["scan", "--reward-model", model_dir("llama"), "--data", str(src), "--out", str(tmp_path / "out"),
                 "--quiet", "--report-min-count", "1"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (tmp_path / "out" / "report.html").exists() and report


# ----------------------------------------------------------------------------- Ray


def test_ray_engine_without_ray_says_what_to_install(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    src = write_jsonl(tmp_path / "in.jsonl", ROWS)
    assert run_scan(model_dir("llama"), src, tmp_path / "out", "--engine", "ray") == 2
    assert "pip install 'ray[data]'" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_ray_engine_equals_the_local_engine(model_dir, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'ray[data]'")
    pytest.importorskip("ray.data")
    model = model_dir("llama")
    rows = [*ROWS, {"prompt": "broken"}, *({"prompt": f"P{i}", "response": f" R {i} " * i} for i in range(8))]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    assert run_scan(model, src, tmp_path / "local", "--shard-rows", "3") == 1
    ray_tmp = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 characters
    monkeypatch.setenv("RAY_TMPDIR", ray_tmp)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # the scan starts a local Ray and stops it at the end
    # token authentication on, with a token of this test's own: Ray neither reads nor writes ~/.ray/auth_token
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)  # unset: ray.init turns token mode on (and sets it)
    monkeypatch.setenv("RAY_AUTH_TOKEN", secrets.token_hex(32))
    try:
        assert run_scan(model, src, tmp_path / "ray", "--shard-rows", "3", "--engine", "ray", "--ray-actors", "2") == 1
        assert not ray.is_initialized()
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    local, remote = read_out(tmp_path / "local"), read_out(tmp_path / "ray")
    assert without(remote, "rewards", "prefix_scores", "score", "baseline") == \
        without(local, "rewards", "prefix_scores", "score", "baseline")
    for a, b in zip(local, remote):
        np.testing.assert_allclose(b["rewards"], a["rewards"], atol=1e-6)
        np.testing.assert_allclose(b["prefix_scores"], a["prefix_scores"], atol=1e-6)
        assert (a["score"] is None) == (b["score"] is None)
        if a["score"] is not None:
            assert b["score"] == pytest.approx(a["score"], abs=1e-6)
    assert [s["rows"] for s in manifest(tmp_path / "ray")["shards"]] == [[0, 3], [3, 6], [6, 9], [9, 12], [12, 14]]
