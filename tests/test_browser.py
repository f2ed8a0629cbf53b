"""One real browser (Debian chromium driven by Python playwright) against the launched app.

Types a prompt and a response, clicks Score, checks the heatmap has one coloured element per token,
that the page asked no other host for anything (no CDN), that a response full of HTML renders as
text, and that the step-through moves. A second app in public mode checks that a typed server path
(an existing folder, a file, a missing path) or an unlisted hub id gets one identical refusal in a
toast that names none of them, and that scoring still works; markup typed as a model name shows as
text in the toast. On the Dataset tab, scoring a small demo file shows the top-words tables and the
figures, and a click on a row of the examples table opens that row in Explore. Screenshots go to a
temporary folder, or to $RED_SCREENSHOT_DIR when set (bench/results/ keeps the ones described in the
issue note).
"""

import json
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is missing (apt-get install chromium)")

PROMPT = "Tell me about your day.\n"
RESPONSE = "It was a wonderful day.\nI am  very happy!"
XSS = 'Hi <script>window.__xss=1</script><img src=x onerror="window.__xss=2"> <b>bold</b>'


@pytest.fixture(scope="module")
def app_url(model_dir, tmp_path_factory, serve_app):
    from app.context import AppContext
    from app.ui import build_app, launch_kwargs

    ctx = AppContext.create(model_dir("qwen2", chat=True), files_dir=tmp_path_factory.mktemp("downloads"))
    with serve_app(build_app(ctx), **launch_kwargs()) as url:
        yield url, ctx


@pytest.fixture(scope="module")
def public_app_url(tmp_path_factory, serve_app):
    """The app as a Space runs it: public mode, the bundled default models (assets/models, offline)."""
    from app.context import AppContext
    from app.ui import build_app, launch_kwargs

    ctx = AppContext.create(public=True, examples=[], files_dir=tmp_path_factory.mktemp("public-downloads"))
    with serve_app(build_app(ctx), **launch_kwargs()) as url:
        yield url, ctx


@pytest.fixture(scope="module")
def browser():
    """One chromium for the module (playwright's sync API cannot be started twice at once)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, url, width=1400, height=1000):
    pg = browser.new_page(viewport={"width": width, "height": height})
    pg.foreign = []  # requests to any host but the app's
    pg.dialogs = []
    host = urlparse(url).hostname
    pg.on("request", lambda r: urlparse(r.url).hostname not in (host, None) and pg.foreign.append(r.url))
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.goto(url, wait_until="load")
    pg.wait_for_selector("#score-btn", timeout=30_000)
    return pg


@pytest.fixture(scope="module")
def page(browser, app_url):
    pg = open_page(browser, app_url[0])
    yield pg
    pg.close()


@pytest.fixture(scope="module")
def public_page(browser, public_app_url):
    pg = open_page(browser, public_app_url[0], width=1280, height=900)
    yield pg
    pg.close()


def shot(pg, tmp_path, name, full_page=True):
    path = tmp_path / name
    pg.screenshot(path=str(path), full_page=full_page)
    keep = os.environ.get("RED_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


HEATMAP_SHOWS = ("r => { const e = document.querySelector('#heatmap .red-heatmap');"
                 " return e && e.textContent.replace(/↵/g, '').startsWith(r); }")


def score(pg, prompt, response):
    """Fill both boxes, click Score, wait until the heatmap shows this response."""
    pg.fill("#prompt textarea", prompt)
    pg.fill("#response textarea", response)
    pg.click("#score-btn")
    pg.wait_for_function(HEATMAP_SHOWS, arg=response, timeout=20_000)


def test_type_score_and_see_one_coloured_element_per_token(page, app_url, tmp_path):
    import red_core

    _, ctx = app_url
    score(page, PROMPT, RESPONSE)
    expected = red_core.token_rewards(ctx.reward_models.get(ctx.default_rm), PROMPT, RESPONSE)
    toks = page.locator("#heatmap .tok")
    assert toks.count() == len(expected)
    colours = toks.evaluate_all("els => els.map(e => getComputedStyle(e).backgroundColor)")
    assert all(c.startswith("rgb") and c != "rgba(0, 0, 0, 0)" for c in colours)
    assert len(set(colours)) > 1  # a diverging scale, not one flat colour
    title = toks.first.get_attribute("title")
    assert "id" in title and "reward" in title and "prefix score" in title
    text = page.inner_text("#heatmap")
    assert "wonderful" in text and "very happy" in text
    assert "✓" in page.inner_text("#numbers")
    page.wait_for_selector("#rewards-plot .js-plotly-plot", timeout=20_000)
    # step-through: the first token is outlined, ▶ moves on
    page.wait_for_selector("#step-view .tok.active")
    page.click("#step-next")
    page.wait_for_function("() => document.querySelector('#step-view').innerText.includes('token 2 of ')")
    assert page.locator("#step-view .tok.active").count() == 1
    page.wait_for_function("() => { const b = document.querySelectorAll('#rewards-plot .point path');"  # the plot
                           " return b.length > 1 && getComputedStyle(b[1]).strokeWidth === '3px'; }",  # marks it
                           timeout=10_000)
    path = shot(page, tmp_path, "app-explore.png")
    assert path.stat().st_size > 10_000
    assert page.foreign == [], f"the page fetched from other hosts: {page.foreign[:5]}"


def test_html_in_a_response_renders_as_text(page, tmp_path):
    score(page, PROMPT, XSS)
    assert page.evaluate("() => window.__xss") is None and page.dialogs == []
    assert page.locator("#heatmap img, #heatmap script, #heatmap b").count() == 0
    text = page.inner_text("#heatmap")
    assert "<script>window.__xss=1</script>" in text and 'onerror="window.__xss=2"' in text
    shot(page, tmp_path, "app-xss.png")


def test_error_message_and_server_keeps_serving(page):
    page.fill("#response textarea", "   ")
    page.click("#score-btn")
    page.get_by_text("The response is empty").first.wait_for(timeout=10_000)
    score(page, PROMPT, RESPONSE)
    assert page.locator("#heatmap .tok").count() > 0


# ----------------------------------------------------------------------------- live, links, what if, themes, layout
# Each test opens its own page on the one app of this module (app_url), so that no state carries over.


def numbers_text(pg) -> str:
    return pg.inner_text("#numbers table.red-numbers")


def test_a_slider_change_re_renders_without_pressing_score(browser, app_url, tmp_path):
    pg = open_page(browser, app_url[0], width=1024, height=768)
    try:
        score(pg, PROMPT, RESPONSE)
        before = numbers_text(pg)
        assert "beta_c=1.0" in pg.inner_text("#numbers")
        pg.evaluate("() => { window.__sawStale = false; new MutationObserver(() => { if (document.querySelector("
                    "'#numbers.red-stale')) window.__sawStale = true; }).observe(document.body, {attributes: true, "
                    "subtree: true, attributeFilter: ['class']}); }")
        pg.fill("#beta-c input[type=number]", "0.5")  # as typing in the slider's box: no Score click
        pg.wait_for_function("() => document.querySelector('#numbers').innerText.includes('beta_c=0.5')",
                             timeout=10_000)
        after = numbers_text(pg)
        assert after != before and "✓" in after, (before, after)
        pg.wait_for_function("() => !document.querySelector('.red-stale')", timeout=5_000)  # unmarked again
        assert pg.evaluate("() => window.__sawStale"), "the old numbers were marked stale while the request ran"
        shot(pg, tmp_path, "app-live-beta-c.png", full_page=False)
    finally:
        pg.close()


def test_a_link_reproduces_a_view(browser, app_url, tmp_path):
    import red_core

    _, ctx = app_url
    from urllib.parse import urlencode

    response = "It was a wonderful day."
    query = urlencode({"prompt": PROMPT, "response": response, "method": "uniform", "granularity": "word"})
    pg = open_page(browser, f"{app_url[0]}?{query}", width=1024, height=768)
    try:
        pg.wait_for_function(HEATMAP_SHOWS, arg=response, timeout=20_000)
        pg.wait_for_function("() => document.querySelector('#numbers').innerText.includes('uniform')", timeout=10_000)
        expected = red_core.token_rewards(ctx.reward_models.get(ctx.default_rm), PROMPT, response, "uniform",
                                          granularity="word")
        words = pg.locator("#heatmap .tok:not(.special)").all_text_contents()
        assert words == [t for t, sp in zip(expected.tokens, expected.special) if not sp] == \
            ["It", " was", " a", " wonderful", " day."], words
        assert f"{expected.score:+.4f}" in numbers_text(pg) and "✓ sums match" in numbers_text(pg)
        assert pg.input_value("#prompt textarea") == PROMPT and pg.input_value("#response textarea") == response
        assert pg.is_checked("#granularity input[value=word]")
        shot(pg, tmp_path, "app-deep-link.png", full_page=False)
        # the page's own link button gives back a link that names these settings
        pg.click("#copy-link")
        pg.wait_for_function("() => document.querySelector('#link-box input, #link-box textarea').value"
                             ".startsWith('http')", timeout=10_000)
        link = pg.input_value("#link-box input, #link-box textarea")
        assert link.startswith(app_url[0]) and "method=uniform" in link and "granularity=word" in link, link
        assert pg.foreign == [] and pg.dialogs == []
    finally:
        pg.close()


def test_a_word_changed_in_what_if_changes_the_score(browser, app_url, tmp_path):
    import red_core

    _, ctx = app_url
    response = "It was a wonderful day."
    pg = open_page(browser, f"{app_url[0]}?response={response.replace(' ', '+')}&granularity=word", width=1280,
                   height=900)
    try:
        pg.wait_for_function(HEATMAP_SHOWS, arg=response, timeout=20_000)
        pg.locator("#heatmap .tok", has_text="wonderful").click()  # opens "What if?" on that word
        pg.wait_for_selector("#tok-details .red-details", timeout=10_000)
        assert "word 4 of " in pg.inner_text("#tok-details")  # (special tokens after the text count too)
        pg.wait_for_function("() => { const e = document.querySelector('#whatif-unit input');"
                             " return e && e.value.includes('wonderful'); }", timeout=10_000)
        pg.fill("#whatif-text textarea, #whatif-text input", "terrible")
        pg.click("#whatif-run")
        pg.wait_for_selector("#whatif-view .wi-head", timeout=20_000)
        head = pg.inner_text("#whatif-view .wi-head")
        rm = ctx.reward_models.get(ctx.default_rm)
        old, new = (red_core.token_rewards(rm, "", t).score for t in (response, "It was a terrible day."))
        assert f"{old:+.4f}" in head and f"{new:+.4f}" in head and f"{old:+.4f}" != f"{new:+.4f}", head
        shot(pg, tmp_path, "app-what-if.png")
    finally:
        pg.close()


CONTRAST = """sels => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3); } return [255, 255, 255]; };
  const out = [];
  for (const sel of sels) for (const e of document.querySelectorAll(sel)) {
    if (!e.innerText.trim()) continue;
    const a = lum(rgb(getComputedStyle(e).color).slice(0, 3)), b = lum(background(e));
    out.push([sel, e.innerText.trim().slice(0, 30), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
  }
  return out;
}"""
PANEL_TEXT = ["#numbers table.red-numbers td", "#numbers table.red-numbers th", "#numbers .ok",
              "#numbers .red-summary", "#numbers .red-meaning summary", "#heatmap .red-legend span:not(.bar)",
              "#tok-details .red-details", "#step-view .red-box"]


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_panels_are_readable_in_light_and_dark_themes(browser, app_url, theme, tmp_path):
    """WCAG contrast of each panel's text against the background it is drawn on: at least 4.5 (AA)."""
    pg = open_page(browser, f"{app_url[0]}?__theme={theme}", width=1024, height=768)
    try:
        assert pg.evaluate("() => document.body.classList.contains('dark')") == (theme == "dark")
        score(pg, PROMPT, RESPONSE)
        pg.locator("#heatmap .tok").nth(2).click()
        pg.wait_for_selector("#tok-details .red-details", timeout=10_000)
        ratios = pg.evaluate(CONTRAST, PANEL_TEXT)
        assert {r[0] for r in ratios} == set(PANEL_TEXT), "every panel was measured"
        low = [r for r in ratios if r[2] < 4.5]
        assert not low, f"{theme}: text under WCAG AA contrast: {low}"
        shot(pg, tmp_path, f"app-theme-{theme}.png", full_page=False)
    finally:
        pg.close()


def test_results_are_in_view_after_score_on_a_laptop_and_a_phone(browser, app_url, tmp_path):
    """1024x768: Score is on screen at load, and after it the heatmap and the numbers are, whole, without scrolling.
    390x844 (a phone): the results come right under Score (no examples or options between them)."""
    pg = open_page(browser, app_url[0], width=1024, height=768)
    try:
        button = pg.locator("#score-btn").bounding_box()
        assert button["y"] + button["height"] <= 768, "Score is visible without scrolling"
        score(pg, PROMPT, RESPONSE)
        assert pg.evaluate("window.scrollY") == 0
        for sel in ("#heatmap", "#numbers"):
            box = pg.locator(sel).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 768, (sel, box)
        shot(pg, tmp_path, "app-1024x768.png", full_page=False)
        pg.check("#presentation input")  # large type for a projector: a class on <body> (app/static/app.css)
        pg.wait_for_function("() => document.body.classList.contains('red-present')", timeout=5_000)
        sizes = pg.evaluate("() => ['#heatmap .red-heatmap', '#numbers td'].map(s => "
                            "getComputedStyle(document.querySelector(s)).fontSize)")
        assert sizes == ["26px", "18px"], sizes
        for sel in ("#heatmap", "#numbers table"):  # still in view: presentation mode hides the intro instead
            box = pg.locator(sel).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= 768, (sel, box)
        shot(pg, tmp_path, "app-presentation-1024x768.png", full_page=False)
    finally:
        pg.close()
    pg = open_page(browser, app_url[0], width=390, height=844)
    try:
        score(pg, PROMPT, RESPONSE)  # click scrolls Score into view, as a thumb would
        button, heat = pg.locator("#score-btn").bounding_box(), pg.locator("#heatmap").bounding_box()
        gap = heat["y"] - (button["y"] + button["height"])
        assert 0 <= gap < 100, f"the heatmap starts {gap:.0f} px below Score"
        table, numbers = pg.locator("#numbers table").bounding_box(), pg.locator("#numbers").bounding_box()
        assert table["x"] + table["width"] <= numbers["x"] + numbers["width"], "the numbers fit the phone's width"
        options, examples = (pg.locator(s).first.bounding_box() for s in ("#explore-options", "#explore-examples"))
        assert options["y"] > heat["y"] and examples["y"] > heat["y"]
        pg.locator("#heatmap").scroll_into_view_if_needed()
        shot(pg, tmp_path, "app-390x844.png", full_page=False)
    finally:
        pg.close()


# ----------------------------------------------------------------------------- model picker, toasts, public mode

TOAST = '[data-testid="toast-body"]'
TOAST_TEXT = '[data-testid="toast-text"]'
REFUSAL = "This public app loads only these reward models: "
MARKUP = '<b>bold</b><img src=x onerror="window.__xss=1">'
TOAST_SETTLED = ("s => { const e = document.querySelector(s); if (!e) return false; const c = getComputedStyle(e);"
                 " return c.opacity === '1' && ['none', 'matrix(1, 0, 0, 1, 0, 0)'].includes(c.transform); }")


def close_toasts(pg):
    """Close every open toast (they stay 10 s) and wait until none is left, so the next one is read alone."""
    close = pg.locator(f"{TOAST} [data-testid='toast-close']")
    for _ in range(20):
        if not close.count():
            break
        try:
            close.first.click(timeout=2_000)
        except Exception:  # noqa: BLE001 - it closed by itself meanwhile
            pass
    pg.wait_for_selector(TOAST, state="detached", timeout=10_000)


def load_model_toast(pg, name: str) -> str:
    """Type `name` into the reward-model picker, press Load, and return the text of the error toast it brings.

    Also checks that the name typed really went to the server (the request that Load sends carries it).
    """
    close_toasts(pg)
    pg.fill("#rm-picker input", name)

    def sends_name(r):  # Load's request, not another event's (the page's load event may still be going)
        return (r.method == "POST" and urlparse(r.url).path.endswith("/queue/join")
                and name in (r.post_data_json or {}).get("data", []))

    with pg.expect_request(sends_name, timeout=20_000):
        pg.click("#rm-load")
    pg.wait_for_selector(f"{TOAST} {TOAST_TEXT}", timeout=20_000)
    return pg.inner_text(f"{TOAST} {TOAST_TEXT}")


def status_text(pg) -> str:
    return pg.inner_text("#rm-status .red-summary")


def test_public_mode_refuses_server_paths_with_one_message_and_keeps_scoring(public_page, public_app_url, model_dir,
                                                                             tmp_path):
    _, ctx = public_app_url
    pg = public_page
    default = ctx.default_rm.name
    assert default == "assets/models/reward"
    pg.wait_for_function("d => { const e = document.querySelector('#rm-status .red-summary');"
                         " return e && e.innerText.includes(d); }", arg=default, timeout=20_000)
    folder = model_dir("qwen2", chat=True)  # a real model folder on the server: loads fine in local mode
    assert (Path(folder) / "config.json").exists()
    names = {
        "existing model folder": folder,
        "missing path": str(Path(folder).parent / "no-such-model"),
        "a file": str(Path(folder) / "config.json"),
        "system folder": "/etc",
        "unlisted hub id": "someone/unlisted-reward-model",
        "markup": MARKUP,
    }
    texts = {}
    for what, name in names.items():
        text = load_model_toast(pg, name)
        texts[what] = text
        assert REFUSAL in text, f"{what}: {text!r}"
        assert default in text and "python -m app" in text, text
        assert name not in text and Path(name).name not in text, f"{what}: the toast names what was typed: {text!r}"
        assert "/tmp" not in text and str(Path.home()) not in text and "no-such" not in text, text
        status = status_text(pg)
        assert default in status and name not in status, f"{what}: status changed: {status!r}"
        if what == "existing model folder":  # while the toast is up (it stays 10 s), once it has slid in
            pg.wait_for_function(TOAST_SETTLED, arg=TOAST, timeout=5_000)
            shot(pg, tmp_path, "app-public-refusal.png")
    assert len(set(texts.values())) == 1, f"the refusals differ, so they tell which paths exist: {texts}"
    assert pg.evaluate("() => window.__xss") is None and pg.dialogs == []
    assert pg.locator(f"{TOAST} b, {TOAST} img, img[src='x']").count() == 0
    close_toasts(pg)
    # the session still uses the default model: Score on the Explore tab works
    score(pg, PROMPT, RESPONSE)
    assert pg.locator("#heatmap span.tok").count() > 0
    pg.wait_for_function("d => { const t = document.querySelector('#rm-status .red-summary').innerText;"
                         " return t.includes(d) && t.includes('loaded'); }", arg=default, timeout=20_000)
    status = status_text(pg)
    assert default in status and "loaded ✓" in status, status
    assert pg.foreign == [], f"the page fetched from other hosts: {pg.foreign[:5]}"


def test_markup_typed_as_a_model_name_shows_as_text_in_the_toast(page):
    """Local mode echoes the typed name in its error: it must arrive as text, not as elements."""
    text = load_model_toast(page, MARKUP)
    assert "Could not load the reward model" in text, text
    assert MARKUP in text, f"the toast does not show the name as typed: {text!r}"
    assert page.locator(f"{TOAST} b, {TOAST} img").count() == 0
    assert page.locator("img[src='x']").count() == 0
    html = page.inner_html(f"{TOAST} {TOAST_TEXT}")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>" not in html, html
    assert page.evaluate("() => window.__xss") is None and page.dialogs == []
    assert MARKUP not in status_text(page)  # the session keeps its model
    close_toasts(page)
    score(page, PROMPT, RESPONSE)
    assert page.locator("#heatmap span.tok").count() > 0


# ----------------------------------------------------------------------------- Dataset tab

DS_WORDS = ["good", "bad", "great", "awful", "fine", "movie"]
DS_ROWS = [{"id": f"r{i}", "prompt": f"Question {i}: say something.\n",
            "chosen": f"A {DS_WORDS[i % 6]} movie, a {DS_WORDS[i % 6]} day.", "rejected": f"A {DS_WORDS[(i + 2) % 6]} day."}
           for i in range(10)]
DS_STATUS = "s => { const e = document.querySelector('#ds-status'); return e && e.innerText.trim().startsWith(s); }"


@pytest.fixture(scope="module")
def dataset_app_url(model_dir, tmp_path_factory, serve_app):
    """A fresh app whose "demo pairs" are 10 preference rows written here (the bundled file may be absent)."""
    from app.context import AppContext
    from app.ui import build_app, launch_kwargs

    data = tmp_path_factory.mktemp("dataset") / "demo-pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in DS_ROWS))
    ctx = AppContext.create(model_dir("qwen2", chat=True), examples=[],
                            files_dir=tmp_path_factory.mktemp("dataset-downloads"))
    ctx.extra["demo_data"] = data
    with serve_app(build_app(ctx), **launch_kwargs()) as url:
        yield url, ctx


def test_dataset_tab_scores_the_demo_rows_and_a_clicked_row_opens_in_explore(browser, dataset_app_url, tmp_path):
    pg = open_page(browser, dataset_app_url[0], width=1280, height=900)
    try:
        pg.get_by_role("tab", name="Dataset").click()
        pg.wait_for_selector("#ds-run", state="visible", timeout=10_000)
        assert not pg.is_visible("#prompt textarea")
        rows = pg.locator("#ds-limit input[type=number]")
        rows.fill("6")
        rows.press("Enter")
        pg.wait_for_function("() => document.querySelector('#ds-limit input[type=range]').value === '6'",
                             timeout=5_000)
        pg.click("#ds-run")
        pg.wait_for_function(DS_STATUS, arg="✓", timeout=90_000)
        status = pg.inner_text("#ds-status")
        assert status.strip().startswith("✓ 12 responses from 6 rows · 12 scored · 0 with errors"), status
        # the words panel: one model, a table of highest and one of lowest mean credit
        words = pg.locator("#ds-words .red-panel")
        assert words.count() == 1
        assert words.locator("table.red-numbers").count() == 2
        panel = words.inner_text()
        assert "Highest mean credit" in panel and "Lowest mean credit" in panel and "pair accuracy" in panel, panel
        codes = words.locator("table.red-numbers td code").all_inner_texts()
        assert {"movie", "day"} <= set(codes), codes  # in every chosen response (day in every response too)
        for plot in ("#ds-plot-a", "#ds-deciles", "#ds-margins"):  # model B is not asked for: its plot stays empty
            pg.wait_for_selector(f"{plot} .js-plotly-plot", timeout=30_000)
        assert pg.locator("#ds-plot-b .js-plotly-plot").count() == 0
        cell = pg.locator("#ds-examples [data-testid='cell-3-4']")  # 4th table row (r1, rejected): its response
        cell.wait_for(timeout=10_000)
        row_id = pg.inner_text("#ds-examples [data-testid='cell-3-0']").strip()
        side = pg.inner_text("#ds-examples [data-testid='cell-3-1']").strip()
        expected = next(r for r in DS_ROWS if r["id"] == row_id)
        assert side in ("chosen", "rejected") and cell.inner_text().strip() == expected[side].strip()
        shot(pg, tmp_path, "app-dataset.png")
        cell.click()
        pg.wait_for_function("p => { const e = document.querySelector('#prompt textarea'); return e && e.value === p; }",
                             arg=expected["prompt"], timeout=20_000)
        assert pg.input_value("#response textarea") == expected[side]
        assert pg.get_by_role("tab", name="Explore").get_attribute("aria-selected") == "true"
        assert pg.is_visible("#prompt textarea") and pg.is_visible("#score-btn")
        assert not pg.is_visible("#ds-run")
        assert pg.foreign == [], f"the page fetched from other hosts: {pg.foreign[:5]}"
        assert pg.dialogs == []
    finally:
        pg.close()
