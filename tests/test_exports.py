"""Exports that stand alone (CSV, JSON, HTML page, SVG, PNG) and the pictures' conventions (axes, colours, legend)."""

import colorsys
import html
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import red_core
from red_core import viz
from red_core.result import TokenRewards

PROMPT = "=Rate this, please:\n<i>honestly</i> "
RESPONSE = "The movie was great, <b>x</b> & fun.\nThe end\twas sad."
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def tr(rm_qwen_chat):
    return red_core.token_rewards(rm_qwen_chat, PROMPT, RESPONSE, granularity="word")


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ----------------------------------------------------------------------------- CSV and JSON


def test_csv_rows_carry_the_run(tr, tmp_path):
    tr.to_csv(tmp_path / "t.csv")
    df = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    assert list(df.columns[:8]) == ["text", "token", "start", "end", "ids", "special", "reward", "prefix_score"]
    assert list(df.columns[8:]) == list(TokenRewards.CSV_RUN_COLUMNS)
    assert len(df) == len(tr)
    c = tr.check()
    assert set(df["prompt"]) == {"'" + PROMPT}  # spreadsheet-safe: a leading = is neutralised
    assert set(df["model"]) == {tr.model} and set(df["method"]) == {"red"} and set(df["granularity"]) == {"word"}
    assert all(json.loads(p) == tr.params for p in df["params"])
    for col, want in (("score", tr.score), ("baseline", tr.baseline), ("check_sum", c["sum"]),
                      ("check_expected", c["expected"])):
        assert df[col].tolist() == [want] * len(tr)  # full precision: CSV writes repr of the floats
    assert df["check_ok"].tolist() == [True] * len(tr)
    assert df["reward"].tolist() == tr.rewards.tolist()


def test_csv_of_an_attribution_leaves_the_check_empty(rm_llama):
    occ = red_core.token_rewards(rm_llama, "q", "fine words", method="occlusion")
    df = pd.read_csv(io.StringIO(occ.to_csv()), keep_default_na=False)
    assert set(df["check_ok"]) == {""} and set(df["method"]) == {"occlusion"}


def test_json_has_the_check_and_still_round_trips(tr):
    d = json.loads(tr.to_json())
    assert d["check"] == json.loads(json.dumps(tr.check())) and d["check"]["ok"] is True
    back = TokenRewards.from_json(tr.to_json())
    assert back.texts == tr.texts and back.offsets == tr.offsets and back.check() == tr.check()
    np.testing.assert_array_equal(back.prefix_scores, tr.prefix_scores)
    d["check"] = {"ok": "ignored on read"}
    assert TokenRewards.from_dict(d).check() == tr.check()


# ----------------------------------------------------------------------------- HTML page and SVG


def test_html_page_is_standalone_and_escaped(tr):
    page = tr.to_html()
    assert html.escape(PROMPT) in page and "<i>honestly" not in page
    for line in ("model", "method", "parameters", "granularity", "R(x, y)", "R(x, ∅)", "Σ rewards", "expected", "check"):
        assert f"<th>{html.escape(line)}</th>" in page
    assert page.count("<svg") == 1 and "</svg>" in page and 'class="red-table"' in page
    assert "<script" not in page and not re.search(r"https?://", page)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert page.count('class="tok') == len(tr)
    # numbers table: one row per unit, with reward and prefix score at full shown precision
    for i in range(len(tr)):
        assert f"<td>{i}</td><td class=\"text\">{html.escape(tr.tokens[i])}</td><td>{tr.rewards[i]:+.6f}</td>" in page


def test_svg_bars_colours_labels_and_active(tr):
    svg = viz.rewards_svg(tr, active=2)
    assert svg.startswith("<svg") and "<script" not in svg and "href" not in svg
    assert "<b>x</b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
    fills = re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="[^"]+" fill="(rgb\([^"]+\))"', svg)
    scale = viz.symmetric_scale(tr.rewards)
    assert fills == [viz.color(float(r), scale) for r in tr.rewards]
    assert svg.count('stroke-width="2.5"') == 1 and 'stroke-dasharray="3,3"' in svg
    assert len(re.findall(r"<circle ", svg)) == len(tr) + 1  # the prompt-only point, then every prefix
    hidden = viz.rewards_svg(tr, show_special=False)
    assert len(re.findall(r"<circle ", hidden)) == len(tr) + 1 - sum(tr.special)


def test_heatmap_spans_carry_offsets_and_prefix_scores(tr):
    body = viz.tokens_html(tr, scale=1.0)
    spans = re.findall(r'data-i="(\d+)" data-start="(\d+)" data-end="(\d+)" data-reward="[^"]+" data-prefix="([^"]+)"',
                       body)
    assert [int(i) for i, *_ in spans] == list(range(len(tr)))
    assert [(int(s), int(e)) for _, s, e, _ in spans] == tr.offsets
    np.testing.assert_allclose([float(p) for *_, p in spans], tr.prefix_scores, rtol=1e-5)
    future = viz.tokens_html(tr, scale=1.0, upto=0)
    assert f'data-i="1" data-start="{tr.offsets[1][0]}" data-end="{tr.offsets[1][1]}"' in future


def test_legend_says_which_scale(tr):
    assert "colour scale" not in viz.legend_html(0.5)
    legend = viz.legend_html(0.5, "word", mode="fixed ±0.5 <i>")
    assert "colour scale: fixed ±0.5 &lt;i&gt;" in legend and "reward per word" in legend
    assert "colour scale: this text" in viz.heatmap_html(tr, full_page=False, scale_mode="this text")


# ----------------------------------------------------------------------------- PNG


def test_png_has_the_signature_width_and_honours_newlines(tr, tmp_path):
    data = viz.heatmap_png(tr, tmp_path / "h.png", width_in=4, dpi=50)
    assert png_size(data)[0] == 200 and (tmp_path / "h.png").read_bytes() == data
    assert png_size(tr.to_png())[0] == 12 * 150
    one_line = TokenRewards.from_dict({**tr.to_dict(), "response": RESPONSE.replace("\n", " "),
                                       "tokens": [{**t, "text": t["text"].replace("\n", " ")} for t in tr.rows()]})
    taller, shorter = png_size(viz.heatmap_png(tr, dpi=50))[1], png_size(viz.heatmap_png(one_line, dpi=50))[1]
    assert taller > shorter  # the newline starts a new line of boxes


# ----------------------------------------------------------------------------- axes and colours


@pytest.mark.parametrize("a, b", [([0.5, -0.2, 0.1], [3.0, 2.5, 4.0]), ([-1, -2], [5, 6]), ([0, 0], [-3, 1]),
                                  ([2.0, 1.0], [-4.0, -3.0]), ([0.0], [0.0]), ([-0.1, 0.3], [-8.0, 2.0])])
def test_axis_ranges_put_both_zeros_at_the_same_height(a, b):
    (lo1, hi1), (lo2, hi2) = viz.aligned_ranges(a, b)
    assert -lo1 / (hi1 - lo1) == pytest.approx(-lo2 / (hi2 - lo2), abs=1e-12)
    assert lo1 < min(a + [0]) <= max(a + [0]) < hi1 or a == [0.0] and lo1 < 0 < hi1
    assert lo2 < min(b + [0]) <= max(b + [0]) < hi2 or b == [0.0] and lo2 < 0 < hi2
    if any(a) and any(b):  # both sets of data fill the same share of their axis (no axis squashed for the other)
        share_a = (max(a + [0]) - min(a + [0])) / (hi1 - lo1)
        assert share_a == pytest.approx((max(b + [0]) - min(b + [0])) / (hi2 - lo2), abs=1e-12)
        assert share_a >= 0.5 / (1 + 2 * 0.08) - 1e-12  # at worst half (one axis all negative, the other positive)


def test_rewards_figure_aligns_zeros_and_marks_the_active_unit(tr):
    fig = viz.rewards_figure(tr, active=3)
    (lo1, hi1), (lo2, hi2) = fig.layout.yaxis.range, fig.layout.yaxis2.range
    assert -lo1 / (hi1 - lo1) == pytest.approx(-lo2 / (hi2 - lo2), abs=1e-12)
    assert lo1 < tr.rewards.min() and hi1 > tr.rewards.max()
    assert lo2 < min(tr.prefix_scores.min(), tr.baseline) and hi2 > max(tr.prefix_scores.max(), tr.baseline)
    widths = list(fig.data[0].marker.line.width)
    assert widths[3] > 1 and sum(w > 1 for w in widths) == 1
    assert [s.x0 for s in fig.layout.shapes] == [3] and fig.layout.shapes[0].line.dash == "dot"
    assert not viz.rewards_figure(tr).layout.shapes


def test_method_colours_hold_no_red_and_no_blue():
    assert set(viz.METHOD_COLOURS) == {"red", "sparse", "uniform", "abc", "occlusion", "ig", "gxi", "before", "after",
                                       "base"}
    for name, hex_colour in viz.METHOD_COLOURS.items():
        r, g, b = (int(hex_colour[k:k + 2], 16) / 255 for k in (1, 3, 5))
        hue, _, sat = colorsys.rgb_to_hls(r, g, b)
        hue *= 360
        assert sat < 0.25 or not (hue < 20 or hue > 340), f"{name} looks red"
        assert sat < 0.25 or not 190 < hue < 255, f"{name} looks blue"


def test_css_text_reads_on_a_dark_page():
    rules = dict(re.findall(r"(\.red-[\w-]+)\{([^}]*)\}", viz.CSS))
    assert "background:#fff" in rules[".red-heatmap"] and "color:#111" in rules[".red-heatmap"]
    for selector in (".red-legend", ".red-summary"):
        assert "color:var(--body-text-color," in rules[selector]


# ----------------------------------------------------------------------------- in a real browser


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")
def test_page_renders_offline_and_reads_in_a_dark_theme(tr, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    report = tmp_path / "report.html"
    report.write_text(tr.to_html(), encoding="utf-8")
    dark = tmp_path / "dark.html"
    dark.write_text("<!doctype html><html><head><meta charset='utf-8'></head>"
                    "<body style='background:#0b0f19;color:#f3f4f6;--body-text-color:#f3f4f6'>"
                    + viz.heatmap_html(tr, full_page=False, scale_mode="this text") + "</body></html>", encoding="utf-8")
    contrast_js = """() => {
      const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
      const lum = c => { const v = c.slice(0, 3).map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
                         return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
      const bg = el => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
                         if (c.length === 3 || c[3] > 0.5) return c; } return [255, 255, 255]; };
      const out = [];
      for (const el of document.querySelectorAll('body *')) {
        const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
        if (!own) continue;
        const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
        out.push([el.className, (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
      }
      return out; }"""
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(report.as_uri())
            box = page.locator("svg.red-plot").bounding_box()
            assert box and box["width"] > 300 and box["height"] > 200
            assert page.locator("svg.red-plot rect[fill^='rgb']").count() == len(tr)
            assert page.locator(".red-heatmap .tok").count() == len(tr)
            assert requests == [report.as_uri()]  # nothing else asked for: works offline
            page.goto(dark.as_uri())
            contrasts = page.evaluate(contrast_js)
            assert contrasts and all(ratio >= 3 for _, ratio in contrasts), contrasts
        finally:
            browser.close()
