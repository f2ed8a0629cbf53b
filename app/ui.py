"""The Gradio layout: components, their elem_ids, and which handler each event calls. Nothing else.

Tabs: Explore (one text, one method; live re-rendering, tap-for-details, step-through, "What if?" from
app/whatif.py, links to a view), Compare (methods / chosen vs rejected / two reward models), Lessons
(app/lessons.py presets, applied through app/presets.py), Dataset (app/dataset_tab.py: what a reward model
rewards across a corpus), Policies (app/policies_tab.py). Per-user data lives in gr.State: the session's
reward-model choice (`ctx.rm_state`), its last Explore result and its shared colour scale.
The page's own script and styles (app/static/app.js, app.css) are inlined by `launch_kwargs` (no network).
Events a visitor's API client may call have api_name and api_description; UI-only ones are private.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import gradio as gr

import red_core
from app import dataset_tab, handlers, lessons, limits, policies_tab, presets, render, texts, whatif
from app.context import INPUT_FORMATS, AppContext
from app.errors import handler
from red_core.methods import DESCRIPTIONS

STATIC = Path(__file__).resolve().parent / "static"  # app.js and app.css, inlined into the page (no network)
CSS = """
#heatmap, #step-view {min-height: 60px}
.red-howto {font-size: 14px}
footer {opacity: .8}
"""
PRIVATE = {"api_visibility": "private"}
# js on an event: mark the Explore results stale (faded, "updating…") and pass the inputs on unchanged;
# UNMARK runs after the request, whether it succeeded or failed (app/static/app.js)
MARK = "(...args) => { if (window.redStale) window.redStale(true); return args; }"
UNMARK = "() => { if (window.redStale) window.redStale(false); }"


def _examples(ctx: AppContext, inputs, label: str, elem_id: str | None = None):
    if ctx.examples:
        return gr.Examples([[e["prompt"], e["response"]] for e in ctx.examples], inputs=inputs, label=label,
                           example_labels=[e["name"] for e in ctx.examples], examples_per_page=12, elem_id=elem_id)
    gr.Markdown("*No examples: assets/examples.json is missing. Type your own text.*")
    return None


def _pair_examples(inputs):
    """The "Chosen vs rejected" examples: pairs whose chosen response really is the better one for a stated
    criterion (app/lessons.py), labelled with it."""
    pairs = lessons.pair_examples()
    if pairs:
        gr.Examples([[p["prompt"], p["chosen"], p["rejected"]] for p in pairs], inputs=inputs,
                    label="Pairs (chosen is better by the criterion in the label)",
                    example_labels=[f"{p['name']} ({p['criterion']})" for p in pairs])


def _model_picker(ctx: AppContext):
    with gr.Row(equal_height=True):
        pick = gr.Dropdown(choices=ctx.rm_choices, value=ctx.default_rm.name, allow_custom_value=True,
                           label="Reward model", elem_id="rm-picker", scale=5)
        load = gr.Button("Load", elem_id="rm-load", scale=1, min_width=80)
        present = gr.Checkbox(False, label="Presentation mode (large type)", elem_id="presentation", scale=1,
                              min_width=150)
    present.input(None, present, None, js="(on) => { if (window.redPresent) window.redPresent(on); }", **PRIVATE)
    with gr.Accordion("Model options and help", open=False):
        gr.Markdown(texts.RM_HELP_PUBLIC if ctx.hosting.public else texts.RM_HELP)
        with gr.Row():
            label_index = gr.Number(None, precision=0, minimum=0, label="Output index",
                                    info="only for models with several outputs, e.g. 1 = the POSITIVE logit of a "
                                         "sentiment classifier; leave empty otherwise")
            input_format = gr.Radio(list(INPUT_FORMATS), value="auto", label="Input format",
                                    info="auto: the chat template if the tokenizer has one, else prompt + response; "
                                         "pair: the tokenizer's question/answer form (OpenAssistant DeBERTa RMs)")
    status = gr.HTML(handlers.model_status(ctx, ctx.default_rm), label="model status", elem_id="rm-status")
    ev = dict(fn=handler(handlers.load_model, ctx), inputs=[pick, label_index, input_format, ctx.rm_state],
              outputs=[ctx.rm_state, status])
    load.click(**ev, api_name="load_reward_model",
               api_description="Load a reward model (bundled, allowlisted hub id, or in local mode any folder or hub id) "
                               "and make it this session's; returns its status.")
    pick.select(**ev, api_visibility="private")
    return pick, status


def _explore_inputs():
    """The Explore inputs, in app/presets.py FIELDS order, and the Score button; the options go in a group that
    sits under Score on a wide screen and under the results on a phone (app/static/app.css)."""
    d = presets.DEFAULTS
    prompt = gr.Textbox(d["prompt"], label="Prompt x", lines=2, max_lines=12, elem_id="prompt",
                        placeholder="The prompt (may be empty)")
    response = gr.Textbox(d["response"] or None, label="Response y", lines=3, max_lines=20, elem_id="response",
                          placeholder="The response whose tokens get rewards")  # no default: API callers pass one
    with gr.Row(elem_id="score-row"):
        score = gr.Button("Score", variant="primary", elem_id="score-btn", scale=3)
        upload = gr.UploadButton("Response from .txt", file_types=[".txt", ".md"], size="sm", elem_id="upload",
                                 scale=2, min_width=120)
    with gr.Group(elem_id="explore-options"):
        with gr.Row():
            method = gr.Dropdown(red_core.list_methods(), value=d["method"], label="Credit method",
                                 info=DESCRIPTIONS[d["method"]], elem_id="method")
            granularity = gr.Radio(list(handlers.GRANULARITIES), value=d["granularity"], label="Granularity",
                                   elem_id="granularity")
        beta_c = gr.Slider(0, 1, value=d["beta_c"], step=0.05, label="β_c: RED mixed with sparse (1 = pure RED)",
                           elem_id="beta-c")
        beta = gr.Slider(0, 1, value=d["beta"], step=0.05, label="β (ABC only): share split by attention",
                         elem_id="beta")
        with gr.Row():
            baseline = gr.Checkbox(d["baseline"], label="Prompt baseline R(x, ∅)", elem_id="prompt-baseline")
            special = gr.Checkbox(d["special"], label="Show special tokens", elem_id="show-special")
        scale_mode = gr.Radio([(label, key) for key, label in presets.SCALES.items()], value=d["scale"],
                              label="Colour scale", elem_id="scale-mode",
                              info="full colour at: max |reward| of this text, a fixed ±X, or the largest |reward| "
                                   "this session has scored (compare texts by colour)")
        with gr.Row():
            scale_max = gr.Number(d["scale_max"], label="X (for fixed ±X)", minimum=0, elem_id="scale-max",
                                  min_width=100)
            reset = gr.Button("Reset the shared scale", size="sm", elem_id="scale-reset", min_width=100)
    fields = dict(prompt=prompt, response=response, method=method, granularity=granularity, beta_c=beta_c, beta=beta,
                  baseline=baseline, special=special, scale=scale_mode, scale_max=scale_max)
    assert tuple(fields) == presets.FIELDS
    return fields, score, upload, reset


def _explore_tab(ctx: AppContext, status):
    """The Explore tab. Returns its inputs by name (app/presets.py FIELDS), the arguments of its live scoring event,
    and `after` (what follows a scoring event), so that links and lessons fill and score the same way."""
    result = gr.State(None, time_to_live=limits.SESSION_TTL_SECONDS)  # this session's last TokenRewards
    shared = gr.State(0.0, time_to_live=limits.SESSION_TTL_SECONDS)  # max |r| over this session's results
    with gr.Row(elem_id="explore-main"):
        with gr.Column(scale=2, min_width=320, elem_id="explore-inputs"):
            f, score, upload, reset = _explore_inputs()
        with gr.Column(scale=3, min_width=360, elem_id="explore-results"):
            heatmap = gr.HTML(render.placeholder("Press Score to see token rewards; then tap a token for its numbers."),
                              label="heatmap", elem_id="heatmap")
            details = gr.HTML("", label="details of the tapped token", elem_id="tok-details")
            numbers = gr.HTML(label="numbers", elem_id="numbers")
            plot = gr.Plot(label="Token rewards (bars) and prefix score (line)", elem_id="rewards-plot")
    with gr.Row(equal_height=True, elem_id="view-tools"):
        copy = gr.Button("Copy link to this view", size="sm", elem_id="copy-link", scale=1, min_width=160)
        link = gr.Textbox(show_label=False, elem_id="link-box", scale=4, interactive=False, max_lines=1,
                          placeholder="a link that opens this view (prompt, response, model, options) appears here")
    pick = gr.Textbox(visible="hidden", elem_id="tok-pick", label="tapped unit")
    examples = _examples(ctx, [f["prompt"], f["response"]], "Examples (click one: it fills the boxes and scores)",
                         elem_id="explore-examples")
    with gr.Accordion("How to read this", open=False):
        gr.Markdown(texts.HOW_TO_EXPLORE, elem_classes="red-howto")
    with gr.Accordion("Step through", open=True):
        gr.Markdown(texts.HOW_TO_STEP)
        with gr.Row():
            prev = gr.Button("◀", elem_id="step-prev", scale=0, min_width=50)
            play = gr.Button("▷ Play", elem_id="step-play", scale=0, min_width=90)
            pause = gr.Button("❚❚", elem_id="step-pause", scale=0, min_width=50)
            nxt = gr.Button("▶", elem_id="step-next", scale=0, min_width=50)
            slider = gr.Slider(1, 2, value=1, step=1, label="token", elem_id="step-slider", interactive=False, scale=4)
        step_out = gr.HTML(handlers.step_view(None, 1), label="step", elem_id="step-view")
        timer = gr.Timer(limits.STEP_INTERVAL_SECONDS, active=False)
    whatif.build(ctx, result=result, prompt=f["prompt"], response=f["response"], rm_state=ctx.rm_state)
    with gr.Accordion("Token table, exact numbers and downloads", open=False):
        table = gr.Dataframe(label="tokens", elem_id="token-table", interactive=False, max_height=400)
        exact = gr.JSON(label="exact numbers (full precision: tokens, offsets, rewards, prefix scores, R(x, y), "
                              "R(x, ∅), the check)", elem_id="exact-numbers", open=False)
        prepare = gr.Button("Prepare downloads (CSV, JSON, HTML, PNG)", size="sm", elem_id="downloads-btn")
        files = gr.File(label="Downloads: CSV, JSON, standalone HTML (each with prompt, model, method, parameters, "
                              "R(x, y), R(x, ∅) and the check), PNG of the heatmap for slides", file_count="multiple",
                        elem_id="downloads", interactive=False)

    view = [f["special"], f["scale"], f["scale_max"]]
    inputs = [ctx.rm_state, f["prompt"], f["response"], f["method"], f["beta_c"], f["beta"], f["baseline"],
              f["granularity"], *view, shared]
    shown = [heatmap, plot, numbers, table]
    scored_out = [*shown, exact, result, shared]
    step_in = [result, slider, f["special"]]
    reset_step = dict(fn=handlers.step_reset, inputs=[result, *view, shared], outputs=[slider, step_out],
                      show_progress="hidden", **PRIVATE)

    def after(event):
        """What follows every (re-)render: unmark; on success the step-through back to unit 1 and the model status
        (a first scoring may have loaded the model). MARK has hidden the old result's token details (app.js)."""
        event.then(None, js=UNMARK, **PRIVATE)
        event.success(**reset_step)
        event.success(partial(handlers.model_status, ctx), ctx.rm_state, status, show_progress="hidden", **PRIVATE)
        return event

    after(score.click(handler(handlers.explore, ctx, on_gpu=True), inputs, scored_out, js=MARK,
                               api_name="token_rewards",
                               api_description="Per-token rewards of one response: heatmap HTML, plot, numbers HTML, "
                                               "token table, and the exact numbers as JSON (full precision). Colour "
                                               "scale: 'text' (this result), 'fixed' (±scale_max) or 'session' "
                                               "(the largest |reward| this session has scored)."))
    live = handler(handlers.explore_live, ctx, on_gpu=True)
    live_ev = dict(fn=live, inputs=inputs, outputs=scored_out, js=MARK, show_progress="hidden",
                   trigger_mode="always_last", **PRIVATE)
    for comp in (f["method"], f["granularity"], f["beta_c"], f["beta"], f["baseline"]):
        after(comp.input(**live_ev))
    if examples is not None:  # a click fills the boxes, then scores
        after(examples.load_input_event.then(**live_ev))
    rerender = dict(fn=handler(handlers.render_explore), inputs=[result, *view, shared], outputs=shown, js=MARK,
                    show_progress="hidden", trigger_mode="always_last", **PRIVATE)
    for comp in (f["special"], f["scale"], f["scale_max"]):
        after(comp.input(**rerender))
    after(reset.click(handler(handlers.reset_shared), [result, *view], [shared, *shown], js=MARK, **PRIVATE))
    prepare.click(handler(handlers.downloads, ctx), [result, *view, shared], files, api_name="downloads",
                  api_description="CSV, JSON, standalone HTML and a PNG of the heatmap of this session's last Explore "
                                  "result (each file says prompt, model, method, parameters, R(x, y), R(x, ∅), check).")
    pick.change(handler(handlers.token_details), [result, pick, f["special"]], details, show_progress="hidden",
               trigger_mode="always_last", **PRIVATE)
    f["method"].change(lambda m: gr.Dropdown(info=DESCRIPTIONS.get(m, "")), f["method"], f["method"],
                       show_progress="hidden", **PRIVATE)
    upload.upload(handler(handlers.read_upload), upload, f["response"], **PRIVATE)
    copy.click(handler(handlers.share_link, ctx), [ctx.rm_state, *f.values()], link, show_progress="hidden",
               **PRIVATE).success(None, link, link, js="(q) => window.redLink ? window.redLink(q) : q", **PRIVATE)
    # the step-through: the slider counts units from 1; moving it re-draws the step view and marks the plot
    slider.change(handler(handlers.step_view), [result, slider, *view, shared], step_out, show_progress="hidden",
                  **PRIVATE)
    slider.change(handler(handlers.step_plot), step_in, plot, show_progress="hidden", trigger_mode="always_last",
                  **PRIVATE)
    prev.click(partial(handlers.step_move, delta=-1), step_in, slider, show_progress="hidden", **PRIVATE)
    nxt.click(partial(handlers.step_move, delta=1), step_in, slider, show_progress="hidden", **PRIVATE)
    play.click(handler(handlers.step_play), step_in, [slider, timer], **PRIVATE)
    pause.click(lambda: gr.Timer(active=False), None, timer, **PRIVATE)
    timer.tick(handlers.step_tick, step_in, [slider, timer], show_progress="hidden", **PRIVATE)
    return f, live_ev, after


def _compare_tab(ctx: AppContext, explore_prompt, explore_response) -> dict:
    """The Compare tab (three sub-tabs); returns what lessons fill: the sub-tabs and the pair / models inputs."""
    with gr.Accordion("How to read this", open=False):
        gr.Markdown(texts.HOW_TO_COMPARE, elem_classes="red-howto")
    with gr.Tabs() as sub:
        with gr.Tab("Credit methods", id="cmp-methods"):
            with gr.Row():
                prompt = gr.Textbox("", label="Prompt x", lines=2, elem_id="cmp-prompt")
                response = gr.Textbox(label="Response y", lines=2, elem_id="cmp-response")
            with gr.Row(equal_height=True):
                gran = gr.Radio(list(handlers.GRANULARITIES), value="token", label="Granularity")
                beta = gr.Slider(0, 1, value=0.5, step=0.05, label="β (ABC)")
                special = gr.Checkbox(True, label="Show special tokens")
            with gr.Row():
                copy = gr.Button("Use the Explore text", size="sm")
                run = gr.Button("Compare methods", variant="primary", elem_id="cmp-methods-btn")
            view = gr.HTML(label="methods", elem_id="methods-view")
            plot = gr.Plot(label="Credit per position, all methods", elem_id="methods-plot")
            faith = gr.Plot(label="Faithfulness: deletion curve of each method", elem_id="methods-faithfulness")
            _examples(ctx, [prompt, response], "Examples")
            copy.click(lambda p, r: (p, r), [explore_prompt, explore_response], [prompt, response], **PRIVATE)
            run.click(handler(handlers.compare_methods, ctx, on_gpu=True),
                      [ctx.rm_state, prompt, response, gran, beta, special], [view, plot, faith],
                      api_name="compare_methods",
                      api_description="Every credit method on one text (RED, ABC, uniform, sparse, occlusion, IG, "
                                      "gradient x input), each with its time: HTML panels, a plot of the credit, and "
                                      "each method's deletion curve (faithfulness).")
        with gr.Tab("Chosen vs rejected", id="cmp-pair"):
            prompt2 = gr.Textbox("", label="Prompt x", lines=2, elem_id="pair-prompt")
            with gr.Row():
                chosen = gr.Textbox(label="Chosen response", lines=3, elem_id="chosen")
                rejected = gr.Textbox(label="Rejected response", lines=3, elem_id="rejected")
            with gr.Row(equal_height=True):
                gran2 = gr.Radio(list(handlers.GRANULARITIES), value="token", label="Granularity", elem_id="pair-gran")
                special2 = gr.Checkbox(True, label="Show special tokens")
                run2 = gr.Button("Compare the pair", variant="primary", elem_id="pair-btn")
            view2 = gr.HTML(label="pair", elem_id="pair-view")
            _pair_examples([prompt2, chosen, rejected])
            pair_fn = handler(handlers.compare_pair, ctx, on_gpu=True)
            pair_in = [ctx.rm_state, prompt2, chosen, rejected, gran2, special2]
            run2.click(pair_fn, pair_in, view2, api_name="compare_pair",
                       api_description="A chosen and a rejected response to one prompt: scores, margin, and RED "
                                       "rewards aligned unit by unit (HTML).")
        with gr.Tab("Two reward models", id="cmp-models"):
            gr.Markdown("Model **A** is the one picked at the top of the page; choose model **B** here.")
            names = [v for _, v in ctx.rm_choices]
            b_default = "assets/models/reward-biased" if "assets/models/reward-biased" in names else names[-1]
            other = gr.Dropdown(choices=ctx.rm_choices, value=b_default, allow_custom_value=True,
                                label="Model B", info="a hub id or local folder", elem_id="model-b")
            with gr.Row():
                prompt3 = gr.Textbox("", label="Prompt x", lines=2, elem_id="mm-prompt")
                response3 = gr.Textbox(label="Response y", lines=2, elem_id="mm-response")
            with gr.Row(equal_height=True):
                shared = gr.Checkbox(True, label="Shared colour scale")
                run3 = gr.Button("Compare the models", variant="primary", elem_id="models-btn")
            view3 = gr.HTML(label="models", elem_id="models-view")
            plot3 = gr.Plot(label="RED reward per unit, A vs B", elem_id="models-plot")
            _examples(ctx, [prompt3, response3], "Examples")
            models_fn = handler(handlers.compare_models, ctx, on_gpu=True)
            models_in = [ctx.rm_state, other, prompt3, response3, shared]
            run3.click(models_fn, models_in, [view3, plot3], api_name="compare_models",
                       api_description="Two reward models on one text, aligned token by token or word by word: HTML "
                                       "panels and a plot.")
    return {"tabs": sub, "pair": [prompt2, chosen, rejected, gran2], "models": [prompt3, response3, other],
            "pair_run": (pair_fn, pair_in, [view2]), "models_run": (models_fn, models_in, [view3, plot3])}


def _lessons_tab(ctx: AppContext, *, notice, tabs, compare: dict, explore: dict, live_ev: dict, after, picker, status):
    """The Lessons tab: picking one loads its preset into the tab it uses (switching to it), scores, and shows
    what to notice above the tabs."""
    gr.Markdown(texts.LESSONS_INTRO)
    pick = gr.Radio([(f"{k + 1}. {x.title}", x.key) for k, x in enumerate(lessons.LESSONS)], value=None,
                    label="Lessons", elem_id="lesson-pick")
    outputs = [notice, tabs, compare["tabs"], ctx.rm_state, picker, status, *explore.values(), *compare["pair"],
               *compare["models"]]
    filled = pick.input(handler(handlers.apply_lesson, ctx), [pick, ctx.rm_state], outputs, show_progress="hidden",
                        **PRIVATE)
    ev = {**live_ev, "fn": handlers.lesson_run("explore", live_ev["fn"], 7), "inputs": [pick, *live_ev["inputs"]]}
    after(filled.success(**ev))
    for tab, (fn, inputs, outs) in (("pair", compare["pair_run"]), ("models", compare["models_run"])):
        filled.success(handlers.lesson_run(tab, fn, len(outs)), [pick, *inputs], outs, **PRIVATE)
    return pick


def build_app(ctx: AppContext) -> gr.Blocks:
    """The whole app, queued with the named concurrency limits. Launch with `launch_kwargs()`."""
    with gr.Blocks(title="RED token rewards", analytics_enabled=False,
                   delete_cache=(limits.FILE_TTL_SECONDS, limits.FILE_TTL_SECONDS)) as demo:
        ctx.rm_state = gr.State(ctx.default_rm, time_to_live=limits.SESSION_TTL_SECONDS)
        gr.Markdown(f"## {texts.TITLE}\n{texts.INTRO}", elem_id="intro")
        picker, status = _model_picker(ctx)
        notice = gr.HTML("", elem_id="lesson-notice", label="lesson")
        with gr.Tabs() as tabs:
            with gr.Tab("Explore", id="explore"):
                explore, live_ev, after = _explore_tab(ctx, status)
            with gr.Tab("Compare", id="compare"):
                compare = _compare_tab(ctx, explore["prompt"], explore["response"])
            with gr.Tab("Lessons", id="lessons"):
                _lessons_tab(ctx, notice=notice, tabs=tabs, compare=compare, explore=explore, live_ev=live_ev,
                             after=after, picker=picker, status=status)
            with gr.Tab("Dataset", id="dataset"):
                dataset_tab.build(ctx, explore=(explore["prompt"], explore["response"]), tabs=tabs)
            with gr.Tab("Policies", id="policies"):
                policies_tab.build(ctx)
        demo.load(partial(handlers.model_status, ctx), ctx.rm_state, status, api_visibility="private",
                  show_progress="hidden")
        # a link to a view (app/presets.py): fill the Explore inputs (and the model), then score if it has a response
        def open_link(current, request: gr.Request):  # gradio passes the request to a parameter typed gr.Request
            return handlers.open_link(ctx, current, request)

        opened = demo.load(handler(open_link), ctx.rm_state,
                           [ctx.rm_state, picker, status, *explore.values()], show_progress="hidden", **PRIVATE)
        after(opened.success(**live_ev))
    demo.queue(default_concurrency_limit=limits.CONCURRENCY_LIMIT, max_size=limits.MAX_QUEUE_SIZE)
    return demo


def launch_kwargs(host: str | None = None, port: int | None = None, share: bool = False) -> dict:
    """Arguments for demo.launch(): theme/CSS (gradio 6 takes them here), limits, no share by default."""
    css = CSS + (STATIC / "app.css").read_text(encoding="utf-8")
    head = "<script>" + (STATIC / "app.js").read_text(encoding="utf-8") + "</script>"
    return {"server_name": host, "server_port": port, "share": share, "css": css, "head": head,
            "max_file_size": limits.MAX_UPLOAD_BYTES, "footer_links": ["api", "gradio", "settings"],
            "state_session_capacity": limits.MAX_SESSIONS}
