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


def shot(pg, tmp_path, name):
    path = tmp_path / name
    pg.screenshot(path=str(path), full_page=True)
    keep = os.environ.get("RED_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / name)
    return path


def score(pg, prompt, response):
    """Fill both boxes, click Score, wait until the heatmap shows this response."""
    pg.fill("#prompt textarea", prompt)
    pg.fill("#response textarea", response)
    pg.click("#score-btn")
    pg.wait_for_function("r => { const e = document.querySelector('#heatmap .red-heatmap');"
                         " return e && e.textContent.replace(/↵/g, '').startsWith(r); }", arg=response, timeout=20_000)


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
    page.wait_for_function("() => document.querySelector('#step-view').innerText.includes('Step 2 /')")
    assert page.locator("#step-view .tok.active").count() == 1
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
