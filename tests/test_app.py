"""The Gradio app: handlers called directly, then the launched Blocks app through gradio_client.

Tiny random reward models are built in the test session (conftest `model_dir`), so nothing here
depends on assets/ existing. The browser test is in test_browser.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

gr = pytest.importorskip("gradio")
import torch  # noqa: E402

import red_core  # noqa: E402
from app import context, handlers, limits, render  # noqa: E402
from app.context import AppContext, RMChoice  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "Tell me about your day.\n"
RESPONSE = "It was a wonderful day.\nI am  very happy!"
XSS = 'Hi <script>window.__xss=1</script><img src=x onerror="window.__xss=2"> <b>bold</b> & done'


def quiet(*args, **kwargs):  # stands in for gr.Progress outside an event
    pass


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The app runs one torch thread per event on 2 cores (see app.__main__.default_threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def chat_rm(model_dir):
    return model_dir("qwen2", chat=True)  # has end-of-turn special tokens after the response


@pytest.fixture(scope="module")
def ctx(chat_rm, tmp_path_factory):
    examples = [{"name": "a", "prompt": "Q?\n", "response": "Good."}, {"name": "b", "prompt": "Q?\n", "response": "Bad."}]
    return AppContext.create(chat_rm, examples=examples, files_dir=tmp_path_factory.mktemp("downloads"))


def explore(ctx, prompt=PROMPT, response=RESPONSE, **kw):
    """(heatmap, figure, numbers, table, exact, result): the Explore handler without the session's shared scale."""
    return handlers.explore(ctx, ctx.default_rm, prompt, response, progress=quiet, **kw)[:6]


def raw_tags(html: str) -> list[str]:
    """Tags a browser would build from the HTML, other than the ones our renderers write."""
    import re

    ours = {"style", "div", "span", "table", "tr", "td", "th", "b", "code", "h4", "h3", "h2", "html", "head", "meta",
            "title", "body", "details", "summary", "ul", "li", "br", "sub",
            "svg", "rect", "line", "text", "polyline", "circle"}  # the standalone page's plot (red_core.viz)
    return [t for t in re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html) if t.lower() not in ours]


# ----------------------------------------------------------------------------- Explore


def test_explore_outputs_agree_with_red_core(ctx, chat_rm):
    before = set(ctx.files_dir.rglob("*")) if ctx.files_dir.exists() else set()
    heat, fig, numbers, table, exact, tr = explore(ctx)
    after = set(ctx.files_dir.rglob("*")) if ctx.files_dir.exists() else set()
    assert after == before, "scoring writes nothing to disk; downloads are written only when asked for"
    ref = red_core.token_rewards(red_core.load_reward_model(chat_rm), PROMPT, RESPONSE)
    assert len(tr) == len(ref) and np.allclose(tr.rewards, ref.rewards, atol=1e-5)
    assert any(tr.special), "the chat RM scores end-of-turn tokens after the response"
    assert heat.count('<span class="tok') == len(tr)
    assert "R(x, y)" in numbers and "R(x, ∅)" in numbers and "✓ sums match" in numbers
    assert tr.check()["ok"] and f"{tr.score:+.4f}" in numbers and f"{tr.baseline:+.4f}" in numbers
    assert len(table) == len(tr) and list(table["reward"]) == pytest.approx(tr.rewards, abs=1e-4)
    # plotly: integer positions with token tick labels, bars + prefix-score line
    assert list(fig.data[0].x) == list(range(len(tr))) and fig.data[1].name.startswith("prefix score")
    # the exact numbers: full precision, the same as the library's own export
    assert exact["score"] == tr.score and exact["baseline"] == tr.baseline and exact["check"]["ok"] is True
    assert [t["reward"] for t in exact["tokens"]] == list(tr.rewards)
    assert [t["prefix_score"] for t in exact["tokens"]] == list(tr.prefix_scores)
    assert [(t["start"], t["end"]) for t in exact["tokens"]] == [tuple(o) for o in tr.offsets]
    assert str(ROOT) not in json.dumps(exact), "no server path in what a visitor receives"
    csv, js, page, png = map(Path, handlers.downloads(ctx, tr))
    import pandas as pd

    assert list(pd.read_csv(csv, keep_default_na=False)["text"]) == tr.texts
    assert red_core.TokenRewards.from_json(str(js)).rewards == pytest.approx(tr.rewards)
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "http" not in html and "<script" not in html
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_explore_options(ctx):
    *_, word = explore(ctx, granularity="word")
    words = len(RESPONSE.split())
    assert word.granularity == "word" and sum(not s for s in word.special) == words
    heat, _, numbers, _, _, tr = explore(ctx, show_special=False)
    assert heat.count('<span class="tok') == sum(not s for s in tr.special)
    assert "hidden special token" in numbers
    *_, nobase = explore(ctx, prompt_baseline=False)
    assert nobase.total == pytest.approx(nobase.score, abs=1e-5)
    *_, mixed = explore(ctx, beta_c=0.0)
    assert mixed.rewards[:-1] == pytest.approx(0.0) and mixed.rewards[-1] == pytest.approx(mixed.score)
    for m in red_core.list_methods():
        *_, tr = explore(ctx, method=m)
        # ig, gxi, occlusion are attributions: no telescoping check (ok is None, with a note that says why)
        c = tr.check()
        assert tr.method == m and (c["ok"] is True if not red_core.methods.needs_model(m) else
                                   c["ok"] is None and c["note"])
    *_, empty_prompt = explore(ctx, prompt="")
    assert empty_prompt.check()["ok"]


@pytest.mark.parametrize("prompt, response, message", [
    (PROMPT, "", "response is empty"),
    (PROMPT, " \n\t ", "response is empty"),
    ("   ", RESPONSE, "prompt is only whitespace"),
    ("x" * (limits.MAX_PROMPT_CHARS + 1), RESPONSE, "MAX_PROMPT_CHARS"),
    (PROMPT, "y" * (limits.MAX_RESPONSE_CHARS + 1), "MAX_RESPONSE_CHARS"),
])
def test_bad_text_gets_a_message(ctx, prompt, response, message):
    with pytest.raises(gr.Error, match=message):
        explore(ctx, prompt, response)


def test_token_limit_and_bad_options(ctx, monkeypatch):
    monkeypatch.setattr(limits, "MAX_TOKENS", 5)
    with pytest.raises(gr.Error, match="MAX_TOKENS"):
        explore(ctx)
    monkeypatch.undo()
    with pytest.raises(gr.Error, match="Unknown method 'nope'; choose one of: red"):
        explore(ctx, method="nope")
    with pytest.raises(gr.Error, match="granularity"):
        explore(ctx, granularity="paragraph")
    with pytest.raises(gr.Error, match="between 0 and 1"):
        explore(ctx, beta_c=1.5)


def test_xss_renders_as_text(ctx):
    heat, fig, numbers, table, exact, tr = explore(ctx, response=XSS)
    outputs = {"heatmap": heat, "numbers": numbers, "step": handlers.step_view(tr, 3),
               "html file": Path(handlers.downloads(ctx, tr)[2]).read_text(encoding="utf-8")}
    html, _, faith = handlers.compare_methods(ctx, ctx.default_rm, PROMPT, XSS, progress=quiet)
    assert not any("<" in t.name for t in faith.data)  # legend names are escaped
    outputs["methods"] = html
    outputs["pair"] = handlers.compare_pair(ctx, ctx.default_rm, PROMPT, XSS, "fine", progress=quiet)
    for name, out in outputs.items():
        assert raw_tags(out) == [] and "<script" not in out and "<img" not in out, name
    assert "&lt;" in heat and "&amp;" in heat
    # plotly reads <b>, <br> in labels as markup: token labels reach it escaped
    assert not any("<" in str(t) for t in fig.layout.xaxis.ticktext)
    assert "".join(t for t, s in zip(tr.texts, tr.special) if not s) == XSS  # the text itself is kept exactly


# ----------------------------------------------------------------------------- step-through


def test_step_through_counts_from_one(ctx):
    """Everything a visitor reads counts units from 1: the slider (1 to n), "token k of n", the table's #."""
    *_, table, _, tr = explore(ctx)
    n = len(tr)
    slider, view = handlers.step_reset(tr, True)
    assert (slider.minimum, slider.maximum, slider.value) == (1, n, 1) and slider.label == f"token (1 to {n})"
    assert view.count(" active") == 1 and view.count(" future") == n - 1 and f"token 1 of {n}" in view
    k = 5  # the fifth token: index 4
    view = handlers.step_view(tr, k, True)
    assert view.count(" future") == n - k and f"token {k} of {n}" in view
    assert f"{tr.prefix_scores[k - 2]:+.4f} → <b>{tr.prefix_scores[k - 1]:+.4f}</b>" in view
    assert f"token {n} of {n}" in handlers.step_view(tr, n, True)
    assert handlers.step_move(tr, 1, True, -1) == 1 and handlers.step_move(tr, n, True, 1) == n
    n_shown = len(render.visible(tr, False))
    assert n_shown < n and handlers.step_move(tr, 99, False, 1) == n_shown
    assert handlers.step_reset(tr, False)[0].maximum == n_shown
    nxt, timer = handlers.step_tick(tr, n - 1, True)
    assert nxt == n and timer.active is False
    assert handlers.step_play(tr, n, True)[0] == 1  # play from the end restarts at the first unit
    # the plot marks the unit the step-through is on (bars are positions from 0: unit k is bar k - 1)
    widths = list(handlers.step_plot(tr, k, True).data[0].marker.line.width)
    assert widths[k - 1] == max(widths) and widths.count(max(widths)) == 1
    assert list(table["#"]) == list(range(1, n + 1))
    assert "Score a response first" in handlers.step_view(None, 1)


# ----------------------------------------------------------------------------- colour scale, tap details, exports


def backgrounds(html: str) -> list[str]:
    import re

    return re.findall(r'class="tok[^"]*"[^>]*style="background:(rgb\([^)]*\))', html)


def test_colour_scale_modes_and_the_sessions_shared_scale(ctx):
    strong = "It was a wonderful day.\nI am  very happy!"
    out = handlers.explore(ctx, ctx.default_rm, PROMPT, strong, progress=quiet)
    heat, tr, shared = out[0], out[5], out[6]
    own = float(np.max(np.abs(tr.rewards)))
    assert shared == pytest.approx(own) and "colour scale: this text" in heat and f"{own:+.3g}" in heat
    # a weak text scored next in "session" mode is coloured on the strong text's scale, so it looks paler
    weak = "Fine."
    alone = handlers.explore(ctx, ctx.default_rm, PROMPT, weak, scale_mode="text", shared=shared, progress=quiet)
    together = handlers.explore(ctx, ctx.default_rm, PROMPT, weak, scale_mode="session", shared=shared,
                                progress=quiet)
    weak_max = float(np.max(np.abs(together[5].rewards)))
    assert weak_max < own and together[6] == pytest.approx(own), "the shared scale keeps the session's maximum"
    assert "colour scale: shared across this session" in together[0] and f"{own:+.3g}" in together[0]
    assert f"{weak_max:+.3g}" in alone[0] and backgrounds(alone[0]) != backgrounds(together[0])
    # fixed ±X: a huge X leaves every unit nearly white
    fixed = handlers.render_explore(tr, True, "fixed", 1000.0, shared)[0]
    assert "colour scale: fixed ±1000" in fixed
    assert all(min(map(int, c[4:-1].split(","))) > 240 for c in backgrounds(fixed))
    # reset: the shared scale starts again from the current result only
    reset = handlers.reset_shared(together[5], True, "session", 1.0)
    assert reset[0] == pytest.approx(weak_max) and f"{weak_max:+.3g}" in reset[1]
    for bad in (0, -1, float("nan"), None):
        with pytest.raises(gr.Error, match="fixed colour scale"):
            handlers.render_explore(tr, True, "fixed", bad, shared)
    with pytest.raises(gr.Error, match="colour scale"):
        handlers.render_explore(tr, True, "rainbow", 1.0, shared)


def test_live_controls_skip_quietly_without_a_response(ctx):
    out = handlers.explore_live(ctx, ctx.default_rm, PROMPT, "  ", "red", 0.5, progress=quiet)
    assert len(out) == 7 and all(isinstance(o, dict) and o.get("__type__") == "update" for o in out)
    heat, *_ = handlers.explore_live(ctx, ctx.default_rm, PROMPT, RESPONSE, "red", 0.5, progress=quiet)
    assert heat.count('<span class="tok') > 0


def test_tapped_token_details(ctx):
    *_, tr = explore(ctx, response=XSS)
    i = next(k for k in range(1, len(tr)) if "<" in tr.texts[k])
    box = handlers.token_details(tr, f"{i}:1700000000", True)
    assert f"token {i + 1} of {len(tr)}" in box and f"{float(tr.rewards[i]):+.4f}" in box
    assert f"{float(tr.prefix_scores[i - 1]):+.4f} → <b>{float(tr.prefix_scores[i]):+.4f}</b>" in box
    assert ", ".join(map(str, tr.token_ids[i])) in box
    assert raw_tags(box) == [] and "&lt;" in box  # the token's text is escaped
    first = handlers.token_details(tr, "0", True)
    assert f"{tr.baseline:+.4f} → <b>{float(tr.prefix_scores[0]):+.4f}</b>" in first  # before the first: R(x, ∅)
    hidden = next(k for k in range(len(tr)) if tr.special[k])
    assert "hidden special token" in handlers.token_details(tr, str(hidden), False)
    for bad in ("", None, "x", "-1", str(len(tr)), "1e9"):
        assert handlers.token_details(tr, bad, True) == ""
    assert handlers.token_details(None, "1", True) == ""


def test_downloads_carry_the_run_and_use_the_pages_colours(ctx):
    import pandas as pd

    *_, tr = explore(ctx, method="red", beta_c=0.5)
    before = set(ctx.files_dir.rglob("*"))
    csv, js, page, png = map(Path, handlers.downloads(ctx, tr, True, "fixed", 1000.0, 0.0))
    assert set(ctx.files_dir.rglob("*")) - before == {csv.parent, csv, js, page, png}, "one fresh folder, four files"
    c = tr.check()
    df = pd.read_csv(csv, keep_default_na=False)
    assert set(df["method"]) == {"red"} and set(df["prompt"]) == {PROMPT} and set(df["model"]) == {tr.model}
    assert json.loads(df["params"][0])["beta_c"] == 0.5
    assert df["score"][0] == pytest.approx(tr.score) and df["baseline"][0] == pytest.approx(tr.baseline)
    assert df["check_sum"][0] == pytest.approx(c["sum"]) and str(df["check_ok"][0]) == "True"
    data = json.loads(js.read_text(encoding="utf-8"))
    assert (data["prompt"], data["model"], data["method"], data["params"]["beta_c"]) == (PROMPT, tr.model, "red", 0.5)
    assert data["score"] == tr.score and data["baseline"] == tr.baseline and data["check"]["ok"] is True
    html = page.read_text(encoding="utf-8")
    assert all(s in html for s in (f"{tr.score:+.4f}", f"{tr.baseline:+.4f}", "beta_c", "<svg", "Tell me about"))
    assert backgrounds(html) and all(min(map(int, b[4:-1].split(","))) > 240 for b in backgrounds(html)), \
        "the page's fixed ±1000 scale: nearly white"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2_000


def test_method_lines_are_neither_red_nor_blue(ctx):
    """Red and blue mean lowered / raised reward: lines of methods and models use viz.METHOD_COLOURS."""
    from red_core import viz

    html, fig, faith = handlers.compare_methods(ctx, ctx.default_rm, PROMPT, RESPONSE, progress=quiet)
    _, models = handlers.compare_models(ctx, ctx.default_rm, ctx.default_rm.name, PROMPT, RESPONSE, progress=quiet)
    allowed = set(viz.METHOD_COLOURS.values()) | {"#888"}
    for figure in (fig, faith, models):
        colours = [t.line.color for t in figure.data]
        assert all(c in allowed for c in colours), colours
        assert len(set(colours)) == len(colours), "each line its own colour"
    assert [t.line.color for t in fig.data][:2] == [viz.METHOD_COLOURS["red"], viz.METHOD_COLOURS["abc"]]


# ----------------------------------------------------------------------------- links and lessons (app/presets.py)


def test_parse_query_checks_every_value():
    from app import presets

    good = {"prompt": "Hi <b>&</b>\n", "response": "Fine.", "method": "abc", "granularity": "word", "beta_c": "0.25",
            "beta": "1", "baseline": "0", "special": "true", "scale": "fixed", "scale_max": "2.5", "other": "x",
            "model": "someone/some-rm"}
    p = presets.parse_query(good)
    assert p["problems"] == [] and "other" not in p
    assert presets.preset_values(p) == ("Hi <b>&</b>\n", "Fine.", "abc", "word", 0.25, 1.0, False, True, "fixed", 2.5)
    assert p["model"] == "someone/some-rm"
    assert presets.preset_values({}) == tuple(presets.DEFAULTS.values())  # a preset always gives the same view
    bad = {"beta_c": "7", "beta": "nan", "method": "nope", "granularity": "paragraph", "baseline": "maybe",
           "scale": "rainbow", "scale_max": "0", "prompt": "x" * (limits.MAX_PROMPT_CHARS + 1),
           "response": "y" * (limits.MAX_RESPONSE_CHARS + 1), "model": "/etc"}
    p = presets.parse_query(bad)
    assert set(p) == {"problems"} and len(p["problems"]) == len(bad)
    text = " | ".join(p["problems"])
    for part in ("beta_c must be between 0 and 1, not 7", "'nope' is not one of: red", "paragraph",
                 "should be 1 or 0", "rainbow", "scale_max must be above 0", "MAX_PROMPT_CHARS", "MAX_RESPONSE_CHARS",
                 "not a folder"):
        assert part in text, part
    for folder in ("/etc", "./x", "~/models/rm", "../rm", "a/../../etc", "C:\\models", "assets/models/../../x"):
        assert presets.parse_query({"model": folder})["problems"], folder
    assert presets.parse_query({"beta": ["0.1", "0.2"]})["beta"] == 0.2  # repeated: the last one counts


def test_links_round_trip_and_respect_public_mode(ctx, chat_rm, tmp_path):
    from urllib.parse import parse_qsl, urlsplit

    from app import presets

    values = (XSS + "\n", "It was fine & good = ok?\n☀", "uniform", "sentence", 0.3, 0.7, False, False, "session", 1.0)
    query = handlers.share_link(ctx, ctx.default_rm, *values)
    assert query.startswith("?") and "model=" not in query  # the default model is not named
    parsed = presets.parse_query(dict(parse_qsl(urlsplit(query).query, keep_blank_values=True)), ctx.hosting)
    assert parsed["problems"] == [] and presets.preset_values(parsed) == values
    assert presets.query_string(presets.DEFAULTS | {"response": "r"}) == "?response=r"  # defaults left out
    with pytest.raises(gr.Error, match="response first"):
        handlers.share_link(ctx, ctx.default_rm, "p", " ", *values[2:])
    with pytest.warns(UserWarning, match="local folder"):  # a session on a folder: the link cannot name it
        assert "model=" not in handlers.share_link(ctx, RMChoice(chat_rm), *values)
    # opening a link fills the Explore inputs; one without known keys changes nothing
    out = handlers.open_link(ctx, ctx.default_rm, gr.Request(query_params={"response": "Fine.", "granularity": "word"}))
    assert out[3:] == presets.preset_values({"response": "Fine.", "granularity": "word"})
    assert all(isinstance(o, dict) and o.get("__type__") == "update" for o in out[:3])  # the model is kept
    nothing = handlers.open_link(ctx, ctx.default_rm, gr.Request(query_params={"utm_source": "x"}))
    assert all(isinstance(o, dict) and o.get("__type__") == "update" for o in nothing)
    # public mode: a link may name only the listed models; a server folder gets the one refusal, nothing is read
    public = AppContext.create(public=True, examples=[], files_dir=tmp_path / "public-downloads")
    refusal = str(public.hosting.refusal("reward"))
    for name in (chat_rm, "/etc", "someone/unlisted-model", str(Path(chat_rm) / "config.json")):
        assert presets.parse_query({"model": name}, public.hosting)["problems"] == [refusal], name
    listed = [o.id for o in public.hosting.offered("reward")]
    assert listed and presets.parse_query({"model": listed[0]}, public.hosting)["model"] == listed[0]
    loaded = set(public.reward_models.keys())
    with pytest.warns(UserWarning, match="left out"):
        out = handlers.open_link(public, public.default_rm, gr.Request(query_params={"model": chat_rm, "response": "Hi"}))
    assert out[0].get("__type__") == "update" and out[4] == "Hi"  # model kept, the rest applied
    assert set(public.reward_models.keys()) == loaded and not (tmp_path / "public-downloads").exists()


def test_lessons_fill_the_tab_they_name(ctx):
    from app import lessons, presets

    by_tab = {}
    for lesson in lessons.LESSONS:
        by_tab.setdefault(lesson.preset.get("tab", "explore"), lesson)
    assert {"explore", "pair", "models"} <= set(by_tab)
    skip = {"__type__": "update"}
    for tab, lesson in by_tab.items():
        out = handlers.apply_lesson(ctx, lesson.key, ctx.default_rm)
        notice, tabs, sub, choice, picker, status = out[:6]
        explore_values, pair, models = out[6:16], out[16:20], out[20:23]
        assert lesson.title in notice and raw_tags(notice) == []
        outer, inner = handlers.LESSON_TABS[tab]
        assert tabs.selected == outer and (sub.selected == inner if inner else sub == skip)
        if "model" in lesson.preset:
            assert choice == RMChoice(lesson.preset["model"]) and picker == lesson.preset["model"]
        assert explore_values == (presets.preset_values(lesson.preset) if tab == "explore" else (skip,) * 10)
        if tab == "pair":
            assert pair[:3] == tuple(lesson.preset[k] for k in ("prompt", "chosen", "rejected"))
        if tab == "models":
            assert models == tuple(lesson.preset[k] for k in ("prompt", "response", "model_b"))
        # only the lesson's own tab is scored
        ran = handlers.lesson_run(tab, lambda: "scored")(lesson.key)
        other = handlers.lesson_run("explore" if tab != "explore" else "pair", lambda: "scored", 2)(lesson.key)
        assert ran == "scored" and other == (skip, skip)
    with pytest.raises(gr.Error, match="Unknown lesson"):
        handlers.apply_lesson(ctx, "no-such-lesson", ctx.default_rm)


# ----------------------------------------------------------------------------- Compare


def test_compare_methods_share_one_scale(ctx):
    html, fig, faith = handlers.compare_methods(ctx, ctx.default_rm, PROMPT, RESPONSE, progress=quiet)
    results = {m: red_core.token_rewards(ctx.reward_models.get(ctx.default_rm), PROMPT, RESPONSE, m)
               for m in handlers.COMPARE_METHODS}
    scale = max(float(np.abs(tr.rewards).max()) for m, tr in results.items() if m not in handlers.OWN_SCALE)
    assert html.count('<div class="red-legend">') == 1 and f"{scale:+.3g}" in html
    assert [t.name for t in fig.data] == list(handlers.COMPARE_METHODS)
    assert all(f"<h4>{m.upper()}</h4>" in html for m in handlers.COMPARE_METHODS)
    # each method says what it cost here; IG reports its completeness gap; gxi is on its own scale
    assert html.count(" ms") >= len(handlers.COMPARE_METHODS) and "IG completeness gap" in html
    assert "its own colour scale (not reward units)" in html and "Cost:" in html
    # the Faithfulness view: one deletion curve per method plus random orders, each starting at 0 (nothing deleted)
    from red_core import faithfulness

    names = [t.name.split(" (AOPC")[0] for t in faith.data]
    assert names == [*handlers.COMPARE_METHODS, "random order"]
    assert all(t.y[0] == pytest.approx(0.0, abs=1e-6) and list(t.x) == list(range(len(t.x))) for t in faith.data)
    rm = ctx.reward_models.get(ctx.default_rm)
    red_curve = faithfulness.deletion_curve(rm, PROMPT, RESPONSE, results["red"], k_max=handlers.DELETION_K)
    assert list(faith.data[0].y) == pytest.approx(red_curve["drops"], abs=1e-5)


def test_compare_pair(ctx):
    chosen, rejected = "The music was great, but the food was bad.", "The food was bad, but the music was great."
    html = handlers.compare_pair(ctx, ctx.default_rm, PROMPT, chosen, rejected, progress=quiet)
    rm = ctx.reward_models.get(ctx.default_rm)
    a, b = (red_core.token_rewards(rm, PROMPT, t) for t in (chosen, rejected))
    assert f"{a.score:+.4f}" in html and f"{b.score:+.4f}" in html and f"{a.score - b.score:+.4f}" in html
    assert "red-align" in html and '<tr class="equal">' in html
    assert any(f'<tr class="{op}">' in html for op in ("replace", "insert", "delete"))
    rows = render.align_pairs(a.tokens, b.tokens)
    assert [i for _, i, _ in rows if i is not None] == list(range(len(a)))
    assert [j for _, _, j in rows if j is not None] == list(range(len(b)))
    with pytest.raises(gr.Error, match="rejected response is empty"):
        handlers.compare_pair(ctx, ctx.default_rm, PROMPT, chosen, " ", progress=quiet)


def test_compare_models_word_level_when_tokenizers_differ(ctx, model_dir):
    bert = model_dir("bert")
    html, fig = handlers.compare_models(ctx, ctx.default_rm, bert, PROMPT, RESPONSE, progress=quiet)
    assert "moved onto words" in html and len(fig.data[0].x) == len(RESPONSE.split())
    for trace, choice in zip(fig.data, (ctx.default_rm, RMChoice(bert))):
        tr = red_core.token_rewards(ctx.reward_models.get(choice), PROMPT, RESPONSE)
        assert sum(trace.y) == pytest.approx(tr.total, abs=1e-5)  # sums kept
    html, fig = handlers.compare_models(ctx, ctx.default_rm, ctx.default_rm.name, PROMPT, RESPONSE, progress=quiet)
    assert "token by token" in html


def test_to_words_keeps_prefix_scores(ctx):
    *_, tr = explore(ctx)
    words = tr.on_words()
    assert words.check()["ok"] and words.prefix_scores[-1] == pytest.approx(tr.prefix_scores[-1], abs=1e-5)
    assert "".join(words.texts) == RESPONSE


# ----------------------------------------------------------------------------- models, cache, uploads


def test_model_loading_failure_keeps_the_previous_model(ctx, model_dir, tmp_path):
    current = RMChoice(model_dir("qwen2", chat=True))
    with pytest.raises(gr.Error, match="keeps using"):
        handlers.load_model(ctx, str(tmp_path / "nope"), None, "auto", current, progress=quiet)
    with pytest.raises(gr.Error, match="Type a hub id"):
        handlers.load_model(ctx, "  ", None, "auto", current, progress=quiet)
    choice, status = handlers.load_model(ctx, model_dir("bert"), None, "auto", current, progress=quiet)
    assert choice == RMChoice(model_dir("bert")) and "loaded ✓" in status and "encoder" in status
    heat, *_ = handlers.explore(ctx, choice, PROMPT, RESPONSE, progress=quiet)
    assert heat.count('<span class="tok') > 0


def test_cache_is_a_bounded_lru():
    loads = []
    cache = context.ModelCache(lambda k: loads.append(k) or f"model-{k}", 2)
    for k in "abab":
        cache.get(k)
    cache.get("c")  # evicts a (least recently used)
    assert cache.keys() == ["b", "c"] and loads == ["a", "b", "c"]
    with pytest.raises(KeyError):
        context.ModelCache(lambda k: {}[k], 2).get("x")
    with cache.use("b") as m:
        assert m == "model-b"


def test_upload(tmp_path, monkeypatch):
    ok = tmp_path / "r.txt"
    ok.write_text("Hello ☀ world", encoding="utf-8")
    assert handlers.read_upload(str(ok)) == "Hello ☀ world"
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(gr.Error, match="not UTF-8"):
        handlers.read_upload(str(bad))
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", 5)
    with pytest.raises(gr.Error, match="MAX_UPLOAD_BYTES"):
        handlers.read_upload(str(ok))


def test_examples_file(tmp_path):
    assert context.load_examples(tmp_path / "missing.json") == []
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert context.load_examples(tmp_path / "bad.json") == []
    (tmp_path / "ok.json").write_text(json.dumps([{"name": "n", "prompt": "p", "response": "r"}, {"x": 1}]))
    assert context.load_examples(tmp_path / "ok.json") == [{"name": "n", "prompt": "p", "response": "r"}]


def test_cli_and_space_entry_point(tmp_path):
    from app.__main__ import parse_args

    args = parse_args([])
    assert args.share is False and args.reward_model is None and args.host is None
    # app.py, run directly from another folder, resolves its imports (as a Space runs it)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(ROOT / "app.py"), "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--reward-model" in out.stdout and "--share" in out.stdout


# ----------------------------------------------------------------------------- the launched app


@pytest.fixture(scope="module")
def served(ctx, serve_app):
    """The app's URL, launched with the app's own launch arguments (conftest `serve_app` picks the port)."""
    from app.ui import build_app, launch_kwargs

    with serve_app(build_app(ctx), **launch_kwargs()) as url:
        yield url


def test_apps_launched_together_each_get_a_port_of_their_own(serve_app):
    """conftest `serve_app` lets Gradio pick the port: a second app skips the port the first one holds."""
    import urllib.request

    def tiny(text):
        with gr.Blocks(analytics_enabled=False) as demo:
            gr.Markdown(text)
        return demo

    with serve_app(tiny("first app")) as first, serve_app(tiny("second app")) as second:
        assert first != second
        for url, text in ((first, "first app"), (second, "second app")):
            assert text in urllib.request.urlopen(url + "config", timeout=30).read().decode()


def test_gradio_client_round_trip(served, model_dir, tmp_path):
    from gradio_client import Client

    client = Client(served, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
    heat, plot, numbers, table, exact = client.predict(PROMPT, RESPONSE, api_name="/token_rewards")
    assert heat.count('<span class="tok') == len(table["data"]) > 0 and "✓ sums match" in numbers
    assert len(exact["tokens"]) == len(table["data"]) and exact["check"]["ok"] is True
    assert sum(t["reward"] for t in exact["tokens"]) == pytest.approx(exact["score"] - exact["baseline"], rel=1e-9)
    files = client.predict(api_name="/downloads")  # this session's last result
    assert plot["type"] == "plotly" and len(files) == 4 and all(Path(f).exists() for f in files)
    # errors come back as messages and the server keeps serving
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="response is empty"):
        client.predict(PROMPT, "   ", api_name="/token_rewards")
    with pytest.raises(AppError, match="Could not load the reward model"):
        client.predict("no/such-model-here", None, "auto", api_name="/load_reward_model")
    heat2, *_ = client.predict(PROMPT, RESPONSE, "uniform", api_name="/token_rewards")
    assert heat2.count('<span class="tok') == heat.count('<span class="tok')
    html, _, faith = client.predict(PROMPT, RESPONSE, api_name="/compare_methods")
    assert faith["type"] == "plotly"
    assert "<h4>ABC</h4>" in html
    # a session that loads another model scores with it; other sessions keep the default
    status = client.predict(model_dir("bert"), None, "auto", api_name="/load_reward_model")
    assert "encoder" in status
    _, _, numbers_b, *_ = client.predict(PROMPT, RESPONSE, api_name="/token_rewards")
    assert "bert" in numbers_b
    other = Client(served, verbose=False, download_files=str(tmp_path), analytics_enabled=False)
    _, _, numbers_a, *_ = other.predict(PROMPT, RESPONSE, api_name="/token_rewards")
    assert "bert" not in numbers_a
