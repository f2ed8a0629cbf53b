"""Pictures of token rewards: HTML heatmap, standalone report page, SVG and plotly plots, PNG. Returns, never shows.

Colour: a diverging scale symmetric around zero (red negative = lowered the reward, white zero, blue
positive = raised it); when several results are compared, pass one shared `scale` so equal colours mean
equal rewards. Line plots of methods, policies and training curves use METHOD_COLOURS, which holds no
red and no blue, so red and blue always mean lowered / raised reward.
HTML: inline CSS only (works offline, no CDN, no script), every token escaped, whitespace kept faithfully
(`white-space: pre-wrap`, with ↵ marking newlines), a tooltip (title) with id, text, reward and
prefix score, and one `<span class="tok">` per token carrying data-i, data-start, data-end (character
offsets) and data-prefix (prefix score). The heatmap box has its own light background and dark text; other
text styled here takes the page's text colour (`--body-text-color`), so a dark theme stays readable.
Plots with two y axes (reward bars, prefix-score line) put both zeros at the same height (`aligned_ranges`).
"""

from __future__ import annotations

import html

import numpy as np

from red_core import align

NEG = (178, 24, 43)  # red
POS = (33, 102, 172)  # blue
WHITE = (255, 255, 255)
METHOD_TITLES = {"red": "RED", "abc": "ABC", "sparse": "Sparse", "uniform": "Uniform"}
# Lines of methods / policies / training runs: no red and no blue (those mean lowered / raised reward).
METHOD_COLOURS = {
    "red": "#7b3294",  # purple
    "sparse": "#e08214",  # orange
    "uniform": "#1b7837",  # green
    "abc": "#8c510a",  # brown
    "occlusion": "#01665e",  # teal
    "ig": "#808000",  # olive
    "gxi": "#222222",  # near black
    "before": "#777777",  # grey
    "after": "#7b3294",  # purple, as RED (the bundled "after" policy is RED-trained)
    "base": "#777777",  # grey
}
LINE = "#333"  # the prefix-score line

CSS = """
.red-heatmap{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:15px;line-height:1.9;
  white-space:pre-wrap;word-break:break-word;color:#111;background:#fff;padding:10px;border:1px solid #ddd;border-radius:6px}
.red-heatmap .tok{border-radius:3px;padding:1px 0;box-shadow:inset 0 0 0 1px rgba(0,0,0,.06);cursor:help}
.red-heatmap .tok.empty{display:inline-block;min-width:4px;height:1em;vertical-align:middle}
.red-heatmap .tok.special{font-size:11px;color:#555;border:1px dashed #999;padding:0 3px;margin-left:2px}
.red-heatmap .tok.active{outline:2px solid #111}
.red-heatmap .nl{color:inherit;opacity:.55;font-size:11px}
.red-legend{font-family:system-ui,sans-serif;font-size:12px;color:var(--body-text-color,#333);margin:6px 0;display:flex;
  align-items:center;gap:6px;flex-wrap:wrap}
.red-legend .bar{width:220px;height:12px;border:1px solid #ccc;border-radius:2px;
  background:linear-gradient(to right,rgb(178,24,43),#fff,rgb(33,102,172))}
.red-summary{font-family:system-ui,sans-serif;font-size:13px;color:var(--body-text-color,#333);margin:4px 0}
.red-legend .mode{font-style:italic}
"""


def _rgb(value: float, scale: float) -> tuple[int, int, int]:
    x = 0.0 if scale <= 0 or not np.isfinite(value) else max(-1.0, min(1.0, value / scale))
    end = POS if x >= 0 else NEG
    a = abs(x)
    r, g, b = (round(w + (c - w) * a) for w, c in zip(WHITE, end))
    return r, g, b


def color(value: float, scale: float) -> str:
    """CSS rgb() for a reward on a symmetric scale [-scale, scale]."""
    return "rgb({},{},{})".format(*_rgb(value, scale))


def color_hex(value: float, scale: float) -> str:
    """The same colour as `color`, as #rrggbb (for matplotlib)."""
    return "#{:02x}{:02x}{:02x}".format(*_rgb(value, scale))


def text_color(value: float, scale: float) -> str:
    return "#fff" if scale > 0 and abs(value) / scale > 0.6 else "#111"


def symmetric_scale(*reward_arrays) -> float:
    """max |reward| over all arrays (1.0 when everything is zero): one scale for a comparison."""
    m = max((float(np.max(np.abs(r))) for r in reward_arrays if len(r)), default=0.0)
    return m if m > 0 else 1.0


def fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:+.4f}"


def legend_html(scale: float, unit: str = "token", mode: str | None = None) -> str:
    """The colour bar with its ends; `mode` (e.g. "this text", "fixed ±0.5", "shared across this session") says
    which scale the colours use."""
    which = f'<span class="mode">colour scale: {html.escape(mode)}</span>' if mode else ""
    return (f'<div class="red-legend"><span>{-scale:+.3g}</span><span class="bar"></span>'
            f'<span>{scale:+.3g}</span><span>reward per {html.escape(unit)} (symmetric scale; white = 0; '
            f'red lowered the reward, blue raised it)</span>{which}</div>')


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
        s, e = tr.offsets[i]
        where = f'data-i="{i}" data-start="{s}" data-end="{e}"'
        if upto is not None and i > upto:
            classes = "tok future" + (" special" if special else "") + (" empty" if text == "" else "")
            parts.append(f'<span class="{classes}" {where}>{_body(text, special)}</span>')
            continue
        r, p = float(tr.rewards[i]), float(tr.prefix_scores[i])
        ids = ",".join(map(str, tr.token_ids[i]))
        tip = f"#{i} · id {ids} · {text!r} · reward {r:+.4f} · prefix score {p:+.4f}"
        classes = "tok" + (" special" if special else "") + (" empty" if text == "" else "") + (" active" if i == active else "")
        parts.append(f'<span class="{classes}" {where} data-reward="{r:.6g}" data-prefix="{p:.6g}" '
                     f'style="background:{color(r, scale)};color:{text_color(r, scale)}" '
                     f'title="{html.escape(tip, quote=True)}">{_body(text, special)}</span>')
    return '<div class="red-heatmap">' + "".join(parts) + "</div>"


def _body(text: str, special: bool) -> str:
    """A token's text, escaped, with a visible ↵ before each newline of response text."""
    body = html.escape(text)
    return body.replace("\n", '<span class="nl">↵</span>\n') if not special and "\n" in text else body


def unit_name(tr) -> str:
    """What one unit of `tr` is called: token, word, sentence, or chunk (k-token units)."""
    return tr.granularity if tr.granularity in ("token", "word", "sentence") else "chunk"


def heatmap_html(tr, *, scale: float | None = None, show_special: bool = True, title: str | None = None,
                 full_page: bool = True, active: int | None = None, scale_mode: str | None = None) -> str:
    """Legend (saying `scale_mode` when given), summary line and heatmap; a page of its own, or a fragment."""
    scale = scale if scale is not None else symmetric_scale(tr.rewards)
    head = f"<h3 style='font-family:system-ui,sans-serif'>{html.escape(title)}</h3>" if title else ""
    body = (head + legend_html(scale, unit_name(tr), scale_mode) + summary_html(tr) +
            tokens_html(tr, scale=scale, show_special=show_special, active=active))
    if not full_page:
        return f"<style>{CSS}</style>{body}"
    doc_title = html.escape(title or f"Token rewards ({tr.method})")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{doc_title}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>")


# ----------------------------------------------------------------------------- two y axes, one zero


def aligned_ranges(a, b, pad: float = 0.08) -> tuple[tuple[float, float], tuple[float, float]]:
    """Ranges for two y axes that hold all of `a` and all of `b` (and 0) with 0 at the same height on both.

    Each axis's data spans [-n, p] around zero, its zero at height f_i = n / (n + p) from the bottom. A shared
    height f between them makes one axis longer below zero and the other longer above; f = f_hi / (1 + f_hi - f_lo)
    gives both axes the same share of their height for data, (1 - f) / (1 - f_lo) = f / f_hi, the most that both
    can have. An axis with no data takes the other's f. Both are then padded by `pad` of their span at each end
    (which keeps the zeros level)."""
    sides = []
    for values in (a, b):
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        sides.append((max(0.0, -float(v.min())) if v.size else 0.0, max(0.0, float(v.max())) if v.size else 0.0))
    fractions = sorted(n / (n + p) for n, p in sides if n + p > 0)
    f = fractions[-1] / (1.0 + fractions[-1] - fractions[0]) if fractions else 0.5
    out = []
    for n, p in sides:
        if n + p == 0:
            n, p = f, 1.0 - f
        elif n / (n + p) < f:  # so f > 0, and f < 1 (f lies between the two fractions)
            n = f * p / (1.0 - f)
        elif n / (n + p) > f:
            p = n * (1.0 - f) / f
        span = n + p
        out.append((-n - pad * span, p + pad * span))
    return out[0], out[1]


def _shown(tr, show_special: bool) -> list[int]:
    return [i for i in range(len(tr)) if show_special or not tr.special[i]]


def start_score(tr) -> float:
    """The prefix score before the first token: R(x, ∅), or 0 when it is undefined."""
    return float(tr.baseline) if tr.baseline is not None else 0.0


def rewards_figure(tr, *, title: str | None = None, show_special: bool = True, active: int | None = None):
    """Plotly: bars of unit rewards and the prefix-score line (right axis, zero level with the left one).

    x = positions among the shown units, tick labels = the units (escaped: plotly reads <b>, <br>, <a> as
    markup). `active` (a position among the shown units) is marked by a dotted line and an outlined bar."""
    import plotly.graph_objects as go

    idx = _shown(tr, show_special)
    x = list(range(len(idx)))
    rewards = [float(tr.rewards[i]) for i in idx]
    prefix = [start_score(tr)] + [float(tr.prefix_scores[i]) for i in idx]
    labels = [html.escape(tr.tokens[i]) for i in idx]
    unit = unit_name(tr)
    scale = symmetric_scale(np.array(rewards))
    (r_lo, r_hi), (p_lo, p_hi) = aligned_ranges(rewards, prefix)
    fig = go.Figure()
    fig.add_bar(x=x, y=rewards, name=f"{unit} reward", marker_color=[color(r, scale) for r in rewards],
                marker_line_color=["#111" if k == active else "#555" for k in x],
                marker_line_width=[3 if k == active else 0.5 for k in x], customdata=labels,
                hovertemplate="%{customdata}<br>reward %{y:+.4f}<extra></extra>")
    fig.add_scatter(x=[-1] + x, y=prefix, name="prefix score R(x, y≤t)",
                    mode="lines+markers", yaxis="y2", line={"color": LINE}, marker={"size": 4},
                    customdata=["(prompt only)"] + labels,
                    hovertemplate="%{customdata}<br>prefix score %{y:+.4f}<extra></extra>")
    if active is not None:
        fig.add_vline(x=active, line_width=2, line_dash="dot", line_color="#111")
    step = max(1, len(x) // 60)
    fig.update_layout(
        title=title or f"{METHOD_TITLES.get(tr.method, tr.method)}: reward per {unit}", height=360,
        margin={"l": 50, "r": 50, "t": 40, "b": 80},
        xaxis={"tickmode": "array", "tickvals": x[::step], "ticktext": labels[::step], "tickangle": -60},
        yaxis={"title": "reward", "zeroline": True, "range": [r_lo, r_hi]},
        yaxis2={"title": "prefix score", "overlaying": "y", "side": "right", "range": [p_lo, p_hi], "showgrid": False,
                "zeroline": False},
        legend={"orientation": "h", "y": 1.12}, plot_bgcolor="#fff", bargap=0.15)
    return fig


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Round tick values inside [lo, hi], 0 among them when it is inside."""
    raw = (hi - lo) / max(1, n - 1)
    if not raw > 0:
        return [lo]
    mag = 10 ** np.floor(np.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = np.ceil(lo / step) * step
    return [float(v) if abs(v) > step * 1e-9 else 0.0 for v in np.arange(first, hi + step * 1e-9, step)]


def _label(text: str, limit: int = 12) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def rewards_svg(tr, active: int | None = None, show_special: bool = True) -> str:
    """Inline SVG (no script, no links): reward bars coloured with `color`, a zero line, the prefix-score line on
    a right axis whose zero is level with the left one, the units as (escaped) labels, a tooltip per bar."""
    idx = _shown(tr, show_special)
    n = len(idx)
    rewards = [float(tr.rewards[i]) for i in idx]
    prefix = [start_score(tr)] + [float(tr.prefix_scores[i]) for i in idx]
    scale = symmetric_scale(np.array(rewards))
    (r_lo, r_hi), (p_lo, p_hi) = aligned_ranges(rewards, prefix)
    slot = float(min(64.0, max(8.0, 900.0 / (n + 1))))  # px per unit (one more for the prompt-only point)
    left, right, top, bottom = 64.0, 72.0, 30.0, 96.0
    width, height = left + right + slot * (n + 1), 340.0
    y0, y1 = top, height - bottom

    def x_at(k: int) -> float:  # k = -1 is the prompt-only point
        return left + slot * (k + 1) + slot / 2

    def y_r(v: float) -> float:
        return y1 - (v - r_lo) / (r_hi - r_lo) * (y1 - y0)

    def y_p(v: float) -> float:
        return y1 - (v - p_lo) / (p_hi - p_lo) * (y1 - y0)

    unit = unit_name(tr)
    font = 'font-family="system-ui,sans-serif" font-size="11"'
    out = [f'<svg class="red-plot" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.1f} {height:.1f}" '
           f'role="img" style="background:#fff;color:#222"><title>reward per {unit} and prefix score</title>',
           f'<rect x="{left}" y="{y0}" width="{width - left - right:.1f}" height="{y1 - y0:.1f}" fill="#fff" stroke="#ccc"/>']
    for v in _ticks(r_lo, r_hi):
        y = y_r(v)
        out.append(f'<line x1="{left - 4}" y1="{y:.1f}" x2="{width - right:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" {font} fill="#222">{v:+.3g}</text>')
    for v in _ticks(p_lo, p_hi):
        out.append(f'<text x="{width - right + 6:.1f}" y="{y_p(v) + 4:.1f}" {font} fill="{LINE}">{v:+.3g}</text>')
    for k, (i, r) in enumerate(zip(idx, rewards)):
        top_y, base_y = min(y_r(r), y_r(0.0)), max(y_r(r), y_r(0.0))
        stroke = 'stroke="#111" stroke-width="2.5"' if k == active else 'stroke="#555" stroke-width="0.5"'
        tip = f"#{i} {tr.tokens[i]!r}: reward {r:+.4f}, prefix score {float(tr.prefix_scores[i]):+.4f}"
        bar = min(slot * 0.84, 36.0)
        out.append(f'<rect x="{x_at(k) - bar / 2:.1f}" y="{top_y:.1f}" width="{bar:.1f}" '
                   f'height="{max(base_y - top_y, 0.5):.1f}" fill="{color(r, scale)}" {stroke}>'
                   f'<title>{html.escape(tip)}</title></rect>')
    zero = y_r(0.0)
    out.append(f'<line x1="{left}" y1="{zero:.1f}" x2="{width - right:.1f}" y2="{zero:.1f}" stroke="#222" '
               f'stroke-width="1"/>')
    if active is not None and 0 <= active < n:
        out.append(f'<line x1="{x_at(active):.1f}" y1="{y0}" x2="{x_at(active):.1f}" y2="{y1}" stroke="#111" '
                   f'stroke-width="1.5" stroke-dasharray="3,3"/>')
    points = " ".join(f"{x_at(k - 1):.1f},{y_p(v):.1f}" for k, v in enumerate(prefix))
    out.append(f'<polyline points="{points}" fill="none" stroke="{LINE}" stroke-width="1.5"/>')
    out += [f'<circle cx="{x_at(k - 1):.1f}" cy="{y_p(v):.1f}" r="2.2" fill="{LINE}"/>' for k, v in enumerate(prefix)]
    every = max(1, int(np.ceil(13.0 / slot)))
    for k, i in enumerate(idx):
        if k % every == 0:
            x, y = x_at(k), y1 + 8
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" transform="rotate(-60 {x:.1f} {y:.1f})" text-anchor="end" '
                       f'{font} fill="#222">{html.escape(_label(tr.tokens[i]))}</text>')
    mid = (y0 + y1) / 2
    out.append(f'<text x="14" y="{mid:.1f}" transform="rotate(-90 14 {mid:.1f})" text-anchor="middle" {font} '
               f'fill="#222">reward per {unit}</text>'
               f'<text x="{width - 12:.1f}" y="{mid:.1f}" transform="rotate(90 {width - 12:.1f} {mid:.1f})" '
               f'text-anchor="middle" {font} fill="{LINE}">prefix score R(x, y≤t)</text>'
               f'<text x="{left}" y="18" {font} fill="#222">bars: reward per {unit} (red lowered, blue raised) · '
               f'line: prefix score from R(x, ∅)</text>')
    return "".join(out) + "</svg>"


# ----------------------------------------------------------------------------- the standalone page

REPORT_CSS = """
body{font-family:system-ui,sans-serif;color:#222;background:#fff;margin:20px;max-width:1200px}
.red-head{border:1px solid #ddd;border-radius:6px;padding:8px 12px;background:#fafafa;margin-bottom:10px}
.red-head table{border-collapse:collapse;font-size:13px}
.red-head th{text-align:left;padding:2px 12px 2px 0;vertical-align:top;font-weight:600;white-space:nowrap}
.red-head td{padding:2px 0}
.red-head .prompt{white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace}
.red-plotbox{overflow-x:auto;margin:10px 0}
.red-table{border-collapse:collapse;font-size:12px;margin-top:10px}
.red-table th,.red-table td{border-bottom:1px solid #eee;padding:1px 10px;text-align:right}
.red-table th.text{text-align:left}
.red-table td.text{text-align:left;font-family:ui-monospace,Menlo,Consolas,monospace;white-space:pre}
.red-warnings{color:#8a5300;font-size:13px}
"""


def header_html(tr) -> str:
    """The run, as a table: prompt, model, method, parameters, granularity, R(x, y), R(x, ∅), Σ, expected, check."""
    import json

    c = tr.check()
    verdict = ("✓ the rewards add up to what the method promises" if c["ok"] else
               f"not a split of the score: {c['note']}" if c["ok"] is None else "✗ the rewards do not add up")
    diff = "n/a" if c["difference"] is None else f"{c['difference']:+.2e}"
    rows = [("prompt", f'<span class="prompt">{html.escape(tr.prompt) or "(none)"}</span>'),
            ("model", html.escape(str(tr.model) or "?")), ("method", html.escape(tr.method)),
            ("parameters", html.escape(json.dumps(tr.params, ensure_ascii=False, sort_keys=True, default=str))),
            ("granularity", html.escape(str(tr.granularity))), ("R(x, y)", fmt(c["score"])),
            ("R(x, ∅)", fmt(c["baseline"])), ("Σ rewards", fmt(c["sum"])), ("expected", fmt(c["expected"])),
            ("check", f"Σ − expected = {diff} · {html.escape(verdict)}")]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    warn = "".join(f"<div>⚠ {html.escape(w)}</div>" for w in dict.fromkeys(tr.warnings))
    return f'<div class="red-head"><table>{body}</table><div class="red-warnings">{warn}</div></div>'


def numbers_table_html(tr, show_special: bool = True) -> str:
    """Index, unit (display text, escaped), reward and prefix score of every shown unit."""
    rows = "".join(f'<tr><td>{i}</td><td class="text">{html.escape(tr.tokens[i])}</td>'
                   f"<td>{float(tr.rewards[i]):+.6f}</td><td>{float(tr.prefix_scores[i]):+.6f}</td></tr>"
                   for i in _shown(tr, show_special))
    return (f'<table class="red-table"><tr><th>#</th><th class="text">{unit_name(tr)}</th><th>reward</th><th>prefix score</th></tr>'
            f"{rows}</table>")


def report_html(tr, *, scale: float | None = None, show_special: bool = True, title: str | None = None,
                scale_mode: str | None = None) -> str:
    """A standalone page (no script, no network): the run's header, the heatmap, the SVG plot, the numbers."""
    scale = scale if scale is not None else symmetric_scale(tr.rewards)
    doc_title = html.escape(title or f"Token rewards ({tr.method}, {tr.granularity})")
    body = (f"<h2>{doc_title}</h2>" + header_html(tr) + legend_html(scale, unit_name(tr), scale_mode) +
            tokens_html(tr, scale=scale, show_special=show_special) +
            f'<div class="red-plotbox">{rewards_svg(tr, show_special=show_special)}</div>' +
            numbers_table_html(tr, show_special))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{doc_title}</title>"
            f"<style>{CSS}{REPORT_CSS}</style></head><body>{body}</body></html>")


# ----------------------------------------------------------------------------- PNG for slides


def _pieces(tr, show_special: bool) -> list[tuple[int, str, bool]]:
    """(unit index, text to draw, line break after) for each piece of each shown unit; newlines become ↵ + break."""
    out = []
    for i, (text, special) in enumerate(zip(tr.texts, tr.special)):
        if special and not show_special:
            continue
        if special or "\n" not in text:
            out.append((i, align.display(text) if special else text.replace("\t", "⇥"), False))
            continue
        lines = text.replace("\t", "⇥").split("\n")
        for k, line in enumerate(lines):
            last = k == len(lines) - 1
            if not last or line:
                out.append((i, line if last else line + "↵", not last))
    return out


def heatmap_png(tr, path=None, *, scale: float | None = None, show_special: bool = True, width_in: float = 12,
                dpi: int = 150) -> bytes:
    """The heatmap as a PNG (matplotlib, Agg): R(x, y) / R(x, ∅) line and colour legend at the top, then each
    unit as a coloured box, wrapped to the width, newlines kept (↵ marks them). Width = width_in * dpi pixels."""
    import io
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Rectangle

    scale = scale if scale is not None else symmetric_scale(tr.rewards)
    pt = dpi / 72.0  # pixels per point
    mono, small, sans = (FontProperties(family="DejaVu Sans Mono", size=12),
                         FontProperties(family="DejaVu Sans Mono", size=8), FontProperties(family="DejaVu Sans", size=11))
    fig = Figure(figsize=(width_in, 2), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()

    def text_width(s: str, prop) -> float:
        return renderer.get_text_width_height_descent(s, prop, ismath=False)[0] if s else 0.0

    width = width_in * dpi
    margin, line_h, pad = 0.25 * dpi, 12 * pt * 1.75, 2 * pt
    usable = width - 2 * margin
    boxes, x, row = [], 0.0, 0  # (unit index, text, x, row, box width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # glyphs the bundled fonts lack (CJK, emoji) are drawn as boxes
        for i, text, newline in _pieces(tr, show_special):
            prop = small if tr.special[i] else mono
            while True:
                cut = len(text)
                while cut > 1 and text_width(text[:cut], prop) + 2 * pad > usable:
                    cut = max(1, cut * 3 // 4)  # a unit longer than a line is split
                w = max(text_width(text[:cut], prop) + 2 * pad, 4 * pt)
                if x > 0 and x + w > usable:
                    x, row = 0.0, row + 1
                boxes.append((i, text[:cut], x, row, w))
                x += w
                text = text[cut:]
                if not text:
                    break
            if newline:
                x, row = 0.0, row + 1
        head_h = 2.4 * line_h
        height = margin * 2 + head_h + (row + 1) * line_h
        fig.set_size_inches(width_in, height / dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.axis("off")
        c = tr.check()
        mark = "✓" if c["ok"] else "" if c["ok"] is None else "✗"
        model = str(tr.model) if len(str(tr.model)) <= 40 else "…" + str(tr.model)[-39:]
        summary = (f"R(x, y) = {fmt(c['score'])}   R(x, ∅) = {fmt(c['baseline'])}   Σ rewards = {fmt(c['sum'])}   "
                   f"expected {fmt(c['expected'])} {mark}   ({tr.method}, {unit_name(tr)}s, {model})")
        ax.text(margin, margin + line_h * 0.5, summary, fontproperties=sans, va="center", parse_math=False)
        bar_y, bar_w = margin + line_h * 1.2, 2.2 * dpi
        gradient = np.linspace(-1, 1, 256)[None, :]  # (1, 256)
        rgb = np.array([[_rgb(v, 1.0) for v in gradient[0]]]) / 255.0  # (1, 256, 3)
        label_w = text_width(f"{-scale:+.3g} ", sans)
        ax.imshow(rgb, extent=(margin + label_w, margin + label_w + bar_w, bar_y + line_h * 0.6, bar_y), aspect="auto")
        ax.add_patch(Rectangle((margin + label_w, bar_y), bar_w, line_h * 0.6, fill=False, edgecolor="#999", lw=0.6))
        mid = bar_y + line_h * 0.3
        ax.text(margin, mid, f"{-scale:+.3g}", fontproperties=sans, va="center", parse_math=False)
        ax.text(margin + label_w + bar_w + 4 * pt, mid, f"{scale:+.3g}   reward per {unit_name(tr)} (white = 0; red "
                f"lowered the reward, blue raised it)", fontproperties=sans, va="center", parse_math=False)
        y_top = margin + head_h
        for i, text, bx, brow, w in boxes:
            r = float(tr.rewards[i])
            y = y_top + brow * line_h
            special = tr.special[i]
            ax.add_patch(Rectangle((margin + bx, y + line_h * 0.1), w, line_h * 0.8, facecolor=color_hex(r, scale),
                                   edgecolor="#888" if special else "#00000010", lw=0.8 if special else 0.4,
                                   linestyle="--" if special else "-"))
            ax.text(margin + bx + pad, y + line_h * 0.5, text, fontproperties=small if special else mono, va="center",
                    color="#444" if special else text_color(r, scale), parse_math=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    data = buf.getvalue()
    if path is not None:
        with open(path, "wb") as f:
            f.write(data)
    return data
