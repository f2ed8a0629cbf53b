"""The Gradio layout: components, their elem_ids, and which handler each event calls. Nothing else.

Tabs: Explore (one text, one method), Compare (methods / chosen vs rejected / two reward models),
Dataset (app/dataset_tab.py: what a reward model rewards across a corpus), Policies (app/policies_tab.py). Per-user data lives in gr.State: the
session's reward-model choice (`ctx.rm_state`) and its last Explore result.
"""

from __future__ import annotations

from functools import partial

import gradio as gr

import red_core
from app import dataset_tab, handlers, limits, policies_tab, render, texts
from app.context import INPUT_FORMATS, AppContext
from app.errors import handler
from red_core.methods import DESCRIPTIONS

CSS = """
#heatmap, #step-view {min-height: 60px}
.red-howto {font-size: 14px}
footer {opacity: .8}
"""


def _pair_examples(examples: list[dict]) -> list[list[str]]:
    """(prompt, chosen, rejected) from examples sharing a prompt: the first two responses of each prompt."""
    by_prompt: dict[str, list[str]] = {}
    for e in examples:
        by_prompt.setdefault(e["prompt"], []).append(e["response"])
    return [[p, rs[0], rs[1]] for p, rs in by_prompt.items() if len(rs) >= 2]


def _examples(ctx: AppContext, inputs, label: str):
    if ctx.examples:
        gr.Examples([[e["prompt"], e["response"]] for e in ctx.examples], inputs=inputs, label=label,
                    example_labels=[e["name"] for e in ctx.examples], examples_per_page=12)
    else:
        gr.Markdown("*No examples: assets/examples.json is missing. Type your own text.*")


def _model_picker(ctx: AppContext):
    with gr.Row():
        pick = gr.Dropdown(choices=ctx.rm_choices, value=ctx.default_rm.name, allow_custom_value=True,
                           label="Reward model", info=texts.RM_HELP_PUBLIC if ctx.hosting.public else texts.RM_HELP,
                           elem_id="rm-picker", scale=5)
        load = gr.Button("Load", elem_id="rm-load", scale=1, min_width=80)
    with gr.Accordion("Model options", open=False):
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
    return status


def _explore_tab(ctx: AppContext, status):
    result = gr.State(None, time_to_live=limits.SESSION_TTL_SECONDS)  # this session's last TokenRewards
    with gr.Accordion("How to read this", open=False):
        gr.Markdown(texts.HOW_TO_EXPLORE, elem_classes="red-howto")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            prompt = gr.Textbox("", label="Prompt x", lines=2, max_lines=12, elem_id="prompt",
                                placeholder="The prompt (may be empty)")
            response = gr.Textbox(label="Response y", lines=4, max_lines=20, elem_id="response",
                                  placeholder="The response whose tokens get rewards")
            upload = gr.UploadButton("Response from a .txt file", file_types=[".txt", ".md"], size="sm",
                                     elem_id="upload")
            with gr.Row():
                method = gr.Dropdown(red_core.list_methods(), value="red", label="Credit method",
                                     info=DESCRIPTIONS["red"], elem_id="method")
                granularity = gr.Radio(list(handlers.GRANULARITIES), value="token", label="Granularity",
                                       elem_id="granularity")
            beta_c = gr.Slider(0, 1, value=1.0, step=0.05, label="β_c: RED mixed with sparse (1 = pure RED)",
                               elem_id="beta-c")
            beta = gr.Slider(0, 1, value=0.5, step=0.05, label="β (ABC only): share split by attention",
                             elem_id="beta")
            with gr.Row():
                baseline = gr.Checkbox(True, label="Prompt baseline R(x, ∅)", elem_id="prompt-baseline")
                special = gr.Checkbox(True, label="Show special tokens", elem_id="show-special")
            score = gr.Button("Score", variant="primary", elem_id="score-btn")
            _examples(ctx, [prompt, response], "Examples (click to fill)")
        with gr.Column(scale=3, min_width=360):
            heatmap = gr.HTML(render.placeholder("Press Score to see token rewards."), label="heatmap", elem_id="heatmap")
            numbers = gr.HTML(label="numbers", elem_id="numbers")
            plot = gr.Plot(label="Token rewards (bars) and prefix score (line)", elem_id="rewards-plot")
    with gr.Accordion("Step through", open=True):
        gr.Markdown(texts.HOW_TO_STEP)
        with gr.Row():
            prev = gr.Button("◀", elem_id="step-prev", scale=0, min_width=50)
            play = gr.Button("▷ Play", elem_id="step-play", scale=0, min_width=90)
            pause = gr.Button("❚❚", elem_id="step-pause", scale=0, min_width=50)
            nxt = gr.Button("▶", elem_id="step-next", scale=0, min_width=50)
            slider = gr.Slider(0, 1, value=0, step=1, label="token", elem_id="step-slider", interactive=False, scale=4)
        step_out = gr.HTML(handlers.step_view(None, 0), label="step", elem_id="step-view")
        timer = gr.Timer(limits.STEP_INTERVAL_SECONDS, active=False)
    with gr.Accordion("Token table, exact numbers and downloads", open=False):
        table = gr.Dataframe(label="tokens", elem_id="token-table", interactive=False, max_height=400)
        exact = gr.JSON(label="exact numbers (full precision: tokens, offsets, rewards, prefix scores, R(x, y), "
                              "R(x, ∅), the check)", elem_id="exact-numbers", open=False)
        prepare = gr.Button("Prepare downloads (CSV, JSON, HTML)", size="sm", elem_id="downloads-btn")
        files = gr.File(label="Downloads: CSV, JSON, standalone HTML", file_count="multiple", elem_id="downloads",
                        interactive=False)

    private = {"api_visibility": "private"}
    inputs = [ctx.rm_state, prompt, response, method, beta_c, beta, baseline, granularity, special]
    shown = [heatmap, plot, numbers, table]
    reset = dict(fn=handlers.step_reset, inputs=[result, special], outputs=[slider, step_out], **private)
    scored = score.click(handler(handlers.explore, ctx, on_gpu=True), inputs, [*shown, exact, result],
                         api_name="token_rewards",
                         api_description="Per-token rewards of one response: heatmap HTML, plot, numbers HTML, token "
                                         "table, and the exact numbers as JSON (full precision).")
    prepare.click(handler(handlers.downloads, ctx), result, files, api_name="downloads",
                  api_description="CSV, JSON and standalone HTML files of this session's last Explore result.")
    scored.success(**reset)
    scored.success(partial(handlers.model_status, ctx), ctx.rm_state, status, show_progress="hidden", **private)
    special.change(handlers.render_explore, [result, special], shown, **private).success(**reset)
    method.change(lambda m: gr.Dropdown(info=DESCRIPTIONS.get(m, "")), method, method, **private)
    upload.upload(handlers.read_upload, upload, response, **private)
    slider.change(handlers.step_view, [result, slider, special], step_out, show_progress="hidden", **private)
    step_in = [result, slider, special]
    prev.click(partial(handlers.step_move, delta=-1), step_in, slider, show_progress="hidden", **private)
    nxt.click(partial(handlers.step_move, delta=1), step_in, slider, show_progress="hidden", **private)
    play.click(handlers.step_play, step_in, [slider, timer], **private)
    pause.click(lambda: gr.Timer(active=False), None, timer, **private)
    timer.tick(handlers.step_tick, step_in, [slider, timer], show_progress="hidden", **private)
    return prompt, response


def _compare_tab(ctx: AppContext, explore_prompt, explore_response):
    with gr.Accordion("How to read this", open=False):
        gr.Markdown(texts.HOW_TO_COMPARE, elem_classes="red-howto")
    with gr.Tabs():
        with gr.Tab("Credit methods"):
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
            copy.click(lambda p, r: (p, r), [explore_prompt, explore_response], [prompt, response],
                       api_visibility="private")
            run.click(handler(handlers.compare_methods, ctx, on_gpu=True),
                      [ctx.rm_state, prompt, response, gran, beta, special], [view, plot, faith],
                      api_name="compare_methods",
                      api_description="Every credit method on one text (RED, ABC, uniform, sparse, occlusion, IG, "
                                      "gradient x input), each with its time: HTML panels, a plot of the credit, and "
                                      "each method's deletion curve (faithfulness).")
        with gr.Tab("Chosen vs rejected"):
            prompt2 = gr.Textbox("", label="Prompt x", lines=2, elem_id="pair-prompt")
            with gr.Row():
                chosen = gr.Textbox(label="Chosen response", lines=3, elem_id="chosen")
                rejected = gr.Textbox(label="Rejected response", lines=3, elem_id="rejected")
            with gr.Row(equal_height=True):
                gran2 = gr.Radio(list(handlers.GRANULARITIES), value="token", label="Granularity")
                special2 = gr.Checkbox(True, label="Show special tokens")
                run2 = gr.Button("Compare the pair", variant="primary", elem_id="pair-btn")
            view2 = gr.HTML(label="pair", elem_id="pair-view")
            pairs = _pair_examples(ctx.examples)
            if pairs:
                gr.Examples(pairs, inputs=[prompt2, chosen, rejected], label="Pairs from the examples")
            run2.click(handler(handlers.compare_pair, ctx, on_gpu=True),
                       [ctx.rm_state, prompt2, chosen, rejected, gran2, special2], view2, api_name="compare_pair",
                       api_description="A chosen and a rejected response to one prompt: scores, margin, and RED "
                                       "rewards aligned unit by unit (HTML).")
        with gr.Tab("Two reward models"):
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
            run3.click(handler(handlers.compare_models, ctx, on_gpu=True),
                       [ctx.rm_state, other, prompt3, response3, shared], [view3, plot3], api_name="compare_models",
                       api_description="Two reward models on one text, aligned token by token or word by word: HTML "
                                       "panels and a plot.")


def build_app(ctx: AppContext) -> gr.Blocks:
    """The whole app, queued with the named concurrency limits. Launch with `launch_kwargs()`."""
    with gr.Blocks(title="RED token rewards", analytics_enabled=False,
                   delete_cache=(limits.FILE_TTL_SECONDS, limits.FILE_TTL_SECONDS)) as demo:
        ctx.rm_state = gr.State(ctx.default_rm, time_to_live=limits.SESSION_TTL_SECONDS)
        gr.Markdown(f"## {texts.TITLE}\n{texts.INTRO}")
        status = _model_picker(ctx)
        with gr.Tabs() as tabs:
            with gr.Tab("Explore", id="explore"):
                prompt, response = _explore_tab(ctx, status)
            with gr.Tab("Compare", id="compare"):
                _compare_tab(ctx, prompt, response)
            with gr.Tab("Dataset", id="dataset"):
                dataset_tab.build(ctx, explore=(prompt, response), tabs=tabs)
            with gr.Tab("Policies", id="policies"):
                policies_tab.build(ctx)
        demo.load(partial(handlers.model_status, ctx), ctx.rm_state, status, api_visibility="private",
                  show_progress="hidden")
    demo.queue(default_concurrency_limit=limits.CONCURRENCY_LIMIT, max_size=limits.MAX_QUEUE_SIZE)
    return demo


def launch_kwargs(host: str | None = None, port: int | None = None, share: bool = False) -> dict:
    """Arguments for demo.launch(): theme/CSS (gradio 6 takes them here), limits, no share by default."""
    return {"server_name": host, "server_port": port, "share": share, "css": CSS,
            "max_file_size": limits.MAX_UPLOAD_BYTES, "footer_links": ["api", "gradio", "settings"],
            "state_session_capacity": limits.MAX_SESSIONS}
