"""The Dataset tab: a file of rows scored chunk by chunk, the corpus report, two models side by side, limits."""

import json

import gradio as gr
import pytest

from app import dataset_tab
from app.context import AppContext
from red_core import corpus, load_reward_model, token_rewards

WORDS = ["good", "bad", "basically", "great", "awful", "fine", "movie", "day"]


def quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    """24 preference rows with a repeated vocabulary, so words reach the minimum count."""
    path = tmp_path_factory.mktemp("data") / "pairs.jsonl"
    rows = []
    for i in range(24):
        a, b = WORDS[i % len(WORDS)], WORDS[(i * 3 + 1) % len(WORDS)]
        rows.append({"id": f"p{i}", "prompt": "Say something.\n", "chosen": f"A {a} movie, {a} day.",
                     "rejected": f"A {b} day."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def ctx(model_dir, pairs_file, tmp_path_factory):
    c = AppContext.create(model_dir("llama"), examples=[], files_dir=tmp_path_factory.mktemp("files"))
    c.extra["demo_data"] = pairs_file
    return c


def final(gen):
    outs = list(gen)
    assert all(isinstance(o[0], str) and o[0].startswith("⏳") for o in outs[:-1])  # progress first
    return outs, outs[-1]


def test_demo_data_report_matches_the_library(ctx, model_dir, pairs_file):
    outs, (status, words, report, plot_a, plot_b, deciles, margins, table, records) = final(
        dataset_tab.run(ctx, ctx.default_rm, "", dataset_tab.DEMO, None, 24, 2, progress=quiet))
    assert len(outs) >= 3 and status.startswith("✓ 48 responses")  # 24 rows x (chosen, rejected)
    assert len(records) == 48 and len(table) == 48 and plot_b is None
    assert {r["side"] for r in records} == {"chosen", "rejected"}
    # the same numbers as red_core alone: each record's rewards are token_rewards of its texts
    rm = load_reward_model(model_dir("llama"))
    r0 = records[0]
    tr = token_rewards(rm, r0["prompt"], r0["response"])
    assert r0["rewards"] == pytest.approx(list(tr.rewards), abs=1e-5) and r0["score"] == pytest.approx(tr.score, abs=1e-5)
    rep = corpus.build_report(records, unit="word", min_count=2, top=dataset_tab.TOP)
    top = rep["words"]["highest"][0]
    assert f"<code>{top['word']}</code>" in words and f"{top['mean']:+.4f}" in words
    assert rep["pairs"]["complete"] == 24 and f"{rep['pairs']['accuracy']:.3f}" in words
    assert "<script" not in report and "Words" in report
    assert plot_a is not None and deciles is not None and margins is not None


def test_two_models_side_by_side(ctx, model_dir):
    *_, (status, words, *_rest) = dataset_tab.run(ctx, ctx.default_rm, model_dir("gpt2", bos=False),
                                                  dataset_tab.DEMO, None, 8, 2, progress=quiet)
    assert "two models" in status and words.count("class='red-panel'") == 2
    assert "A: " in words and "B: " in words


def test_upload_limits_and_bad_files(ctx, tmp_path, monkeypatch):
    with pytest.raises(gr.Error, match="Upload a"):
        list(dataset_tab.run(ctx, ctx.default_rm, "", dataset_tab.UPLOAD, None, 10, 2, progress=quiet))
    bad = tmp_path / "rows.csv"
    bad.write_text("text,label\nhello,1\n")
    with pytest.raises(gr.Error, match="Could not read the file.*columns"):
        list(dataset_tab.run(ctx, ctx.default_rm, "", dataset_tab.UPLOAD, str(bad), 10, 2, progress=quiet))
    with pytest.raises(gr.Error, match="MAX_DATASET_ROWS"):
        list(dataset_tab.run(ctx, ctx.default_rm, "", dataset_tab.DEMO, None, 10_000, 2, progress=quiet))
    monkeypatch.setattr(ctx.limits, "MAX_DATASET_BYTES", 10)
    with pytest.raises(gr.Error, match="MAX_DATASET_BYTES"):
        list(dataset_tab.run(ctx, ctx.default_rm, "", dataset_tab.UPLOAD, str(bad), 10, 2, progress=quiet))


def test_clicking_a_row_opens_it_in_explore(ctx):
    *_, out = dataset_tab.run(ctx, ctx.default_rm, "", dataset_tab.DEMO, None, 4, 2, progress=quiet)
    records = out[-1]
    evt = gr.SelectData(None, {"index": [3, 1], "value": "x"})
    prompt, response, tabs = dataset_tab.open_in_explore(records, evt)
    assert (prompt, response) == (records[3]["prompt"], records[3]["response"])


def test_through_gradio_client(ctx, pairs_file, serve_app):
    from gradio_client import Client, handle_file

    with gr.Blocks() as demo:
        ctx.rm_state = gr.State(ctx.default_rm)
        dataset_tab.build(ctx)
    demo.queue()
    with serve_app(demo) as url:
        client = Client(url, verbose=False)
        status, words, report, *_, table = client.predict(
            "", dataset_tab.UPLOAD, handle_file(str(pairs_file)), 6, 2, api_name="/dataset")
    assert status.startswith("✓ 12 responses") and len(table["data"]) == 12 and "red-panel" in words


def test_status_counts_the_rows_read_not_the_limit(ctx):
    *_, out = dataset_tab.run(ctx, ctx.default_rm, "", dataset_tab.DEMO, None, 500, 2, progress=quiet)
    assert out[0].startswith("✓ 48 responses from 24 rows")  # the demo file has 24 rows, the limit is 500
