"""HTML and figures the app shows, built on red_core.viz (same colours, same escaping rules).

Every string that came from a user or a tokenizer goes through `html.escape`; tokens keep their
whitespace (`white-space: pre-wrap`). Each HTML fragment carries its own <style> so it renders the
same inside the app, in gradio_client output and when saved.
"""

from __future__ import annotations

import difflib
import html
from itertools import zip_longest

import numpy as np

from red_core import viz
from red_core.methods import DESCRIPTIONS

esc = html.escape

APP_CSS = """
/* table.red-numbers.red-numbers: the class twice outweighs the page's own ".gradio-container .prose td" */
.red-box{font-family:system-ui,sans-serif;font-size:14px;color:var(--body-text-color,#222)}
.red-note{font-family:system-ui,sans-serif;font-size:13px;color:var(--body-text-color-subdued,#555);padding:12px;
  border:1px dashed var(--border-color-primary,#ccc);border-radius:6px;background:var(--background-fill-secondary,#fafafa)}
.red-numbers{border-collapse:collapse;font-family:system-ui,sans-serif;font-size:13px;margin:4px 0;
  color:var(--body-text-color,#222);background:var(--background-fill-primary,#fff)}
table.red-numbers.red-numbers td,table.red-numbers.red-numbers th{border:1px solid var(--border-color-primary,#e3e3e3);
  padding:3px 8px;margin:0;text-align:left;vertical-align:top}
table.red-numbers.red-numbers td.num{font-family:ui-monospace,Menlo,Consolas,monospace;text-align:right;white-space:nowrap}
.red-numbers.wide th{white-space:nowrap;cursor:help}
table.red-numbers.red-numbers td.check{white-space:normal;text-align:left}
.red-scroll{overflow-x:auto;max-width:100%}
@media (max-width:480px){table.red-numbers.wide.red-numbers td,table.red-numbers.wide.red-numbers th{padding:2px 3px;
  font-size:11px;white-space:normal}}
.red-meaning{font-family:system-ui,sans-serif;font-size:12px;color:var(--body-text-color,#222);margin:2px 0}
.red-meaning summary{cursor:pointer;color:var(--body-text-color-subdued,#555)}
.red-meaning ul{margin:2px 0 4px 0;padding-left:18px}
.red-numbers .ok{color:var(--red-ok,#1a7f37);font-weight:600}.red-numbers .bad{color:var(--red-bad,#b2182b);font-weight:600}
.red-warn{font-family:system-ui,sans-serif;font-size:12px;color:#8a5300;background:#fff8e6;border:1px solid #f0d9a8;
  border-radius:4px;padding:4px 8px;margin:4px 0}
.red-grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:10px}
@media (max-width:800px){.red-grid{grid-template-columns:1fr}}
.red-panel h4{font-family:system-ui,sans-serif;margin:6px 0 2px 0;font-size:14px;color:var(--body-text-color,#222)}
.red-panel .desc{font-family:system-ui,sans-serif;font-size:12px;color:var(--body-text-color-subdued,#555);
  margin-bottom:2px}
.red-step .future{background:none!important;color:#767676!important;box-shadow:none}
.red-gauge{position:relative;height:34px;margin:8px 14px 18px 14px;font-family:system-ui,sans-serif;font-size:11px;
  color:var(--body-text-color,#444)}
.red-gauge .track{position:absolute;top:14px;left:0;right:0;height:4px;background:#bbb;border-radius:2px}
.red-gauge .move{position:absolute;top:12px;height:8px;border-radius:4px}
.red-gauge .dot{position:absolute;top:9px;width:14px;height:14px;margin-left:-7px;border-radius:7px;border:2px solid #fff}
.red-gauge .lab{position:absolute;top:26px;transform:translateX(-50%);white-space:nowrap}
.red-align{max-height:420px;overflow:auto;border:1px solid var(--border-color-primary,#ddd);border-radius:6px;margin:4px 0}
.red-align table{width:100%;margin:0}
.red-align td,.red-align th{padding:1px 8px;line-height:1.5}
.red-align th{position:sticky;top:0;background:var(--background-fill-secondary,#f6f6f6)}
.red-align .tok{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre;border-radius:3px;padding:0 2px;
  box-shadow:inset 0 0 0 1px rgba(0,0,0,.06)}
.red-align td.op{color:var(--red-op,#8a5300);font-size:12px}
.red-align tr.insert td,.red-align tr.delete td,.red-align tr.replace td{background:var(--red-changed,#fffbe6)}
.red-details{font-family:system-ui,sans-serif;font-size:14px;color:var(--body-text-color,#222);
  background:var(--background-fill-secondary,#f7f7f7);border:1px solid var(--border-color-primary,#ddd);border-radius:6px;
  padding:6px 10px;margin:6px 0}
.red-details .tokt{font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre-wrap;border-radius:3px;padding:0 3px}
.red-details .hint{font-size:12px;color:var(--body-text-color-subdued,#555)}
.red-lesson{font-family:system-ui,sans-serif;font-size:14px;color:var(--body-text-color,#222);padding:8px 12px;
  border-left:4px solid #7b3294;background:var(--background-fill-secondary,#f6f0fa);border-radius:4px;margin:4px 0}
"""

STYLE = f"<style>{viz.CSS}{APP_CSS}</style>"


def fmt(v) -> str:
    return viz.fmt(None if v is None else float(v))


def visible(tr, show_special: bool) -> list[int]:
    """Indices of the units shown (all, or all but special tokens)."""
    return [i for i in range(len(tr)) if show_special or not tr.special[i]]


def placeholder(text: str) -> str:
    return f'{STYLE}<div class="red-note">{esc(text)}</div>'


def warnings_html(warnings) -> str:
    return "".join(f'<div class="red-warn">⚠ {esc(w)}</div>' for w in dict.fromkeys(warnings))


SCALE_NAMES = {"text": "this text", "session": "shared across this session"}


def scale_name(mode: str | None, scale: float) -> str | None:
    """How the legend names a colour-scale mode (app/presets.py SCALES): "this text", "fixed ±0.5", ..."""
    return f"fixed ±{scale:g}" if mode == "fixed" else SCALE_NAMES.get(mode or "", None)


def heatmap(tr, *, scale: float | None = None, show_special: bool = True, mode: str | None = None) -> str:
    """The Explore heatmap: the legend (saying which colour scale: `mode`) and one span.tok per shown unit, each
    with data-i, data-start, data-end, data-reward, data-prefix for the page's tap-for-details script. R(x, y)
    and the check are in the numbers panel right under it (numbers_html)."""
    scale = scale if scale is not None else viz.symmetric_scale(tr.rewards)
    return (f"<style>{viz.CSS}{APP_CSS}</style>" + viz.legend_html(scale, viz.unit_name(tr), scale_name(mode or "text", scale))
            + viz.tokens_html(tr, scale=scale, show_special=show_special))


def numbers_html(tr, *, show_special: bool = True) -> str:
    """R(x, y), R(x, ∅), the sum of rewards and the telescoping check, with what each means."""
    c = tr.check()
    red_with_baseline = tr.method == "red" and tr.params.get("prompt_baseline", True) and tr.baseline is not None
    expected_text = ("β_c · (R(x, y) − R(x, ∅)) + (1 − β_c) · R(x, y)" if red_with_baseline else "R(x, y)")
    mark = ('<span class="ok">✓ sums match</span>' if c["ok"] else
            f'<span>— {esc(c.get("note", ""))}</span>' if c["ok"] is None else '<span class="bad">✗ sums differ</span>')
    if c["ok"] is None:
        expected_text = "F(x) − F(x′), IG's completeness target" if c["expected"] is not None else "no target"
    rows = [
        ("R(x, y)", fmt(c["score"]), "reward-model score of prompt + whole response"),
        ("R(x, ∅)", fmt(c["baseline"]), "score of the prompt alone (RED's starting point)" if c["baseline"] is not None
         else "undefined: no tokens before the response (taken as 0)"),
        ("Σ rewards", fmt(c["sum"]), f"sum over all {len(tr)} {tr.granularity}s (special tokens included)"),
        ("expected", fmt(c["expected"]), expected_text),
        ("check", "n/a" if c["difference"] is None else f"{c['difference']:+.1e}", f"Σ rewards − expected: {mark}"),
    ]
    hidden = [i for i in range(len(tr)) if tr.special[i]] if not show_special else []
    if hidden:
        rows.append(("hidden", fmt(float(np.sum(tr.rewards[hidden]))),
                     f"reward on {len(hidden)} hidden special token(s), still counted in Σ"))
    params = ", ".join(f"{k}={v}" for k, v in tr.params.items()) or "no parameters"
    secs = tr.meta.get("seconds")
    info = (f"model <code>{esc(str(tr.model))}</code> · method <b>{esc(tr.method)}</b> ({esc(params)}) · "
            f"scoring path {esc(str(tr.meta.get('path', '?')))}" + (f" · {secs * 1000:.0f} ms" if secs else ""))
    head = "".join(f'<th title="{esc(_plain(d), quote=True)}">{esc(a)}</th>' for a, _, d in rows)
    values = "".join(f'<td class="num check">{esc(b)} {mark}</td>' if a == "check" else f'<td class="num">{esc(b)}</td>'
                     for a, b, _ in rows)
    meaning = "".join(f"<li><b>{esc(a)}</b>: {d}</li>" for a, _, d in rows)
    return (f'{STYLE}<div class="red-box"><div class="red-scroll"><table class="red-numbers wide"><tr>{head}</tr>'
            f'<tr>{values}</tr></table></div>'
            f'<details class="red-meaning"><summary>what these numbers mean</summary><ul>{meaning}</ul></details>'
            f'<div class="red-summary">{info}</div>{warnings_html(tr.warnings)}</div>')


def _plain(fragment: str) -> str:
    """Text of a small HTML fragment of ours (for a title attribute)."""
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def table(tr):
    """A pandas table for gr.Dataframe: display token, ids, offsets, reward, prefix score (rounded)."""
    df = tr.to_pandas().drop(columns=["text"])
    if "ids" in df:
        df["ids"] = [" ".join(map(str, v)) for v in df["ids"]]
    df.insert(0, "#", range(1, len(df) + 1))  # counted from 1, as everywhere a visitor reads
    return df.round({"reward": 5, "prefix_score": 5})


def safe_figure(fig):
    """Escape token strings in a plotly figure: plotly reads <b>, <br>, <a> in labels as markup."""
    fig.update_xaxes(ticktext=[esc(str(t)) for t in (fig.layout.xaxis.ticktext or ())])
    for trace in fig.data:
        if trace.customdata is not None:
            trace.customdata = [esc(str(c)) for c in trace.customdata]
    return fig


def rewards_figure(tr, *, show_special: bool = True, active: int | None = None):
    """red_core.viz.rewards_figure (labels escaped, both zeros level); `active` (a position among the shown units,
    from 0) is the unit the step-through is on, marked in the plot."""
    return viz.rewards_figure(tr, show_special=show_special, active=active)


# ----------------------------------------------------------------------------- step-through


def _gauge(lo: float, hi: float, prev: float, cur: float, reward: float, scale: float) -> str:
    span = (hi - lo) or 1.0

    def pos(v):
        return 100.0 * (v - lo) / span

    a, b = sorted((pos(prev), pos(cur)))
    col = viz.color(cur - prev, scale) if cur != prev else "#999"
    return (f'<div class="red-gauge"><div class="track"></div>'
            f'<div class="move" style="left:{a:.2f}%;width:{max(b - a, 0.3):.2f}%;background:{col}"></div>'
            f'<div class="dot" style="left:{pos(prev):.2f}%;background:#9a9a9a" title="before this token"></div>'
            f'<div class="dot" style="left:{pos(cur):.2f}%;background:#111" title="after this token"></div>'
            f'<span class="lab" style="left:0%">{lo:+.3g}</span><span class="lab" style="left:100%">{hi:+.3g}</span>'
            f'</div>')


def sign_colour(v: float) -> str:
    """Text colour of a signed change: blue when it raised the reward, red when it lowered it; at 0 the text's own colour."""
    r, g, b = viz.POS if v > 0 else viz.NEG
    return "inherit" if abs(v) < 1e-12 else f"rgb({r},{g},{b})"


def signed(v: float) -> str:
    """A signed change, bold, in its sign's colour."""
    return f'<b style="color:{sign_colour(v)}">{v:+.4f}</b>'


def _before(tr, i: int) -> float:
    """The prefix score before unit i: the previous unit's, or R(x, ∅) (0 when undefined) for the first."""
    return float(tr.prefix_scores[i - 1]) if i > 0 else viz.start_score(tr)


def step_html(tr, k: int, *, show_special: bool = True, scale: float | None = None) -> str:
    """Unit k (from 0) of the shown units, headed "token k+1 of n": earlier ones coloured (on `scale`, the
    heatmap's), this one outlined, later ones grey."""
    idx = visible(tr, show_special)
    if not idx:
        return placeholder("Nothing to step through.")
    k = int(min(max(k, 0), len(idx) - 1))
    i = idx[k]
    scale = scale if scale is not None else viz.symmetric_scale(tr.rewards)
    start = viz.start_score(tr)
    prev = _before(tr, i)
    cur, reward = float(tr.prefix_scores[i]), float(tr.rewards[i])
    allp = [start, *map(float, tr.prefix_scores)]
    lo, hi = min(allp), max(allp)
    pad = 0.05 * ((hi - lo) or 1.0)
    ids = ",".join(map(str, tr.token_ids[i]))
    head = (f'<div class="red-box"><b>{esc(tr.granularity)} {k + 1} of {len(idx)}</b> · '
            f'<code>{esc(tr.tokens[i])}</code> (id {esc(ids)})</div>')
    moving = (f'<div class="red-box">prefix score R(x, y≤t) moves {prev:+.4f} → <b>{cur:+.4f}</b> '
              f'(change {cur - prev:+.4f}); reward of this {esc(tr.granularity)} under <b>{esc(tr.method)}</b>: '
              f'{signed(reward)} · '
              f'running sum {float(np.sum(tr.rewards[:i + 1])):+.4f}</div>')
    return (STYLE + '<div class="red-step">' + head + moving +
            _gauge(lo - pad, hi + pad, prev, cur, reward, scale) +
            viz.tokens_html(tr, scale=scale, show_special=show_special, active=i, upto=i) + "</div>")


def details_html(tr, i: int, *, show_special: bool = True) -> str:
    """The details box of one tapped unit i (index into tr): its number counted from 1 among the shown units, its
    exact text, token ids, reward and the prefix score before and after it. Everything escaped."""
    idx = visible(tr, show_special)
    where = (f"{esc(tr.granularity)} {idx.index(i) + 1} of {len(idx)}" if i in idx else
             f"hidden special token (unit {i + 1} of {len(tr)})")
    r, before, after = float(tr.rewards[i]), _before(tr, i), float(tr.prefix_scores[i])
    scale = viz.symmetric_scale(tr.rewards)
    ids = ", ".join(map(str, tr.token_ids[i])) or "none"
    kind = " · special token (template, not your text)" if tr.special[i] else ""
    start, end = (int(v) for v in tr.offsets[i])
    return (f'{STYLE}<div class="red-details" data-i="{int(i)}"><b>{where}</b>{kind} · '
            f'<span class="tokt" style="background:{viz.color(r, scale)};color:{viz.text_color(r, scale)}">'
            f'{esc(repr(tr.texts[i]))}</span> · token id{"s" if len(tr.token_ids[i]) != 1 else ""} {esc(ids)} · '
            f'characters {start}–{end}<br>reward {signed(r)} · prefix score '
            f'{before:+.4f} → <b>{after:+.4f}</b> (R(x, y≤t) before and after it)'
            f'<div class="hint">Tap another {esc(tr.granularity)} for its numbers; “What if? change a word” below '
            f'opens on this one.</div></div>')


def lesson_notice(title: str, notice: str) -> str:
    """The banner of the lesson being shown: its title and what to notice (plain text, escaped)."""
    return (f'{STYLE}<div class="red-lesson"><b>Lesson: {esc(title)}</b><br>What to notice: '
            f'{esc(notice)}</div>')


# ----------------------------------------------------------------------------- compare


def panel(tr, *, title: str, scale: float, subtitle: str = "", show_special: bool = True) -> str:
    c = tr.check()
    line = (f'R(x, y) = {fmt(c["score"])} · R(x, ∅) = {fmt(c["baseline"])} · Σ rewards = {fmt(c["sum"])} '
            f'{"✓" if c["ok"] else "(attribution)" if c["ok"] is None else "✗"}')
    return (f'<div class="red-panel"><h4>{esc(title)}</h4>'
            + (f'<div class="desc">{esc(subtitle)}</div>' if subtitle else "")
            + f'<div class="red-summary">{esc(line)}</div>'
            + viz.tokens_html(tr, scale=scale, show_special=show_special) + "</div>")


def method_facts(tr) -> str:
    """What one method cost here, and for IG how far its sum is from F(x) − F(x′) (its completeness gap)."""
    secs = tr.meta.get("method_seconds", tr.meta.get("seconds"))
    facts = [f"{secs * 1000:.0f} ms" if secs is not None else ""]
    if "completeness_gap" in tr.meta:
        facts.append(f"IG completeness gap {float(tr.meta['completeness_gap']):.2e} "
                     f"(|Σ − (F(x) − F(x′))|, {tr.params.get('steps', '?')} steps)")
    return " · ".join(f for f in facts if f)


def methods_html(results: dict, *, scales: dict, show_special: bool = True) -> str:
    """One panel per credit method, each with its time (and IG's completeness gap). `scales`: the colour scale of
    each method (one shared value for methods in reward units)."""
    shared = max(scales.values(), key=list(scales.values()).count)
    panels = "".join(panel(tr, title=name.upper(), subtitle=f"{DESCRIPTIONS.get(name, '')} · {method_facts(tr)}"
                           + ("" if scales[name] == shared else " · its own colour scale (not reward units)"),
                           scale=scales[name], show_special=show_special) for name, tr in results.items())
    warn = warnings_html(w for tr in results.values() for w in tr.warnings)
    return (STYLE + viz.legend_html(shared) + '<div class="red-box">one shared colour scale for the methods in reward '
            'units; gxi (gradient × input) is coloured on its own scale</div>'
            + f'<div class="red-grid">{panels}</div>' + warn)


def line_colour(name: str, k: int) -> str:
    """A line's colour: the method's in viz.METHOD_COLOURS, else the k-th of them (never red or blue: those mean
    lowered / raised reward)."""
    palette = list(dict.fromkeys(viz.METHOD_COLOURS.values()))
    return viz.METHOD_COLOURS.get(name, palette[k % len(palette)])


def lines_figure(series: dict, labels: list[str], *, title: str, ytitle: str = "reward"):
    """Several reward series over the same units: x = positions, tick labels = units (escaped)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    x = list(range(len(labels)))
    safe = [esc(t) for t in labels]
    for k, (name, values) in enumerate(series.items()):
        fig.add_scatter(x=x, y=[float(v) for v in values], name=name, mode="lines+markers", customdata=safe,
                        line={"color": line_colour(name, k)},
                        hovertemplate="%{customdata}<br>" + esc(name) + " %{y:+.4f}<extra></extra>")
    step = max(1, len(x) // 60)
    fig.update_layout(title=title, height=340, margin={"l": 50, "r": 20, "t": 40, "b": 80},
                      xaxis={"tickmode": "array", "tickvals": x[::step], "ticktext": safe[::step], "tickangle": -60},
                      yaxis={"title": ytitle, "zeroline": True}, legend={"orientation": "h", "y": 1.12},
                      plot_bgcolor="#fff")
    return fig


def align_pairs(a: list[str], b: list[str]) -> list[tuple[str, int | None, int | None]]:
    """Token alignment of two sequences (difflib): (op, index in a or None, index in b or None)."""
    rows = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            rows += [(op, i, j) for i, j in zip(range(i1, i2), range(j1, j2))]
        else:
            rows += [(op, i, j) for i, j in zip_longest(range(i1, i2), range(j1, j2))]
    return rows


def token_cell(text: str | None, reward: float | None, scale: float) -> str:
    """Two table cells: a unit's display text (TokenRewards.tokens: invisible characters made visible) coloured by
    its reward, and the reward; both empty when text is None."""
    if text is None:
        return '<td></td><td class="num"></td>'
    r = float(reward or 0.0)
    return (f'<td><span class="tok" style="background:{viz.color(r, scale)};color:{viz.text_color(r, scale)}">'
            f'{esc(text)}</span></td><td class="num">{r:+.4f}</td>')


def _cell(tr, i, scale) -> str:
    return token_cell(None, None, scale) if i is None else token_cell(tr.tokens[i], tr.rewards[i], scale)


def aligned_table(a, b, *, scale: float, names=("chosen", "rejected"), show_special: bool = True) -> str:
    """Rows of aligned units of two results; equal units side by side, the others marked."""
    ia, ib = visible(a, show_special), visible(b, show_special)
    label = {"equal": "", "delete": f"only {names[0]}", "insert": f"only {names[1]}", "replace": "differs"}
    rows = []
    for op, i, j in align_pairs([a.tokens[k] for k in ia], [b.tokens[k] for k in ib]):
        i = None if i is None else ia[i]
        j = None if j is None else ib[j]
        diff = "" if i is None or j is None else f"{float(a.rewards[i]) - float(b.rewards[j]):+.4f}"
        rows.append(f'<tr class="{op}"><td class="op">{esc(label[op])}</td>{_cell(a, i, scale)}{_cell(b, j, scale)}'
                    f'<td class="num">{diff}</td></tr>')
    head = (f'<tr><th></th><th>{esc(names[0])}</th><th>reward</th><th>{esc(names[1])}</th><th>reward</th>'
            f'<th>{esc(names[0])} − {esc(names[1])}</th></tr>')
    return f'<div class="red-align"><table class="red-numbers">{head}{"".join(rows)}</table></div>'


def pair_summary(chosen, rejected) -> str:
    margin = chosen.score - rejected.score
    p = 1.0 / (1.0 + np.exp(-margin))
    verdict = ('<span class="ok">prefers the chosen response ✓</span>' if margin > 0 else
               '<span class="bad">prefers the rejected response ✗</span>' if margin < 0 else "has no preference")
    rows = [("R(x, chosen)", fmt(chosen.score)), ("R(x, rejected)", fmt(rejected.score)),
            ("margin", fmt(margin)), ("σ(margin)", f"{p:.3f}"), ("R(x, ∅)", fmt(chosen.baseline)),
            ("Σ rewards chosen", fmt(chosen.total)), ("Σ rewards rejected", fmt(rejected.total))]
    body = "".join(f'<tr><th>{esc(a)}</th><td class="num">{esc(b)}</td></tr>' for a, b in rows)
    return (f'<div class="red-box">The reward model {verdict}. σ(margin) is the Bradley–Terry probability '
            f'that chosen beats rejected.</div><table class="red-numbers">{body}</table>')


def deletion_figure(curves: dict):
    """Faithfulness for one text: score drop R(x, y) − R(x, y minus the top-k credited words) against k, one line
    per method (AOPC, the mean drop over k >= 1, in the legend); random word orders dashed, as the floor."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for k, (name, c) in enumerate(curves.items()):
        dashed = name == "random order"
        fig.add_scatter(x=c["k"], y=c["drops"], mode="lines+markers", name=f"{esc(name)} (AOPC {c['aopc']:+.3f})",
                        line={"dash": "dash", "color": "#888"} if dashed else {"color": line_colour(name, k)})
    fig.update_layout(title="Faithfulness: the score drop when each method's top-k credited words are deleted",
                      height=340, plot_bgcolor="#fff", margin={"l": 50, "r": 20, "t": 40, "b": 50},
                      xaxis={"title": "k (words deleted, highest credit first)", "dtick": 1},
                      yaxis={"title": "R(x, y) − R(x, y without them)", "zeroline": True},
                      legend={"orientation": "h", "y": -0.25})
    return fig
