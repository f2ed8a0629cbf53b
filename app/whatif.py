"""The Explore tab's "What if? Change a word" panel: edit one unit and see every reward move.

    build(ctx, result=..., prompt=..., response=..., rm_state=...)   inside the Explore tab (app/ui.py)

Pick a unit of the last Explore result (click it in the heatmap: the page's script writes its index
into the hidden "whatif-pick" box; or choose it in the list), then replace it with typed text, delete
it, or put in a word the bundled policy proposes there. The panel shows R(x, y) before and after, the
change Δ, both heatmaps on one colour scale, the two texts aligned unit by unit, and the units whose
credit moved most. "Leave one out" deletes each word in turn (one batched pass) and shows how much
each deletion moves the score, next to RED's credit for the same word.

Handlers are plain functions (tests call them directly): `plan` turns the panel's choices into a
character span, `counterfactual_view` (API "counterfactual") and `loo_view` (API "leave_one_out")
call red_core and render. The edit works on the text that was scored; input is checked with the
checks of app/handlers.py. Colours: red = lowered the reward, blue = raised it.
"""

from __future__ import annotations

import html

import gradio as gr
import numpy as np

import red_core
from app import handlers, limits, render
from app.context import AppContext
from app.errors import handler, user_error
from red_core import viz
from red_core.whatif import alternatives, counterfactual, leave_one_out, unit_spans

MAX_LOO_UNITS = 60  # units (words) one "leave one out" run may delete, each one more scored text
ALTERNATIVES_ASKED = 25  # next tokens asked from the policy; word starts among them are offered
ALTERNATIVES_SHOWN = 6  # proposals listed
MOST_CHANGED = 5  # units listed under "credit that moved"
MODES = (("replace with text", "replace"), ("delete", "delete"), ("a word the policy proposes", "policy"))
PUNCTUATION = ".,;:!?…\"')]}"  # kept when a word is replaced ("great." -> "bad.")
esc = html.escape

CSS = """<style>
.wi-box{font-family:system-ui,sans-serif;font-size:14px;color:var(--body-text-color,#222)}
.wi-box .wi-head{font-size:15px;margin:4px 0}
.wi-box .wi-label{font-size:12px;color:var(--body-text-color-subdued,#555);margin:8px 0 2px}
.wi-box table.wi-t{border-collapse:collapse;font-size:13px;margin:4px 0;color:var(--body-text-color,#222);
  background:var(--block-background-fill,#fff);border:1px solid var(--border-color-primary,#ddd)}
.wi-box table.wi-t tr,.wi-box table.wi-t td,.wi-box table.wi-t th{border:1px solid var(--border-color-primary,#ddd);
  padding:2px 8px;text-align:left}
.wi-box table.wi-t td.num{font-family:ui-monospace,Menlo,Consolas,monospace;text-align:right;white-space:nowrap}
.wi-box .tok{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre;border-radius:3px;padding:0 2px}
.wi-box table.wi-t tr.edit td:first-child{box-shadow:inset 4px 0 0 var(--body-text-color,#222)}
.wi-box .wi-scroll{max-height:360px;overflow:auto}
.wi-box ul{margin:2px 0;padding-left:20px}
</style>"""
HOW = """Pick a unit of the scored response: **click it in the heatmap** above, or choose it in the list. Then
replace it, delete it, or put in a word the policy (`{policy}`) would write there, and press **Run**. The
colours of both texts share one scale: red lowered the reward, blue raised it."""


# ----------------------------------------------------------------------------- units and spans


def unit_choices(tr) -> list[tuple[str, int]]:
    """(label, index) of each response unit of a result, labels counting from 1: "4 · wonderful"."""
    if tr is None:
        return []
    return [(f"{i + 1} · {tr.tokens[i].strip() or tr.tokens[i]}", i) for i in range(len(tr)) if not tr.special[i]]


def _unit(tr, unit) -> int:
    """A unit index from the list (or the heatmap) that is response text of `tr`."""
    if tr is None:
        raise user_error("Score a response first (Score button), then pick a word to change.")
    if unit in (None, ""):
        raise user_error("Pick a word to change: click it in the heatmap, or choose it in the list.")
    try:
        i = int(unit)
    except (TypeError, ValueError):
        raise user_error(f"{str(unit)[:20]!r} is not a unit number; click a word in the heatmap.") from None
    if not 0 <= i < len(tr):
        raise user_error(f"There is no unit {i + 1} in the scored response (it has {len(tr)}); click a word in "
                         f"the heatmap.")
    if tr.special[i]:
        raise user_error(f"{tr.tokens[i]!r} is a special token the reward model adds, not response text; pick a "
                         f"word of the response.")
    return i


def edit_span(tr, i: int, mode: str) -> tuple[int, int]:
    """Characters [start, end) of the response that an edit of unit i changes.

    Replacing keeps the spaces around the unit and its trailing punctuation ("great." -> "bad."); deleting
    also removes the space before it (or after it, for the first word), so no double space is left."""
    s, e = tr.offsets[i]
    text = tr.response[s:e]
    core_s, core_e = s + len(text) - len(text.lstrip()), s + len(text.rstrip())
    if core_s >= core_e:  # a unit of whitespace only
        return s, e
    word_e = core_e
    while word_e > core_s + 1 and tr.response[word_e - 1] in PUNCTUATION:
        word_e -= 1
    if mode != "delete":
        return core_s, word_e
    if core_s > s:
        return s, word_e
    end = core_e
    while end < len(tr.response) and tr.response[end].isspace():
        end += 1
    return s, end


# ----------------------------------------------------------------------------- the policy's proposals


def _policy_name(ctx: AppContext) -> str:
    name = ctx.default_policy
    if not name:
        raise user_error("No policy to propose words: start the app with --policy, or build "
                         "assets/models/policy-base (python -m red_core.recipes.defaults).")
    if ctx.hosting.public and name not in ctx.hosting.bundled["policy"]:
        raise user_error("This public app proposes words only with its bundled policy.")
    return name


def proposals(ctx: AppContext, tr, unit) -> list[tuple[str, float]]:
    """Words the policy would write in place of unit `unit` (its top next tokens there that start a word)."""
    i = _unit(tr, unit)
    s, _ = tr.offsets[i]
    new_word = tr.response[s:s + 1].isspace()  # then only proposals that start a new word fit
    current = tr.response[slice(*edit_span(tr, i, "replace"))]
    name = _policy_name(ctx)
    try:
        (policy, tokenizer), lock = ctx.policies.get_entry(name)
    except Exception as err:  # noqa: BLE001 - any load failure becomes a message
        raise user_error(f"Could not load the policy {name!r} that proposes words ({err}).") from err
    with lock:
        try:
            top = alternatives(policy, tokenizer, tr.prompt, tr.response, s, k=ALTERNATIVES_ASKED)
        except ValueError as err:
            raise user_error(f"The policy cannot propose words here: {err}") from err
    out: dict[str, float] = {}
    for text, p in top:
        word = text.strip()
        if word and word != current and (text[:1].isspace() or not new_word) and word not in out:
            out[word] = p
    return list(out.items())[:ALTERNATIVES_SHOWN]


def proposal_choices(ctx: AppContext, tr, unit, mode: str):
    """The "whatif-alts" list: filled when the mode is "policy" and a unit is picked, else left as it is."""
    if mode != "policy" or tr is None or unit in (None, ""):
        return gr.skip()
    words = proposals(ctx, tr, unit)
    if not words:
        return gr.Dropdown(choices=[], value=None, info="the policy proposes no whole word here; type one instead")
    return gr.Dropdown(choices=[(f"{w}  ({100 * p:.1f}%)", w) for w, p in words], value=words[0][0],
                       info=f"the policy's most likely words here (probability), from {_policy_name(ctx)}")


# ----------------------------------------------------------------------------- the UI's plan of an edit


def plan(tr, prompt: str, response: str, unit, mode: str, text: str, proposal: str):
    """From the panel's choices to the counterfactual's inputs: (start, end, replacement, method, granularity)."""
    i = _unit(tr, unit)
    mode = handlers.check_option(mode, [m for _, m in MODES], "edit mode")
    if (prompt or "") != tr.prompt or (response or "") != tr.response:
        raise user_error("The prompt or response changed since it was scored; press Score, then pick the word again.")
    if mode == "replace":
        replacement = handlers.check_text("replacement", text).strip()
        if not replacement:
            raise user_error("Type the text to put in place of the word (or choose “delete”).")
    elif mode == "policy":
        replacement = handlers.check_text("proposed word", proposal).strip()
        if not replacement:
            raise user_error("Choose one of the policy's words in the list (pick a word first to fill it).")
    else:
        replacement = ""
    start, end = edit_span(tr, i, mode)
    method = tr.method if tr.method in red_core.list_methods() else "red"
    granularity = tr.granularity if tr.granularity in handlers.GRANULARITIES else "word"
    return start, end, replacement, method, granularity


def pick(tr, index):
    """The heatmap click: select the unit, open the panel. The page's script writes the span's data-i into
    "whatif-pick" as it does for the details box (handlers.tapped_unit: "3", or "3:<nonce>")."""
    if tr is None or index in (None, ""):
        return gr.skip(), gr.skip()
    i = handlers.tapped_unit(index)
    i = _unit(tr, index if i is None else i)  # not a number: _unit says so
    return gr.update(value=i), gr.Accordion(open=True)  # (the list holds i: refresh_units put it there)


def refresh_units(tr):
    """A new Explore result: its units in the list, nothing picked."""
    return gr.Dropdown(choices=unit_choices(tr), value=None)


# ----------------------------------------------------------------------------- counterfactual


def _span(what: str, value, upper: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise user_error(f"The {what} must be a character offset (a whole number), not {str(value)[:20]!r}.") from None
    if not number.is_integer():
        raise user_error(f"The {what} must be a whole-number character offset, not {value}.")
    if not 0 <= number <= upper:
        raise user_error(f"The {what} offset {value} is outside the response (0 to {upper} characters); give the "
                         f"[start, end) characters of the text to change, e.g. a unit's offsets.")
    return int(number)


def counterfactual_view(ctx: AppContext, choice, prompt: str, response: str, start, end, replacement: str,
                        method: str = "red", granularity: str = "word", progress=gr.Progress()):
    """response[start:end] replaced by `replacement` ("" deletes): the rendered comparison and the exact numbers."""
    prompt, response = handlers.check_prompt(prompt), handlers.check_response(response)
    replacement = handlers.check_text("replacement", replacement)
    handlers.check_option(method, red_core.list_methods(), "method")
    handlers.check_option(granularity, handlers.GRANULARITIES, "granularity")
    start, end = _span("start", start, len(response)), _span("end", end, len(response))
    if start > end:
        raise user_error(f"The start ({start}) is after the end ({end}); the span is response[start:end].")
    if response[start:end] == replacement:
        raise user_error("Nothing to change: the replacement is the same as the text it replaces. Type another "
                         "word, or delete.")
    edited = response[:start] + replacement + response[end:]
    if not edited.strip():
        raise user_error("The edit leaves the response empty; keep at least one word, or type a replacement.")
    handlers.check_response(edited, "edited response")
    rm, lock = handlers.get_rm(ctx, handlers.check_choice(choice), progress)
    if progress is not None:
        progress(0.5, desc="scoring both responses")
    with lock:
        try:
            cf = counterfactual(rm, prompt, response, start, end, replacement, method=method, granularity=granularity,
                                max_tokens=limits.MAX_TOKENS)
        except (red_core.RewardModelError, ValueError) as err:
            text = str(err).replace("(max_tokens)", "(MAX_TOKENS)")
            raise user_error(f"Could not score the edit: {text[:1].upper()}{text[1:]}") from err
    return counterfactual_html(cf), exact(cf)


def exact(cf) -> dict:
    """The comparison at full precision: both results as in the Explore tab's exact numbers, the aligned rows."""
    return {"start": cf.start, "end": cf.end, "replacement": cf.replacement, "edited_response": cf.edited_response,
            "score_original": cf.original.score, "score_edited": cf.edited.score, "delta": cf.delta,
            "rows": [dict(r) for r in cf.rows], "most_changed": cf.most_changed(MOST_CHANGED),
            "original": handlers.exact_numbers(cf.original), "edited": handlers.exact_numbers(cf.edited)}


def _tok(text: str | None, reward: float | None, scale: float) -> str:
    return render.token_cell(None if text is None else red_core.align.display(text), reward, scale)


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:+.4f}"


def counterfactual_html(cf) -> str:
    a, b = cf.original, cf.edited
    scale = viz.symmetric_scale(a.rewards, b.rewards)  # one scale for both texts
    old = a.response[cf.start:cf.end]
    what = (f"deleted “{esc(old)}”" if not cf.replacement else f"inserted “{esc(cf.replacement)}”" if not old else
            f"“{esc(old)}” → “{esc(cf.replacement)}”")
    first = [r for r in cf.rows if r["inside"]]
    active_a = next((r["index_a"] for r in first if r["index_a"] is not None), None)
    active_b = next((r["index_b"] for r in first if r["index_b"] is not None), None)
    rows = []
    for r in cf.rows:
        num = "" if r["index_a"] is None else str(r["index_a"] + 1)
        rows.append(f"<tr class='{'edit' if r['inside'] else esc(r['op'])}'><td class='num'>{num}</td>"
                    f"{_tok(r['text_a'], r['reward_a'], scale)}{_tok(r['text_b'], r['reward_b'], scale)}"
                    f"<td class='num'>{r['change']:+.4f}</td></tr>")
    moved = [r for r in cf.most_changed(MOST_CHANGED) if abs(r["change"]) > 5e-5]
    moved_html = ("<ul>" + "".join(
        f"<li><code>{esc(red_core.align.display(r['text_a'] if r['text_a'] is not None else r['text_b']))}</code>: "
        f"{_num(r['reward_a'])} → {_num(r['reward_b'])} ({render.signed(r['change'])})</li>" for r in moved)
        + "</ul>") if moved else "<div>No other unit's credit moved (more than 0.00005).</div>"
    unit = a.granularity
    return (render.STYLE + CSS + "<div class='wi-box'>"
            f"<div class='wi-head'>R(x, y): {viz.fmt(a.score)} → <b>{viz.fmt(b.score)}</b> · change Δ = "
            f"{render.signed(cf.delta)}</div>"
            f"<div>Edit: {what} (characters {cf.start}–{cf.end} of the response) · method {esc(a.method)}, "
            f"per {esc(unit)}</div>" + viz.legend_html(scale, unit, "both texts")
            + "<div class='wi-label'>before the edit</div>" + viz.tokens_html(a, scale=scale, active=active_a)
            + "<div class='wi-label'>after the edit</div>" + viz.tokens_html(b, scale=scale, active=active_b)
            + f"<div class='wi-label'>Credit that moved elsewhere (units outside the edit, largest change first)</div>"
            f"{moved_html}<div class='wi-label'>The two texts {esc(unit)} by {esc(unit)} (edited units marked at the "
            f"left; # counts from 1)</div><div class='wi-scroll'><table class='wi-t'><tr><th>#</th><th>before</th><th>reward</th>"
            f"<th>after</th><th>reward</th><th>change</th></tr>{''.join(rows)}</table></div>"
            + render.warnings_html(a.warnings + b.warnings) + "</div>")


# ----------------------------------------------------------------------------- leave one out


def loo_view(ctx: AppContext, choice, prompt: str, response: str, granularity: str = "word", progress=gr.Progress()):
    """Delete each unit in turn (one batched pass): how much each deletion moves R(x, y), beside RED's credit."""
    prompt, response = handlers.check_prompt(prompt), handlers.check_response(response)
    handlers.check_option(granularity, handlers.GRANULARITIES, "granularity")
    rm, lock = handlers.get_rm(ctx, handlers.check_choice(choice), progress)
    with lock:
        try:
            n = len(unit_spans(rm, prompt, response, granularity))
            if n > MAX_LOO_UNITS:
                raise user_error(f"The response has {n} {granularity}s; leave one out deletes at most {MAX_LOO_UNITS} "
                                 f"(MAX_LOO_UNITS), one scored text each. Shorten the response, or use sentences.")
            if progress is not None:
                progress(0.3, desc=f"scoring {n} texts, each without one {granularity}")
            red = red_core.token_rewards(rm, prompt, response, granularity=granularity, max_tokens=limits.MAX_TOKENS)
            loo = leave_one_out(rm, prompt, response, granularity=granularity)
        except (red_core.RewardModelError, ValueError) as err:
            text = str(err).replace("(max_tokens)", "(MAX_TOKENS)")
            raise user_error(f"Could not run leave one out: {text[:1].upper()}{text[1:]}") from err
    credit = _red_on(loo, red)
    return loo_html(loo, credit), loo_figure(loo, credit)


def _red_on(loo, red) -> list[float | None]:
    """RED's reward of each leave-one-out unit (same character span), None where no unit matches."""
    by_span = {tuple(o): float(r) for o, r, sp in zip(red.offsets, red.rewards, red.special) if not sp}
    return [by_span.get(tuple(o)) for o in loo.offsets]


def _credit_cell(v: float | None, scale: float) -> str:
    if v is None:
        return "<td class='num'>n/a</td>"
    return f"<td class='num' style='background:{viz.color(v, scale)};color:{viz.text_color(v, scale)}'>{v:+.4f}</td>"


def loo_html(loo, credit: list[float | None]) -> str:
    effects = loo.score - loo.scores_without  # (U,) what each unit adds: R(x, y) - R(x, y without it)
    scale = viz.symmetric_scale(effects, np.asarray([c for c in credit if c is not None]))
    rows = "".join(
        f"<tr><td class='num'>{u + 1}</td>{_tok(loo.units[u], float(effects[u]), scale)}"
        f"<td class='num'>{float(loo.scores_without[u]):+.4f}</td>"
        f"{_credit_cell(credit[u], scale)}</tr>"
        for u in range(len(loo.units)))
    notes = render.warnings_html(loo.notes)
    return (render.STYLE + CSS + "<div class='wi-box'>"
            f"<div class='wi-head'>R(x, y) = <b>{viz.fmt(loo.score)}</b> · {len(loo.units)} texts scored, each "
            f"without one {esc(str(loo.granularity))}</div>"
            "<div>Effect of a unit = R(x, y) − R(x, y without it): blue = the unit raised the score (deleting it "
            "lowers it), red = it lowered the score. RED's credit is measured where the unit is added, left to "
            "right; the two disagree where a later word changes what an earlier one means (try “not good”).</div>"
            + viz.legend_html(scale, str(loo.granularity), "effect and RED credit") +
            f"<div class='wi-scroll'><table class='wi-t'><tr><th>#</th><th>{esc(str(loo.granularity))}</th><th>effect</th>"
            f"<th>R(x, y) without it</th><th>RED reward</th></tr>{rows}</table></div>{notes}</div>")


def loo_figure(loo, credit: list[float | None]):
    """Bars: each unit's effect (coloured as the heatmap); markers: RED's reward of the same unit."""
    import plotly.graph_objects as go

    effects = [float(v) for v in loo.score - loo.scores_without]
    scale = viz.symmetric_scale(np.asarray(effects))
    x = list(range(len(effects)))
    labels = [esc(red_core.align.display(u)) for u in loo.units]
    fig = go.Figure()
    fig.add_bar(x=x, y=effects, name="effect: R(x, y) − R(x, y without it)", customdata=labels,
                marker_color=[viz.color(v, scale) for v in effects], marker_line_color="#555", marker_line_width=0.5,
                hovertemplate="%{customdata}<br>effect %{y:+.4f}<extra></extra>")
    fig.add_scatter(x=x, y=credit, name="RED reward", mode="markers", customdata=labels,
                    marker={"color": viz.METHOD_COLOURS["red"], "symbol": "diamond", "size": 9},
                    hovertemplate="%{customdata}<br>RED reward %{y:+.4f}<extra></extra>")
    step = max(1, len(x) // 60)
    fig.update_layout(title="Leave one out: what each unit adds to R(x, y)", height=340, plot_bgcolor="#fff",
                      margin={"l": 50, "r": 20, "t": 40, "b": 80}, legend={"orientation": "h", "y": 1.12},
                      xaxis={"tickmode": "array", "tickvals": x[::step], "ticktext": labels[::step], "tickangle": -60},
                      yaxis={"title": "change of R(x, y)", "zeroline": True})
    return fig


# ----------------------------------------------------------------------------- layout


def build(ctx: AppContext, *, result, prompt, response, rm_state) -> dict:
    """The panel's components and events, inside the Explore tab. Returns the components by elem_id."""
    private = {"api_visibility": "private"}
    policy = ctx.default_policy or "no policy"
    # Outside the accordion: Gradio draws a closed accordion's content only once opened, and a tap in the heatmap
    # (app/static/app.js) writes here before the panel is open; the pick event then opens it.
    pick_box = gr.Textbox(visible="hidden", elem_id="whatif-pick", label="picked unit")
    with gr.Accordion("What if? Change a word", open=False, elem_id="whatif") as panel:
        gr.Markdown(HOW.format(policy=policy))
        with gr.Row():
            unit = gr.Dropdown(choices=[], value=None, label="Unit to change (# counts from 1)", elem_id="whatif-unit",
                               scale=2)
            mode = gr.Radio(list(MODES), value="replace", label="Change it to", elem_id="whatif-mode", scale=3)
        with gr.Row():
            text = gr.Textbox(label="Replacement text", placeholder="e.g. terrible", elem_id="whatif-text", scale=2)
            alts = gr.Dropdown(choices=[], value=None, label="A word the policy proposes", elem_id="whatif-alts",
                               info=f"from {policy}; pick a unit with this mode selected", scale=2)
        with gr.Row():
            run = gr.Button("Run", variant="primary", elem_id="whatif-run", scale=0, min_width=100)
            apply = gr.Button("Put the edited text in the response box", size="sm", elem_id="whatif-apply", scale=0)
        view = gr.HTML(label="what if", elem_id="whatif-view")
        with gr.Accordion("Exact numbers of the edit", open=False):
            numbers = gr.JSON(label="both results at full precision and the aligned units", elem_id="whatif-json")
        start = gr.Number(visible=False, precision=0, label="start")
        end = gr.Number(visible=False, precision=0, label="end")
        replacement = gr.Textbox(visible=False, label="replacement")
        method = gr.Textbox("red", visible=False, label="method")
        granularity = gr.Textbox("word", visible=False, label="granularity")
        loo = gr.Button("Leave one out: delete each word", elem_id="whatif-loo")
        loo_granularity = gr.Textbox("word", visible=False, label="leave-one-out granularity")
        loo_view_html = gr.HTML(label="leave one out", elem_id="whatif-loo-view")
        loo_plot = gr.Plot(label="What each word adds to R(x, y)", elem_id="whatif-loo-plot")

    result.change(refresh_units, result, unit, show_progress="hidden", **private)
    # .change, not .input: a value written by a script (and dispatched as "input") reaches the server as a change
    pick_box.change(handler(pick), [result, pick_box], [unit, panel], show_progress="hidden", **private)
    fill = dict(fn=handler(proposal_choices, ctx), inputs=[result, unit, mode], outputs=alts, show_progress="hidden",
                **private)
    unit.change(**fill)
    mode.change(**fill)
    alts.select(lambda: "policy", None, mode, show_progress="hidden", **private)
    text.input(lambda: "replace", None, mode, show_progress="hidden", **private)
    planned = run.click(handler(plan), [result, prompt, response, unit, mode, text, alts],
                        [start, end, replacement, method, granularity], **private)
    planned.success(handler(counterfactual_view, ctx, on_gpu=True),
                    [rm_state, prompt, response, start, end, replacement, method, granularity], [view, numbers],
                    api_name="counterfactual",
                    api_description="Replace response[start:end] (character offsets) by `replacement` (\"\" deletes) "
                                    "and score both texts with this session's reward model: HTML (R(x, y) before and "
                                    "after, Δ, both heatmaps on one scale, aligned units) and the exact numbers.")
    apply.click(lambda d: d["edited_response"] if isinstance(d, dict) and "edited_response" in d else gr.skip(),
                numbers, response, **private)
    loo.click(handler(loo_view, ctx, on_gpu=True), [rm_state, prompt, response, loo_granularity],
              [loo_view_html, loo_plot], api_name="leave_one_out",
              api_description="Delete each word (or token / sentence) of the response in turn, all variants scored in "
                              f"one batched pass (at most {MAX_LOO_UNITS} units, MAX_LOO_UNITS): HTML table and a "
                              "bar plot of R(x, y) − R(x, y without the unit), beside RED's reward of each unit.")
    return {"whatif": panel, "whatif-pick": pick_box, "whatif-unit": unit, "whatif-mode": mode, "whatif-text": text,
            "whatif-alts": alts, "whatif-run": run, "whatif-apply": apply, "whatif-view": view, "whatif-json": numbers,
            "whatif-loo": loo, "whatif-loo-view": loo_view_html, "whatif-loo-plot": loo_plot}


__all__ = ["MAX_LOO_UNITS", "build", "counterfactual_view", "edit_span", "loo_view", "plan", "proposals",
           "unit_choices"]
