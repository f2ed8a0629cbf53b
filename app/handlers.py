"""Event handlers: plain functions from UI values to UI values, callable without a browser.

Each handler checks its input against the named limits (app/limits.py), asks red_core for token
rewards through the shared model cache, and returns HTML / figures / tables made by app/render.py.
Bad input raises `gr.Error` with a message that says what to do; the server keeps serving.
The TokenRewards of the last Explore run is returned for the session's gr.State (step-through,
re-rendering when the special-token toggle changes).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

import red_core
from app import limits, presets, render
from app.context import INPUT_FORMATS, AppContext, RMChoice, display_name
from app.errors import raw_message, user_error
from red_core import faithfulness, viz
from red_core.result import TokenRewards

GRANULARITIES = presets.GRANULARITIES
COMPARE_METHODS = ("red", "abc", "uniform", "sparse", "occlusion", "ig", "gxi")  # credit splits, then attributions
OWN_SCALE = ("gxi",)
DELETION_K = 5  # words deleted at most in the Faithfulness view  # not in reward units: coloured on its own scale
LABEL_INDEX_HINT = " In this app: open “Model options”, set “Output index”, and load again."


# ----------------------------------------------------------------------------- input checks


def check_text(what: str, text) -> str:
    """Text from a visitor must be a string of valid Unicode (no lone surrogates)."""
    if text is None:
        return ""
    if not isinstance(text, str):
        raise user_error(f"The {what} must be text, not {type(text).__name__}.")
    try:
        red_core.models.check_text(what, text)
    except red_core.RewardModelError as err:
        raise user_error(str(err)[:1].upper() + str(err)[1:]) from err
    return text


def check_prompt(prompt: str | None) -> str:
    """An empty prompt is allowed (R(x, ∅) is then undefined); whitespace-only or too long is not."""
    prompt = check_text("prompt", prompt)
    if prompt and not prompt.strip():
        raise user_error("The prompt is only whitespace. Type a prompt, or clear the box completely to score the "
                       "response without one.")
    if len(prompt) > limits.MAX_PROMPT_CHARS:
        raise user_error(f"The prompt is {len(prompt):,} characters; the limit is {limits.MAX_PROMPT_CHARS:,} "
                       f"(MAX_PROMPT_CHARS). Shorten it and score again.")
    return prompt


def check_response(response: str | None, what: str = "response") -> str:
    response = check_text(what, response)
    if not response or not response.strip():
        raise user_error(f"The {what} is empty. Type or paste a {what} (or click an example), then score again.")
    if len(response) > limits.MAX_RESPONSE_CHARS:
        raise user_error(f"The {what} is {len(response):,} characters; the limit is {limits.MAX_RESPONSE_CHARS:,} "
                       f"(MAX_RESPONSE_CHARS). Shorten it and score again.")
    return response


def check_choice(value) -> RMChoice:
    if isinstance(value, RMChoice):
        return value
    if isinstance(value, dict):
        return RMChoice(**value)
    if isinstance(value, (list, tuple)) and value:
        return RMChoice(*value)
    if isinstance(value, str) and value.strip():
        return RMChoice(value.strip())
    raise user_error("No reward model is selected. Pick one in the model picker at the top and press Load.")


def check_option(value, allowed, what: str):
    if value not in allowed:
        raise user_error(f"Unknown {what} {value!r}; choose one of: {', '.join(map(str, allowed))}.")
    return value


# ----------------------------------------------------------------------------- models


def get_rm(ctx: AppContext, choice: RMChoice, progress=None):
    """(RewardModel, lock) from the shared cache; a failed load becomes a gr.Error."""
    if progress is not None and choice not in ctx.reward_models:
        progress(0.05, desc=f"loading reward model {display_name(choice.name)}")
    try:
        return ctx.reward_models.get_entry(choice)
    except red_core.RewardModelError as err:
        hint = LABEL_INDEX_HINT if "label_index" in str(err) else ""
        raise user_error(f"Could not load the reward model: {err}{hint}") from err
    except Exception as err:  # noqa: BLE001 - anything else a hub model may throw
        raise user_error(f"Could not load the reward model {choice.name!r} ({type(err).__name__}: {err}). "
                       f"Check the hub id or folder, or pick the default model.") from err


def model_status(ctx: AppContext, choice: RMChoice) -> str:
    name = render.esc(display_name(choice.name))
    extra = "".join(f" · {k} {render.esc(str(v))}" for k, v in
                    (("output", choice.label_index), ("input", choice.input_format)) if v not in (None, "auto"))
    cache = ctx.reward_models
    rm = cache.peek(choice)
    if rm is None:
        state = ("loading…" if choice in cache.loading else
                 f"not loaded: {render.esc(cache.errors[choice])}" if choice in cache.errors else "loads on first use")
        return f'<div class="red-summary">Reward model: <code>{name}</code>{extra} · {state}</div>'
    kind = "causal: one pass scores every prefix" if rm.kind == "causal" else "encoder: one pass per prefix"
    tmpl = " · chat template" if rm.uses_chat_template else ""
    return (f'<div class="red-summary">Reward model: <code>{name}</code>{extra} · loaded ✓ · {kind} · '
            f'max {rm.max_length} tokens{tmpl}</div>' + render.warnings_html(rm.warnings))


def load_model(ctx: AppContext, name: str | None, label_index=None, input_format: str = "auto", current=None,
               progress=gr.Progress()) -> tuple[RMChoice, str]:
    """Load a reward model into the cache and make it the session's; on failure keep the previous one."""
    name = (name or "").strip()
    if not name:
        raise user_error("Type a hub id (e.g. Skywork/Skywork-Reward-V2-Qwen3-0.6B) or a local folder, or pick the "
                       "default, then press Load.")
    check_option(input_format or "auto", INPUT_FORMATS, "input format")
    label = None if label_index in (None, "") or (isinstance(label_index, float) and np.isnan(label_index)) else int(label_index)
    choice = RMChoice(name, label, input_format or "auto")
    progress(0.05, desc=f"loading {display_name(name)}")
    try:
        get_rm(ctx, choice, None)
    except gr.Error as err:
        previous = check_choice(current) if current else ctx.default_rm
        raise user_error(f"{raw_message(err)} The app keeps using {display_name(previous.name)}.") from err
    progress(1.0, desc="loaded")
    return choice, model_status(ctx, choice)


# ----------------------------------------------------------------------------- scoring


def score(ctx: AppContext, choice, prompt: str, response: str, *, method: str = "red", granularity: str = "token",
          what: str = "response", progress=None, **params) -> TokenRewards:
    """token_rewards through the cache, with the MAX_TOKENS limit; every failure is a gr.Error."""
    choice = check_choice(choice)
    rm, lock = get_rm(ctx, choice, progress)
    with lock:
        if progress is not None:
            progress(0.5, desc=f"scoring ({method})")
        try:
            return red_core.token_rewards(rm, prompt, response, method, granularity=granularity,
                                          max_tokens=limits.MAX_TOKENS, **params)
        except (red_core.RewardModelError, ValueError) as err:
            text = str(err).replace("the response", f"the {what}").replace("(max_tokens)", "(MAX_TOKENS)")
            raise user_error(f"Could not score the {what}: {text}") from err
        except Exception as err:  # noqa: BLE001
            raise user_error(f"Scoring failed ({type(err).__name__}: {err}). Try a shorter text or another method.") from err


def export(ctx: AppContext, tr: TokenRewards, *, scale: float | None = None, show_special: bool = True) -> list[str]:
    """CSV, JSON, standalone HTML and a PNG of the heatmap (for slides) of one result, in a fresh download folder,
    written only when a visitor asks. Each file says what it shows: prompt, model, method, parameters, R(x, y),
    R(x, ∅) and the check (red_core's exports)."""
    out = ctx.new_download_dir()
    stem = f"token-rewards-{tr.method}-{tr.granularity}"
    paths = [out / f"{stem}.csv", out / f"{stem}.json", out / f"{stem}.html", out / f"{stem}.png"]
    tr.to_csv(paths[0])
    tr.to_json(paths[1], indent=1)
    paths[2].write_text(tr.to_html(title=f"Token rewards ({tr.method}, {tr.granularity}s)", scale=scale,
                                   show_special=show_special), encoding="utf-8")
    viz.heatmap_png(tr, paths[3], scale=scale, show_special=show_special)
    return [str(p) for p in paths]


# ----------------------------------------------------------------------------- Explore


def colour_scale(tr: TokenRewards | None, show_special: bool = True, mode: str = "text", scale_max=1.0,
                 shared=0.0) -> float:
    """The heatmap's colour scale ±s: "text" max |r| of this result, "fixed" ±scale_max, "session" the largest
    |r| this session has scored (the `shared` state, updated by `explore`), so colours compare across texts."""
    check_option(mode, tuple(presets.SCALES), "colour scale")
    if mode == "fixed":
        try:
            s = float(scale_max)
        except (TypeError, ValueError):
            s = float("nan")
        if not np.isfinite(s) or s <= 0:
            raise user_error(f"The fixed colour scale ±X needs a number above 0 (got {scale_max!r}); type one, e.g. 1.")
        return s
    own = viz.symmetric_scale(_shown(tr, show_special)) if tr is not None else 1.0
    if mode == "session":
        return max(float(shared or 0.0), own if tr is not None else 0.0) or 1.0
    return own


def session_max(shared, tr: TokenRewards | None, show_special: bool = True) -> float:
    """The session's shared scale after one more result: max |r| over everything scored (shown units)."""
    mine = _shown(tr, show_special) if tr is not None else np.zeros(0)
    return max(float(shared or 0.0), float(np.max(np.abs(mine))) if len(mine) else 0.0)


def render_explore(tr: TokenRewards | None, show_special: bool = True, scale_mode: str = "text", scale_max=1.0,
                   shared=0.0):
    """(heatmap, figure, numbers, table) of a result; re-used when only the display options change."""
    if tr is None:
        msg = render.placeholder("Press Score to see token rewards.")
        return msg, None, msg, None
    scale = colour_scale(tr, show_special, scale_mode, scale_max, shared)
    return (render.heatmap(tr, scale=scale, show_special=show_special, mode=scale_mode),
            render.rewards_figure(tr, show_special=show_special, active=0),
            render.numbers_html(tr, show_special=show_special), render.table(tr))


def explore(ctx: AppContext, choice, prompt: str, response: str, method: str = "red", beta_c: float = 1.0,
            beta: float = 0.5, prompt_baseline: bool = True, granularity: str = "token", show_special: bool = True,
            scale_mode: str = "text", scale_max=1.0, shared=0.0, progress=gr.Progress()):
    """The Explore tab: heatmap, figure, numbers, table, the exact numbers (JSON), the result and the session's
    shared colour scale (both for gr.State).

    Downloads are written only when asked for (`downloads`), so a request leaves nothing on disk.
    """
    prompt, response = check_prompt(prompt), check_response(response)
    check_option(method, red_core.list_methods(), "method")
    check_option(granularity, GRANULARITIES, "granularity")
    check_option(scale_mode, tuple(presets.SCALES), "colour scale")
    tr = score(ctx, choice, prompt, response, method=method, granularity=granularity, beta_c=float(beta_c),
               beta=float(beta), prompt_baseline=bool(prompt_baseline), progress=progress)
    shared = session_max(shared, tr, bool(show_special))
    shown = render_explore(tr, bool(show_special), scale_mode, scale_max, shared)
    return (*shown, exact_numbers(tr), tr, shared)


def explore_live(ctx: AppContext, choice, prompt: str, response: str, *args, progress=gr.Progress()):
    """`explore` for the live controls (sliders, method, granularity, baseline) and opened links: with no response
    yet it changes nothing and says nothing (the visitor has not asked for a result)."""
    if not isinstance(response, str) or not response.strip():
        return tuple(gr.skip() for _ in range(7))
    return explore(ctx, choice, prompt, response, *args, progress=progress)


def reset_shared(tr: TokenRewards | None, show_special: bool = True, scale_mode: str = "text", scale_max=1.0):
    """The "reset" button of the shared scale: forget earlier results; the scale starts again from this one."""
    shared = session_max(0.0, tr, bool(show_special))
    return (shared, *render_explore(tr, bool(show_special), scale_mode, scale_max, shared))


def exact_numbers(tr: TokenRewards) -> dict:
    """Everything needed to check the result, at full precision: tokens, offsets, rewards, prefix scores, R(x, y),
    R(x, ∅), the sum and the check (TokenRewards.to_dict plus check())."""
    out = {**tr.to_dict(), "check": tr.check()}
    # meta["path"] says which scoring path ran; renamed, since API clients read a "path" key as a file to fetch
    out["meta"] = {("scoring_path" if k == "path" else k): v for k, v in out["meta"].items()}
    return out


def downloads(ctx: AppContext, tr: TokenRewards | None, show_special: bool = True, scale_mode: str = "text",
              scale_max=1.0, shared=0.0) -> list[str]:
    """The "Prepare downloads" button: CSV, JSON, HTML and the heatmap as PNG (colours as on the page) of the
    session's last result."""
    if tr is None:
        raise user_error("Score a response first; then its CSV, JSON, HTML and PNG can be downloaded.")
    scale = colour_scale(tr, bool(show_special), scale_mode, scale_max, shared)
    return export(ctx, tr, scale=scale, show_special=bool(show_special))


def tapped_unit(pick) -> int | None:
    """The unit index a tap in the heatmap picked, from what the page's script (app/static/app.js) writes into a
    hidden box: "<unit index>" or "<unit index>:<nonce>" (the nonce makes a second tap on the same unit a change).
    None when nothing (or no number) was written."""
    try:
        return int(str(pick or "").split(":")[0])
    except ValueError:
        return None


def token_details(tr: TokenRewards | None, pick, show_special: bool = True) -> str:
    """The details box of a tapped heatmap unit (`pick` as in `tapped_unit`); empty when it is not a unit."""
    i = tapped_unit(pick)
    if tr is None or i is None or not 0 <= i < len(tr):
        return ""
    return render.details_html(tr, i, show_special=bool(show_special))


# ----------------------------------------------------------------------------- step-through (counted from 1)


def step_count(tr: TokenRewards | None, show_special: bool = True) -> int:
    return len(render.visible(tr, show_special)) if tr is not None else 0


def _step(k) -> int:
    """A slider value as a step number (1 = the first unit)."""
    try:
        return max(int(k or 1), 1)
    except (TypeError, ValueError):
        return 1


def step_slider(tr: TokenRewards | None, show_special: bool = True):
    """The step slider for a result: 1 to the number of shown units, labelled with the unit."""
    n = step_count(tr, show_special)
    unit = tr.granularity if tr is not None else "token"
    label = f"{unit} (1 to {n})" if n else unit
    return gr.Slider(minimum=1, maximum=max(n, 2), value=1, step=1, interactive=n > 1, label=label)


def step_reset(tr: TokenRewards | None, show_special: bool = True, scale_mode: str = "text", scale_max=1.0,
               shared=0.0):
    """After scoring: slider back to the first unit (1), its maximum the number of units; the view of unit 1."""
    return step_slider(tr, show_special), step_view(tr, 1, show_special, scale_mode, scale_max, shared)


def step_view(tr: TokenRewards | None, k, show_special: bool = True, scale_mode: str = "text", scale_max=1.0,
              shared=0.0) -> str:
    """Unit k (counted from 1) of the shown units, coloured on the heatmap's scale."""
    if tr is None:
        return render.placeholder("Score a response first; then walk through it token by token here.")
    scale = colour_scale(tr, show_special, scale_mode, scale_max, shared)
    return render.step_html(tr, _step(k) - 1, show_special=show_special, scale=scale)


def step_plot(tr: TokenRewards | None, k, show_special: bool = True):
    """The rewards plot with unit k (counted from 1) marked, as the step-through moves."""
    if tr is None:
        return gr.skip()
    return render.rewards_figure(tr, show_special=show_special, active=_step(k) - 1)


def step_move(tr: TokenRewards | None, k, show_special: bool = True, delta: int = 1) -> int:
    n = step_count(tr, show_special)
    return int(min(max(_step(k) + delta, 1), max(n, 1)))


def step_tick(tr: TokenRewards | None, k, show_special: bool = True):
    """One "play" tick: the next unit; the timer stops at the last one."""
    n = step_count(tr, show_special)
    nxt = step_move(tr, k, show_special, 1)
    return nxt, gr.Timer(active=nxt < n)


def step_play(tr: TokenRewards | None, k, show_special: bool = True):
    """Start playing (from the beginning if at the end)."""
    n = step_count(tr, show_special)
    if n < 2:
        raise user_error("Score a response with at least two tokens first.")
    start = 1 if _step(k) >= n else _step(k)
    return start, gr.Timer(active=True)


# ----------------------------------------------------------------------------- links and lessons (app/presets.py)


def share_link(ctx: AppContext, choice, prompt, response, method, granularity, beta_c, beta, baseline, special,
               scale_mode, scale_max) -> str:
    """The query part ("?prompt=...") of a link to this view; the page's script puts its own address before it."""
    values = dict(zip(presets.FIELDS, (prompt, response, method, granularity, beta_c, beta, baseline, special,
                                       scale_mode, scale_max)))
    if not (response or "").strip():
        raise user_error("Type or pick a response first; the link reproduces a scored view.")
    check_prompt(prompt)
    check_response(response)
    model = check_choice(choice).name
    try:
        presets.check_model(model, ctx.hosting)
    except ValueError:
        model = None  # a folder of this machine: the link keeps the default model, and says so
        gr.Warning("This session's reward model is a local folder; a link cannot name it, so the link opens with "
                   "the default model.")
    query = presets.query_string(values, model=model, default_model=ctx.default_rm.name)
    if len(query) > limits.MAX_LINK_CHARS:
        gr.Warning(f"This link is {len(query):,} characters long; chat apps and some servers cut links over "
                   f"{limits.MAX_LINK_CHARS:,} (MAX_LINK_CHARS). Shorten the texts for a link that travels well.")
    return query


def apply_model(ctx: AppContext, name: str | None, current):
    """(RMChoice, picker value, status HTML) after a preset names a reward model: checked against what this
    deployment offers (app/presets.py), then loaded as the Load button would; on failure the session keeps
    its model and a warning says why."""
    if not name:
        return gr.skip(), gr.skip(), gr.skip()
    keep = check_choice(current) if current else ctx.default_rm
    try:
        choice = RMChoice(presets.check_model(name, ctx.hosting))
        get_rm(ctx, choice)
    except (ValueError, gr.Error) as err:
        text = raw_message(err) if isinstance(err, gr.Error) else str(err)
        gr.Warning(f"The reward model was not changed: {text} The app keeps using {display_name(keep.name)}.")
        return gr.skip(), gr.skip(), gr.skip()
    return choice, choice.name, model_status(ctx, choice)


def open_link(ctx: AppContext, current, request: gr.Request | None = None):
    """The page's load event: a link's query parameters (app/presets.py) fill the Explore inputs and may pick the
    reward model; `explore_live` then scores if the link has a response. No parameters: nothing changes."""
    params = dict(request.query_params) if request is not None else {}
    preset = presets.parse_query(params, ctx.hosting)
    for problem in preset["problems"]:
        gr.Warning(f"This link has a value the app cannot use, so it is left out: {problem}.")
    if len(preset) == 1:  # no known key (or only bad ones)
        return tuple(gr.skip() for _ in range(3 + len(presets.FIELDS)))
    model = apply_model(ctx, preset.get("model"), current)
    return (*model, *presets.preset_values(preset))


def lesson_by_key(key: str | None):
    from app import lessons

    lesson = next((x for x in lessons.LESSONS if x.key == key), None)
    if lesson is None:
        raise user_error(f"Unknown lesson {key!r}; pick one from the list.")
    return lesson


def lesson_tab(key: str | None) -> str:
    return lesson_by_key(key).preset.get("tab", "explore") if key else ""


LESSON_TABS = {"explore": ("explore", None), "pair": ("compare", "cmp-pair"), "models": ("compare", "cmp-models"),
               "policies": ("policies", None)}


def apply_lesson(ctx: AppContext, key: str | None, current):
    """A lesson picked: its "what to notice" text, the tab (and Compare sub-tab) it uses, and its preset's values
    for that tab's inputs (Explore: presets.preset_values; pair: prompt, chosen, rejected; models: prompt,
    response, model B). Inputs of other tabs are left as they are. Outputs, in order: notice, tabs, compare tabs,
    rm_state, picker, status, the 10 Explore inputs, pair (prompt, chosen, rejected, granularity), models
    (prompt, response, model B)."""
    lesson = lesson_by_key(key)
    p = lesson.preset
    tab = p.get("tab", "explore")
    outer, inner = LESSON_TABS.get(tab, ("explore", None))
    notice = render.lesson_notice(lesson.title, lesson.notice)
    model = apply_model(ctx, p.get("model"), current)
    skip = gr.skip()
    explore_values = presets.preset_values(p) if tab == "explore" else tuple(skip for _ in presets.FIELDS)
    pair = ((p.get("prompt", ""), p.get("chosen", ""), p.get("rejected", ""), p.get("granularity", "token"))
            if tab == "pair" else (skip,) * 4)
    models = ((p.get("prompt", ""), p.get("response", ""), p.get("model_b", skip)) if tab == "models" else (skip,) * 3)
    return (notice, gr.Tabs(selected=outer), gr.Tabs(selected=inner) if inner else skip, *model, *explore_values,
            *pair, *models)


def lesson_run(tab: str, fn, n_outputs: int = 1):
    """`fn` (a handler with the context bound) run only for lessons of `tab`; other lessons change nothing."""
    def run(key, *args, **kwargs):
        if lesson_tab(key) != tab:
            return gr.skip() if n_outputs == 1 else tuple(gr.skip() for _ in range(n_outputs))
        return fn(*args, **kwargs)
    return run


# ----------------------------------------------------------------------------- upload


def read_upload(path: str | None) -> str:
    """A UTF-8 text file into the response box, within MAX_UPLOAD_BYTES and MAX_RESPONSE_CHARS."""
    if not path:
        raise user_error("No file received; choose a .txt file.")
    size = Path(path).stat().st_size
    if size > limits.MAX_UPLOAD_BYTES:
        raise user_error(f"The file is {size:,} bytes; the limit is {limits.MAX_UPLOAD_BYTES:,} (MAX_UPLOAD_BYTES). "
                       f"Upload a shorter text.")
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise user_error("The file is not UTF-8 text; save it as plain UTF-8 text (.txt) and upload again.") from err
    return check_response(text, "uploaded text")


# ----------------------------------------------------------------------------- compare


def _shown(tr: TokenRewards, show_special: bool) -> np.ndarray:
    return tr.rewards[render.visible(tr, show_special)]


def compare_methods(ctx: AppContext, choice, prompt: str, response: str, granularity: str = "token",
                    beta: float = 0.5, show_special: bool = True, progress=gr.Progress()):
    """Every credit method on the same text: the reward-unit ones on one shared colour scale, gxi (gradient units)
    on its own; each panel says what the method cost, and IG its completeness gap."""
    prompt, response = check_prompt(prompt), check_response(response)
    check_option(granularity, GRANULARITIES, "granularity")
    results, notes = {}, []
    for k, m in enumerate(COMPARE_METHODS):
        progress((k + 1) / (len(COMPARE_METHODS) + 1), desc=f"scoring ({m})")
        try:
            results[m] = score(ctx, choice, prompt, response, method=m, granularity=granularity, beta=float(beta))
        except gr.Error as err:
            if m == "red":
                raise
            notes.append(f"{m}: {raw_message(err)}")
    scale = viz.symmetric_scale(*(_shown(tr, show_special) for m, tr in results.items() if m not in OWN_SCALE))
    scales = {m: viz.symmetric_scale(_shown(tr, show_special)) if m in OWN_SCALE else scale for m, tr in results.items()}
    html = render.methods_html(results, scales=scales, show_special=show_special) + render.warnings_html(notes)
    red = results["red"]
    idx = render.visible(red, show_special)
    fig = render.lines_figure({m: tr.rewards[idx] for m, tr in results.items()}, [red.tokens[i] for i in idx],
                              title=f"credit per {granularity}, all methods")
    progress(1.0, desc="deletion curves")
    return html, fig, render.deletion_figure(deletion_curves(ctx, choice, prompt, response, results))


def deletion_curves(ctx: AppContext, choice, prompt: str, response: str, results: dict) -> dict:
    """Faithfulness for one text: each method's deletion curve (score drop when its top-k credited words are
    deleted, k = 0..5) and the mean curve of random orders (red_core.faithfulness)."""
    rm, lock = get_rm(ctx, check_choice(choice))
    with lock:
        try:
            curves = {m: faithfulness.deletion_curve(rm, prompt, response, tr, k_max=DELETION_K)
                      for m, tr in results.items()}
            curves["random order"] = faithfulness.random_baseline(rm, prompt, response, k_max=DELETION_K, n=10)
        except (red_core.RewardModelError, ValueError) as err:
            raise user_error(f"Could not compute the deletion curves: {err}") from err
    return curves


def compare_pair(ctx: AppContext, choice, prompt: str, chosen: str, rejected: str, granularity: str = "token",
                 show_special: bool = True, progress=gr.Progress()):
    """A chosen and a rejected response to one prompt: both scores, RED rewards, aligned unit by unit."""
    prompt = check_prompt(prompt)
    chosen, rejected = check_response(chosen, "chosen response"), check_response(rejected, "rejected response")
    check_option(granularity, GRANULARITIES, "granularity")
    progress(0.3, desc="scoring the chosen response")
    a = score(ctx, choice, prompt, chosen, granularity=granularity, what="chosen response")
    progress(0.6, desc="scoring the rejected response")
    b = score(ctx, choice, prompt, rejected, granularity=granularity, what="rejected response")
    scale = viz.symmetric_scale(_shown(a, show_special), _shown(b, show_special))
    panels = (render.panel(a, title="chosen", scale=scale, show_special=show_special)
              + render.panel(b, title="rejected", scale=scale, show_special=show_special))
    html = (render.STYLE + render.pair_summary(a, b) + viz.legend_html(scale) + f'<div class="red-grid">{panels}</div>'
            + f'<div class="red-box" style="margin-top:10px"><b>Aligned {granularity} by {granularity}</b> (shared units side by side; '
              f'inserted, deleted and replaced units marked)</div>'
            + render.aligned_table(a, b, scale=scale, show_special=show_special)
            + render.warnings_html(a.warnings + b.warnings))
    return html


def compare_models(ctx: AppContext, choice, other: str | None, prompt: str, response: str, shared_scale: bool = True,
                   progress=gr.Progress()):
    """Two reward models on one text: token by token if they tokenise alike, else word by word."""
    prompt, response = check_prompt(prompt), check_response(response)
    choice_a = check_choice(choice)
    if not other or not other.strip():
        raise user_error("Choose the second reward model (a hub id or local folder) to compare with.")
    choice_b = RMChoice(other.strip())
    progress(0.2, desc=f"model A: {display_name(choice_a.name)}")
    a = score(ctx, choice_a, prompt, response, progress=progress)
    progress(0.6, desc=f"model B: {display_name(choice_b.name)}")
    b = score(ctx, choice_b, prompt, response, progress=progress)
    level = "token" if a.same_tokens(b) else "word"
    if level == "word":
        a, b = a.on_words(), b.on_words()
    sa, sb = viz.symmetric_scale(a.rewards), viz.symmetric_scale(b.rewards)
    if shared_scale:
        sa = sb = max(sa, sb)
    names = (f"A: {display_name(choice_a.name)}", f"B: {display_name(choice_b.name)}")
    note = ("Both models split the text into the same tokens: compared token by token." if level == "token" else
            "The models tokenise differently: rewards moved onto words by character offsets (sums kept).")
    scale_note = "one shared colour scale" if shared_scale else "each model on its own colour scale"
    panels = (render.panel(a, title=names[0], scale=sa) + render.panel(b, title=names[1], scale=sb))
    html = (render.STYLE + f'<div class="red-box">{render.esc(note)} Colours: {scale_note}.</div>'
            + viz.legend_html(sa) + ("" if shared_scale else viz.legend_html(sb))
            + f'<div class="red-grid">{panels}</div>'
            + render.aligned_table(a, b, scale=max(sa, sb), names=("A", "B"))
            + render.warnings_html(a.warnings + b.warnings))
    fig = render.lines_figure({"A": a.rewards, "B": b.rewards}, a.tokens, title=f"RED reward per {level}: A vs B")
    return html, fig
