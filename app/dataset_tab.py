"""The "Dataset" tab: what a reward model rewards across many texts, not one.

    build(ctx, explore=(prompt_box, response_box), tabs=tabs)   inside the app's Blocks and gr.Tab("Dataset")

Pick the bundled demo data (assets/data/demo-pairs.jsonl: prompt/chosen/rejected pairs, some with a planted
word) or upload a JSONL, CSV or Parquet file; the session's reward model (and optionally a second one) scores
the rows chunk by chunk (red_core.scan.scan_file; progress, Stop between chunks), and red_core.corpus turns
the token rewards into a report: the words with the highest and lowest mean credit, credit by position, score
against length, and for pairs the accuracy, margins and the words that separate chosen from rejected. Two
models side by side show their top words next to each other. Clicking an example row opens it in Explore.

Limits (app/limits.py): MAX_DATASET_ROWS rows and MAX_DATASET_BYTES per file, smaller in public mode.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from app import render
from app.context import AppContext, RMChoice
from app.errors import handler, user_error
from red_core import corpus, scan
from red_core.models import REPO_ROOT
from red_core.rows import UsageError

INTRO = ("What does this reward model reward across many texts? Score the bundled demo pairs (prompt, chosen, "
         "rejected; some contain a planted word) or your own JSONL, CSV or Parquet file, and see the words with the "
         "highest and lowest mean credit, credit by position, and for pairs the accuracy, the margins and the words "
         "that separate chosen from rejected. Pick a second reward model to see both side by side; click a row to "
         "open it in Explore.")
DEMO = "demo pairs (assets/data/demo-pairs.jsonl)"
UPLOAD = "my file (upload)"
CHUNK_ROWS = 16  # input rows scored between two progress updates (and between two Stop checks)
MIN_COUNT = 3  # occurrences a word needs to enter the tables (small data)
TOP = 15  # words per table


def row_limit(ctx: AppContext) -> int:
    return ctx.limits.PUBLIC_MAX_DATASET_ROWS if ctx.hosting.public else ctx.limits.MAX_DATASET_ROWS


def byte_limit(ctx: AppContext) -> int:
    return ctx.limits.PUBLIC_MAX_DATASET_BYTES if ctx.hosting.public else ctx.limits.MAX_DATASET_BYTES


def data_path(ctx: AppContext, source: str, upload) -> str:
    """The file to read: the bundled demo, or the visitor's upload within the size limit."""
    if source == DEMO:
        demo = ctx.extra.get("demo_data", REPO_ROOT / "assets" / "data" / "demo-pairs.jsonl")
        if not Path(demo).is_file():
            raise user_error("The demo data is missing from this installation; upload a file instead.")
        return str(demo)
    if not upload:
        raise user_error("Upload a .jsonl, .csv or .parquet file (prompt + response, prompt + chosen + rejected, or a "
                         "messages column), or pick the demo data.")
    path = upload if isinstance(upload, str) else getattr(upload, "name", str(upload))
    size = Path(path).stat().st_size
    if size > byte_limit(ctx):
        raise user_error(f"The file is {size:,} bytes; the limit here is {byte_limit(ctx):,} (MAX_DATASET_BYTES). "
                         f"Upload the first rows only.")
    return path


def score_rows(ctx: AppContext, choice: RMChoice, path: str, limit: int, label: str, progress):
    """Generator: status lines while the rows are scored, then the output rows (schema of red_core.scan)."""
    opts = {"method": "red", "batch_size": 8, "granularity": "token", "beta_c": 1.0, "prompt_baseline": True}
    entry = ctx.reward_models.get_entry(choice)
    rm, lock = entry
    records: list[dict] = []
    try:
        chunks = scan.scan_file(rm, path, opts, limit=limit, chunk_rows=CHUNK_ROWS)
        while True:
            with lock:  # one chunk at a time: other visitors' requests get the model in between
                step = next(chunks, None)
            if step is None:
                break
            done, todo, rows = step
            records.extend(rows)
            progress(done / max(todo, 1), desc=f"{label}: {done} of {todo} rows")
            yield f"⏳ {label}: {done} of {todo} rows scored"
    except UsageError as err:
        raise user_error(f"Could not read the file: {err}") from err
    yield records


def top_words_html(reports: dict[str, dict]) -> str:
    """The models' highest- and lowest-credit words side by side (one column per model)."""
    cells = []
    for name, rep in reports.items():
        w = rep["words"]
        rows = "".join(f"<tr><td class='t'><code>{html.escape(d['word'])}</code></td><td class='num'>{d['mean']:+.4f}</td>"
                       f"<td class='num'>{d['count']}</td></tr>" for d in w["highest"][:TOP])
        shown = {d["word"] for d in w["highest"][:TOP]}  # a small vocabulary puts every word in both lists
        low = "".join(f"<tr><td class='t'><code>{html.escape(d['word'])}</code></td><td class='num'>{d['mean']:+.4f}</td>"
                      f"<td class='num'>{d['count']}</td></tr>" for d in w["lowest"][:TOP] if d["word"] not in shown)
        low = low or "<tr><td colspan='3'>(every word is in the table above)</td></tr>"
        pairs = rep["pairs"]
        acc = "" if pairs["accuracy"] is None else f" · pair accuracy {pairs['accuracy']:.3f} of {pairs['complete']}"
        cells.append(f"<div class='red-panel'><h4>{html.escape(name)}</h4><div class='desc'>{rep['totals']['scored']} "
                     f"responses scored{acc}</div><b>Highest mean credit</b><table class='red-numbers'><tr><th>word</th>"
                     f"<th>mean</th><th>n</th></tr>{rows}</table><b>Lowest mean credit</b><table class='red-numbers'>"
                     f"<tr><th>word</th><th>mean</th><th>n</th></tr>{low}</table></div>")
    return f"{render.STYLE}<div class='red-grid'>{''.join(cells)}</div>"


def examples_table(records: list[dict]):
    import pandas as pd

    rows = [{"id": r["id"], "side": r["side"], "score": None if r["score"] is None else round(r["score"], 4),
             "prompt": r["prompt"], "response": r["response"], "error": r["error"] or ""} for r in records]
    return pd.DataFrame(rows, columns=["id", "side", "score", "prompt", "response", "error"])


def run(ctx: AppContext, choice, other: str | None, source: str, upload, limit, min_count,
        progress=gr.Progress()):
    """Generator handler: status while scoring; then (status, top words, report, words A, words B, deciles,
    margins, examples, rows for the session)."""
    choice = choice if isinstance(choice, RMChoice) else RMChoice(*choice) if choice else ctx.default_rm
    limit = int(limit)
    if not 1 <= limit <= row_limit(ctx):
        raise user_error(f"Rows must be 1..{row_limit(ctx)} (MAX_DATASET_ROWS).")
    path = data_path(ctx, source, upload)
    skip = (gr.skip(),) * 8
    models = {f"A: {choice.name}": choice}
    if other and other.strip() and other.strip() != choice.name:
        models[f"B: {other.strip()}"] = RMChoice(other.strip())
    reports, first_records = {}, None
    for label, ch in models.items():
        records = None
        for out in score_rows(ctx, ch, path, limit, label, progress):
            if isinstance(out, str):
                yield (out,) + skip
            else:
                records = out
        reports[label] = corpus.build_report(records, unit="word", min_count=int(min_count), top=TOP)
        first_records = first_records if first_records is not None else records
    body, figs = corpus.report_parts(next(iter(reports.values())))
    second = list(reports.values())[1] if len(reports) > 1 else None
    figs_b = corpus.report_parts(second)[1] if second is not None else {}
    t = next(iter(reports.values()))["totals"]
    read = len({r["row"] for r in first_records or []})  # input rows read (a pair row gives two responses)
    status = (f"✓ {t['rows']} responses from {read} rows · {t['scored']} scored · "
              f"{t['errors']} with errors" + (" · two models" if second is not None else ""))
    # corpus escapes every label it puts in a figure (plotly reads <b> in labels as markup)
    yield (status, top_words_html(reports), body, figs.get("words"), figs_b.get("words"), figs.get("deciles"),
           figs.get("margins"), examples_table(first_records), first_records)


def open_in_explore(records: list[dict] | None, evt: gr.SelectData):
    """A click on an example row: its prompt and response go to Explore, and Explore opens."""
    if not records or evt.index is None:
        raise user_error("Run the dataset first, then click a row.")
    i = evt.index[0] if isinstance(evt.index, (list, tuple)) else int(evt.index)
    r = records[int(i)]
    return r["prompt"], r["response"], gr.Tabs(selected="explore")


def build(ctx: AppContext, explore=None, tabs=None) -> None:
    """The tab's components and events; `explore` = (prompt, response) boxes of Explore, `tabs` = the gr.Tabs."""
    gr.Markdown(INTRO)
    with gr.Row():
        source = gr.Radio([DEMO, UPLOAD], value=DEMO, label="Data", elem_id="ds-source")
        upload = gr.File(label="JSONL, CSV or Parquet", file_types=[".jsonl", ".csv", ".parquet"], elem_id="ds-upload")
    with gr.Row():
        limit = gr.Slider(1, row_limit(ctx), value=min(100, row_limit(ctx)), step=1, label="Rows (first N)",
                          elem_id="ds-limit")
        min_count = gr.Slider(1, 20, value=MIN_COUNT, step=1, label="Min. occurrences of a word", elem_id="ds-min")
        other = gr.Dropdown(choices=[("none", "")] + ctx.rm_choices, value="", allow_custom_value=True,
                            label="Second reward model (optional)", elem_id="ds-model-b")
    with gr.Row():
        go = gr.Button("Score the dataset", variant="primary", elem_id="ds-run")
        stop = gr.Button("Stop", variant="stop", elem_id="ds-stop")
    status = gr.Markdown(label="status", elem_id="ds-status")
    words = gr.HTML(label="top words per model", elem_id="ds-words")
    with gr.Row():
        plot_a = gr.Plot(label="Word credit, model A", elem_id="ds-plot-a")
        plot_b = gr.Plot(label="Word credit, model B", elem_id="ds-plot-b")
    with gr.Row():
        deciles = gr.Plot(label="Credit by position (model A)", elem_id="ds-deciles")
        margins = gr.Plot(label="Pair margins (model A)", elem_id="ds-margins")
    examples = gr.Dataframe(label="Rows (click one to open it in Explore)", interactive=False, wrap=True,
                            max_height=300, elem_id="ds-examples")
    with gr.Accordion("The full report (model A): tables of words, tokens, positions, length, pairs", open=False):
        report = gr.HTML(label="report", elem_id="ds-report")
    records = gr.State(None, time_to_live=ctx.limits.SESSION_TTL_SECONDS)
    ev = go.click(handler(run, ctx, on_gpu=True), [ctx.rm_state, other, source, upload, limit, min_count],
                  [status, words, report, plot_a, plot_b, deciles, margins, examples, records], api_name="dataset",
                  concurrency_limit=1, concurrency_id="dataset",
                  api_description="Score a dataset (the demo pairs or an uploaded file) with the session's reward "
                                  "model (and optionally a second one) and report what it rewards across the corpus.")
    stop.click(lambda: "Stopped.", None, [status], cancels=[ev], api_visibility="private")
    if explore is not None and tabs is not None:
        examples.select(open_in_explore, records, [explore[0], explore[1], tabs], api_visibility="private")
