"""`python -m red_core score`: streaming JSONL/CSV, per-row errors with line numbers, exit codes."""

import json
import subprocess
import sys

import pytest

from red_core.__main__ import main


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


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
    assert "3 row(s) failed" in capsys.readouterr().err

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


def test_module_entry_point_runs(model_dir, tmp_path):
    src = write(tmp_path / "in.jsonl", [json.dumps({"prompt": "Q: ", "response": "ok"})])
    proc = subprocess.run([sys.executable, "-m", "red_core", "score", "--reward-model", model_dir("llama"),
                           "--input", src], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    row = json.loads(proc.stdout.splitlines()[0])
    assert row["id"] == 1 and row["tokens"]
