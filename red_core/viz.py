"""Pictures of token rewards: a self-contained HTML heatmap and plotly figures. Returns, never shows.

Colour: a diverging scale symmetric around zero (red negative, white zero, blue positive); when
several results are compared, pass one shared `scale` so equal colours mean equal rewards.
HTML: inline CSS only (works offline, no CDN), every token escaped, whitespace kept faithfully
(`white-space: pre-wrap`, with ↵ marking newlines), a tooltip (title) with id, text, reward and
prefix score, and one `<span class="tok">` per token.
"""

from __future__ import annotations

import html

import numpy as np

NEG = (178, 24, 43)  # red
POS = (33, 102, 172)  # blue
WHITE = (255, 255, 255)
METHOD_TITLES = {"red": "RED", "abc": "ABC", "sparse": "Sparse", "uniform": "Uniform"}

CSS = """
.red-heatmap{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:15px;line-height:1.9;
  white-space:pre-wrap;word-break:break-word;color:#111;background:#fff;padding:10px;border:1px solid #ddd;border-radius:6px}
.red-heatmap .tok{border-radius:3px;padding:1px 0;box-shadow:inset 0 0 0 1px rgba(0,0,0,.06);cursor:help}
.red-heatmap .tok.empty{display:inline-block;min-width:4px;height:1em;vertical-align:middle}
.red-heatmap .tok.special{font-size:11px;color:#555;border:1px dashed #999;padding:0 3px;margin-left:2px}
.red-heatmap .tok.active{outline:2px solid #111}
.red-heatmap .nl{color:#999;font-size:11px}
.red-legend{font-family:system-ui,sans-serif;font-size:12px;color:#333;margin:6px 0;display:flex;align-items:center;gap:6px}
.red-legend .bar{width:220px;height:12px;border:1px solid #ccc;border-radius:2px;
  background:linear-gradient(to right,rgb(178,24,43),#fff,rgb(33,102,172))}
.red-summary{font-family:system-ui,sans-serif;font-size:13px;color:#333;margin:4px 0}
"""


def color(value: float, scale: float) -> str:
    """CSS rgb() for a reward on a symmetric scale [-scale, scale]."""
    x = 0.0 if scale <= 0 or not np.isfinite(value) else max(-1.0, min(1.0, value / scale))
    end = POS if x >= 0 else NEG
    a = abs(x)
    r, g, b = (round(w + (c - w) * a) for w, c in zip(WHITE, end))
    return f"rgb({r},{g},{b})"


def text_color(value: float, scale: float) -> str:
    return "#fff" if scale > 0 and abs(value) / scale > 0.6 else "#111"


def symmetric_scale(*reward_arrays) -> float:
    """max |reward| over all arrays (1.0 when everything is zero): one scale for a comparison."""
    m = max((float(np.max(np.abs(r))) for r in reward_arrays if len(r)), default=0.0)
    return m if m > 0 else 1.0


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.4f}"


def legend_html(scale: float, unit: str = "token") -> str:
    return (f'<div class="red-legend"><span>{-scale:+.3g}</span><span class="bar"></span>'
            f'<span>{scale:+.3g}</span><span>reward per {html.escape(unit)} (symmetric scale; white = 0)</span></div>')


def summary_html(tr) -> str:
    c = tr.check()
    mark = "✓" if c["ok"] else f"({html.escape(c['note'])})" if c["ok"] is None else "✗"
    return (f'<div class="red-summary">R(x, y) = {fmt(c["score"])} · R(x, ∅) = {fmt(c["baseline"])} · '
            f'sum of rewards = {fmt(c["sum"])} · expected {fmt(c["expected"])} {mark}</div>')


def tokens_html(tr, *, scale: float, show_special: bool = True, active: int | None = None,
                upto: int | None = None) -> str:
    """The heatmap body: one span per token, escaped, with a tooltip. `active` outlines one token; with
    `upto`, tokens after it are "future" ones (class `future`, no colour, no tooltip), as in a step-through."""
    parts = []
    for i, (text, special) in enumerate(zip(tr.texts, tr.special)):
        if special and not show_special:
            continue
        if upto is not None and i > upto:
            classes = "tok future" + (" special" if special else "") + (" empty" if text == "" else "")
            parts.append(f'<span class="{classes}" data-i="{i}">{_body(text, special)}</span>')
            continue
        r, p = float(tr.rewards[i]), float(tr.prefix_scores[i])
        ids = ",".join(map(str, tr.token_ids[i]))
        tip = f"#{i} · id {ids} · {text!r} · reward {r:+.4f} · prefix score {p:+.4f}"
        classes = "tok" + (" special" if special else "") + (" empty" if text == "" else "") + (" active" if i == active else "")
        parts.append(f'<span class="{classes}" data-i="{i}" data-reward="{r:.6g}" '
                     f'style="background:{color(r, scale)};color:{text_color(r, scale)}" '
                     f'title="{html.escape(tip, quote=True)}">{_body(text, special)}</span>')
    return '<div class="red-heatmap">' + "".join(parts) + "</div>"


def _body(text: str, special: bool) -> str:
    """A token's text, escaped, with a visible ↵ before each newline of response text."""
    body = html.escape(text)
    return body.replace("\n", '<span class="nl">↵</span>\n') if not special and "\n" in text else body


def heatmap_html(tr, *, scale: float | None = None, show_special: bool = True, title: str | None = None,
                 full_page: bool = True, active: int | None = None) -> str:
    scale = scale if scale is not None else symmetric_scale(tr.rewards)
    head = f"<h3 style='font-family:system-ui,sans-serif'>{html.escape(title)}</h3>" if title else ""
    unit = tr.granularity if tr.granularity in ("token", "word", "sentence") else "chunk"
    body = (head + legend_html(scale, unit) + summary_html(tr) +
            tokens_html(tr, scale=scale, show_special=show_special, active=active))
    if not full_page:
        return f"<style>{CSS}</style>{body}"
    doc_title = html.escape(title or f"Token rewards ({tr.method})")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{doc_title}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")


def rewards_figure(tr, *, title: str | None = None, show_special: bool = True):
    """Plotly: bars of token rewards and the prefix-score line. x = positions, tick labels = tokens."""
    import plotly.graph_objects as go

    idx = [i for i in range(len(tr)) if show_special or not tr.special[i]]
    x = list(range(len(idx)))
    rewards = [float(tr.rewards[i]) for i in idx]
    labels = [html.escape(tr.tokens[i]) for i in idx]  # plotly reads <b>, <br>, <a> in labels as markup
    unit = tr.granularity if tr.granularity in ("token", "word", "sentence") else "chunk"
    scale = symmetric_scale(np.array(rewards))
    fig = go.Figure()
    fig.add_bar(x=x, y=rewards, name=f"{unit} reward", marker_color=[color(r, scale) for r in rewards],
                marker_line_color="#555", marker_line_width=0.5, customdata=labels,
                hovertemplate="%{customdata}<br>reward %{y:+.4f}<extra></extra>")
    start = tr.baseline if tr.baseline is not None else 0.0
    fig.add_scatter(x=[-1] + x, y=[start] + [float(tr.prefix_scores[i]) for i in idx], name="prefix score R(x, y≤t)",
                    mode="lines+markers", yaxis="y2", line={"color": "#333"}, marker={"size": 4},
                    customdata=["(prompt only)"] + labels,
                    hovertemplate="%{customdata}<br>prefix score %{y:+.4f}<extra></extra>")
    step = max(1, len(x) // 60)
    fig.update_layout(
        title=title or f"{METHOD_TITLES.get(tr.method, tr.method)}: reward per {unit}", height=360, margin={"l": 50, "r": 50, "t": 40, "b": 80},
        xaxis={"tickmode": "array", "tickvals": x[::step], "ticktext": labels[::step], "tickangle": -60},
        yaxis={"title": "reward", "zeroline": True}, yaxis2={"title": "prefix score", "overlaying": "y", "side": "right"},
        legend={"orientation": "h", "y": 1.12}, plot_bgcolor="#fff", bargap=0.15)
    return fig
