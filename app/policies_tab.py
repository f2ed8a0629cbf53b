"""The "Policies" tab: a policy before and after RL, side by side, scored by one reward model.

    build(ctx)   inside the app's Blocks and gr.Tab("Policies"); build() alone makes a standalone page

Handlers are plain functions (`generate`, `train_live`) so tests call them directly and through
gradio_client (api names "policies_generate", "policies_train_live"). All sampling, scoring and
statistics live in red_core.policies; this file checks input, reports progress and renders.

The "after" picker lists every bundled trained policy (`ctx.after_policies`: the policy-* folders of
assets/models other than policy-base), each with its one-line description, and a table puts their
shipped evaluations side by side, so a policy stopped at a KL budget and an over-optimised one
(reward hacking) can be shown together. Text on the page background takes the theme's colours
(`--body-text-color`), so the tables stay readable in dark mode; policy lines and swatches use
viz.METHOD_COLOURS (red and blue mean lowered / raised reward, never a policy).
"""

from __future__ import annotations

import copy
import html
from contextlib import contextmanager
from functools import partial

import gradio as gr

from app import render
from app.context import AppContext, RMChoice, ShippedPolicy, display_name
from app.errors import handler, user_error
from app.hosting import public_name
from red_core import policies as compare
from red_core import viz
from red_core.models import RewardModelError
from red_core.train.config import read_prompts

MAX_LIVE_STEPS = 30  # steps per method in the "train live" panel
LIVE_BATCH_SIZE = 16  # rollouts per live step
LIVE_NEW_TOKENS = 12  # response length in the live panel
LIVE_THREADS = 1  # torch threads of a live run (one core; Explore keeps the other)
INTRO = """Sample from two policies with **the same seeds and sampling settings**, score every response with
the session's reward model (picked at the top), and compare: RED token rewards of each sample on **one shared
colour scale**, the reward distribution of each policy, the **win rate** of *after* over *before* (pairs with
the same prompt and seed), and the mean **KL to the reference** policy (the k1 estimate PPO penalises).
Defaults: *before* = `assets/models/policy-base`, *after* = `assets/models/policy-red` (trained from it with
RED-PPO, `python -m red_core train`). Pick another shipped *after* policy to compare healthy optimisation with
reward hacking; each one's own evaluation is in the table below the pickers."""
THEMED = """<style>
.pol-box,.pol-box .red-box,.pol-box .red-summary{color:var(--body-text-color,#222)}
.pol-box table.red-numbers{color:var(--body-text-color,#222);background:var(--block-background-fill,#fff)}
.pol-box .red-numbers td,.pol-box .red-numbers th{border-color:var(--border-color-primary,#e3e3e3)}
.pol-box .swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px;vertical-align:baseline}
.pol-box .muted{color:var(--body-text-color-subdued,#555)}
</style>"""


def _default_prompts() -> list[str]:
    try:
        return read_prompts(None)
    except ValueError:
        return ["The movie was", "My day at work", "The weather today"]


# ----------------------------------------------------------------------------- model access


@contextmanager
def _use_policy(ctx: AppContext, name: str):
    """ctx.policies.use, with load failures turned into messages that say what to do."""
    try:
        entry = ctx.policies.get_entry(name)
    except RewardModelError as err:
        raise user_error(f"Could not load the policy {name!r}: {err}") from err
    except Exception as err:  # noqa: BLE001
        raise user_error(f"Could not load the policy {name!r} ({type(err).__name__}: {err}). Give a folder with a "
                       f"causal LM, or a hub id; train an 'after' policy with `python -m red_core train`.") from err
    model_and_tokenizer, lock = entry
    with lock:
        yield model_and_tokenizer


def _use_rm(ctx: AppContext, choice: RMChoice):
    @contextmanager
    def use():
        try:
            model, lock = ctx.reward_models.get_entry(choice)
        except Exception as err:  # noqa: BLE001
            raise user_error(f"Could not load the reward model {choice.name!r}: {err}") from err
        with lock:
            yield model
    return use


# ----------------------------------------------------------------------------- rendering


def summary_html(cmp: compare.Comparison) -> str:
    s = cmp.summary()

    def num(v, fmt="{:+.3f}"):
        return "n/a" if v is None else fmt.format(v)

    rows = "".join(
        f"<tr><th>{_swatch(label)}{label}</th><td><code>{html.escape(display_name(d['policy']))}</code></td>"
        f"<td class='num'>{num(d['reward_mean'])}</td><td class='num'>{num(d['reward_std'], '{:.3f}')}</td>"
        f"<td class='num'>{num(d['gold_mean'])}</td>"
        f"<td class='num'>{num(d['kl_to_reference'], '{:.3f}')}</td><td class='num'>{num(d['mean_tokens'], '{:.1f}')}</td>"
        f"<td class='num'>{d['n']}</td></tr>"
        for label, d in (("before", s["before"]), ("after", s["after"])))
    wr = s["win_rate_after"]
    n_pairs = len(cmp.before.scores)
    verdict = "n/a" if wr is None else f"{100 * wr:.0f}%"
    return (f"{render.STYLE}{THEMED}<div class='red-box pol-box'><table class='red-numbers'><tr><th></th><th>policy</th>"
            f"<th>mean R(x, y)</th><th>std</th><th>gold (VADER)</th><th>KL to reference</th><th>tokens</th>"
            f"<th>samples</th></tr>{rows}</table>"
            f"<div class='red-summary'><b>Win rate of after over before: {verdict}</b> of {n_pairs} pairs "
            f"(same prompt, same seed; ties count ½). Reference for KL: <code>"
            f"{html.escape(display_name(cmp.reference))}</code> (KL = mean over a policy's own samples of "
            f"Σ<sub>t</sub> log π − log π<sub>ref</sub>). Gold: VADER's compound score of prompt + response, what "
            f"the bundled reward model was trained to imitate; RM reward up while gold stays flat or falls is reward "
            f"hacking (n/a without <code>vadersentiment</code>).</div></div>")


def _swatch(label: str) -> str:
    return f"<span class='swatch' style='background:{viz.METHOD_COLOURS[label]}'></span>"


def _num(v, fmt: str = "{:+.3f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def shipped_html(policies: list[ShippedPolicy]) -> str:
    """The bundled "after" policies side by side, as their own evaluation.json reports them."""
    if not policies:
        return (f"{THEMED}<div class='pol-box red-summary'>No trained policy is bundled: build one with "
                f"<code>python -m red_core.recipes.policy_red</code>, or give a folder or hub id.</div>")
    rows = "".join(
        f"<tr><td><code>{html.escape(p.name)}</code></td><td>{html.escape(p.description)}</td>"
        f"<td class='num'>{_num(p.numbers.get('reward_before'))} → {_num(p.numbers.get('reward_after'))}</td>"
        f"<td class='num'>{_num(p.numbers.get('gold_before'))} → {_num(p.numbers.get('gold_after'))}</td>"
        f"<td class='num'>{_num(p.numbers.get('kl_to_base'), '{:.2f}')}</td>"
        f"<td class='num'>{_num(p.numbers.get('win_rate'), '{:.0%}')}</td></tr>" for p in policies)
    return (f"{render.STYLE}{THEMED}<div class='red-box pol-box'><table class='red-numbers'><tr><th>shipped “after” "
            f"policy</th><th>what it is</th><th>mean R(x, y), base → it</th><th>gold (VADER), base → it</th>"
            f"<th>KL to base (nats)</th>"
            f"<th>win rate over base</th></tr>{rows}</table><div class='red-summary muted'>From each policy's "
            f"evaluation.json (the samples its recipe drew, scored by the default reward model). A high reward far "
            f"from the base policy (large KL) is the mark of reward hacking; Generate and compare to see the "
            f"samples.</div></div>")


def describe(ctx: AppContext, name: str | None) -> str:
    """One line on a policy name: a shipped policy's description, else what a free-text name is."""
    shipped = next((p for p in ctx.after_policies if p.name == (name or "").strip()), None)
    return shipped.description if shipped else "a policy folder or hub id (not bundled)"


def after_info(ctx: AppContext, name: str | None) -> gr.Dropdown:
    """The after picker's info line follows the picked policy."""
    return gr.Dropdown(info=describe(ctx, name))


def _cell(tr, score, scale: float) -> str:
    head = f"<div class='red-summary'>R(x, y) = {viz.fmt(score)}</div>"
    if isinstance(tr, Exception):
        return head + f"<div class='red-note'>{html.escape(str(tr))}</div>"
    return head + viz.tokens_html(tr, scale=scale)


def samples_html(cmp: compare.Comparison) -> str:
    """Side by side, prompt by prompt: before | after, RED token rewards on one colour scale."""
    scale = compare.shared_scale(cmp)
    parts = [render.STYLE, viz.legend_html(scale)]
    b, a = cmp.before, cmp.after
    for i in range(len(b.responses)):
        if i == 0 or b.prompt_index[i] != b.prompt_index[i - 1]:
            parts.append(f"<h4 style='font-family:system-ui,sans-serif;margin:14px 0 4px'>Prompt: "
                         f"<code>{html.escape(b.prompts[i])}</code></h4>")
        parts.append("<div class='red-grid'>"
                     f"<div class='red-panel'><div class='desc'>before · sample {i % cmp.settings['n'] + 1}</div>"
                     f"{_cell(b.token_rewards[i], b.scores[i], scale)}</div>"
                     f"<div class='red-panel'><div class='desc'>after · sample {i % cmp.settings['n'] + 1}</div>"
                     f"{_cell(a.token_rewards[i], a.scores[i], scale)}</div></div>")
    return "".join(parts)


def table(cmp: compare.Comparison):
    import pandas as pd

    df = pd.DataFrame(cmp.rows())
    for c in ("before_score", "after_score"):
        df[c] = df[c].astype(float).round(4)
    return df


# ----------------------------------------------------------------------------- handlers


def generate(ctx: AppContext, choice, before: str, after: str, reference: str, prompts_text: str, n, max_new_tokens,
             temperature, top_p, seed, progress=gr.Progress()):
    """Generator handler: status updates while sampling, then (status, summary, figure, samples, table, numbers)."""
    choice = choice if isinstance(choice, RMChoice) else RMChoice(*choice) if choice else ctx.default_rm
    before = (before or "").strip() or ctx.default_policy or public_name(compare.DEFAULT_BEFORE)
    after = (after or "").strip() or _default_after(ctx)
    reference = (reference or "").strip() or before
    prompts = [p for p in (prompts_text or "").splitlines() if p.strip()]
    try:
        compare.check_request(prompts, int(n), int(max_new_tokens))
        if not 0 < float(temperature) <= 5 or not 0 < float(top_p) <= 1:
            raise ValueError("temperature must be in (0, 5] and top-p in (0, 1]")
    except (ValueError, TypeError) as err:
        raise user_error(str(err)[:1].upper() + str(err)[1:]) from err
    skip = (gr.skip(),) * 5
    events = compare.compare_policies(partial(_use_policy, ctx), _use_rm(ctx, choice), before=before, after=after,
                                      reference=reference, prompts=prompts, n=int(n),
                                      max_new_tokens=int(max_new_tokens), temperature=float(temperature),
                                      top_p=float(top_p), seed=int(seed))
    for ev in events:
        if isinstance(ev, compare.Progress):
            progress(ev.fraction, desc=ev.message)
            yield (f"⏳ {ev.message}",) + skip
            continue
        s = ev.summary()
        wr = s["win_rate_after"]
        status = (f"✓ {len(prompts)} prompt(s) × {int(n)} samples from each policy · win rate of after: "
                  f"{'n/a' if wr is None else f'{100 * wr:.0f}%'}")
        yield (status, summary_html(ev), render.safe_figure(compare.reward_figure(ev)), samples_html(ev), table(ev),
               s)


def _default_after(ctx: AppContext) -> str:
    return ctx.after_policies[0].name if ctx.after_policies else public_name(compare.DEFAULT_AFTER)


def live_models(ctx: AppContext):
    """Private copies of the default policy, its tokenizer and the default reward model, taken from the shared
    caches under their locks: a live run trains and reads its own copies, so nothing shared can break."""
    if not ctx.default_policy:
        raise user_error("No default policy: start the app with --policy, or build assets/models/policy-base.")
    with _use_policy(ctx, ctx.default_policy) as (model, tokenizer):
        model, tokenizer = copy.deepcopy(model), copy.deepcopy(tokenizer)
    with _use_rm(ctx, ctx.default_rm)() as rm:
        rm = copy.deepcopy(rm)
    return model, tokenizer, rm


def train_live(ctx: AppContext, steps, seed, critic: str = "auto", progress=gr.Progress()):
    """Generator handler: a short RED-PPO and sparse-PPO run on the bundled defaults, one live figure."""
    from red_core.policies import live_figure, live_runs

    steps = int(steps)
    if not 1 <= steps <= MAX_LIVE_STEPS:
        raise user_error(f"steps must be 1..{MAX_LIVE_STEPS} (MAX_LIVE_STEPS)")
    if critic not in ("auto", "reward", "policy"):
        raise user_error("the critic starts from 'reward' (a copy of the reward model) or 'policy' (a fresh value head)")
    try:
        runs = live_runs(*live_models(ctx), _default_prompts(), steps=steps, seed=int(seed), batch_size=LIVE_BATCH_SIZE,
                         max_new_tokens=LIVE_NEW_TOKENS, critic_init=critic, threads=LIVE_THREADS)
        for history, message in runs:
            progress(sum(len(h) for h in history.values()) / (2 * steps), desc=message)
            yield live_figure(history), f"⏳ {message}"
    except (RewardModelError, ValueError) as err:
        raise user_error(f"Could not start the live run: {err}") from err
    yield live_figure(history), f"✓ {steps} steps of RED-PPO and of sparse PPO from the same policy and seed"


# ----------------------------------------------------------------------------- layout


def build(ctx: AppContext | None = None):
    """The tab's components and events. With no ctx: a standalone gr.Blocks page (returned)."""
    if ctx is None:
        ctx = AppContext.create()
        with gr.Blocks(title="RED: policies before and after") as demo:
            ctx.rm_state = gr.State(ctx.default_rm)
            _layout(ctx)
        demo.queue(default_concurrency_limit=ctx.limits.CONCURRENCY_LIMIT, max_size=ctx.limits.MAX_QUEUE_SIZE)
        return demo
    if ctx.rm_state is None:
        ctx.rm_state = gr.State(ctx.default_rm)
    _layout(ctx)
    return None


def _layout(ctx: AppContext):
    prompts = _default_prompts()
    gr.Markdown(INTRO)
    with gr.Row():
        hint = "a bundled policy or an allowlisted hub id" if ctx.hosting.public else "or type a policy folder or hub id"
        offered = [name for _, name in ctx.hosting.choices("policy")]
        shipped = [p.name for p in ctx.after_policies]
        default_after = _default_after(ctx)
        before = gr.Dropdown(list(dict.fromkeys([ctx.default_policy, *offered] if ctx.default_policy else offered)),
                             value=ctx.default_policy or public_name(compare.DEFAULT_BEFORE), allow_custom_value=True,
                             label=f"Before ({hint})", elem_id="pol-before")
        hub = [o.id for o in ctx.hosting.offered("policy")]  # allowlisted hub policies (public mode)
        after = gr.Dropdown(list(dict.fromkeys([*shipped, *hub])), value=default_after, allow_custom_value=True,
                            label=f"After: a shipped trained policy ({hint})", elem_id="pol-after",
                            info=describe(ctx, default_after))
        reference = gr.Textbox("", label="Reference for KL", placeholder="empty = the before policy",
                               elem_id="pol-ref")
    gr.HTML(shipped_html(ctx.after_policies), label="shipped policies", elem_id="pol-shipped")
    after.change(partial(after_info, ctx), after, after, show_progress="hidden", api_visibility="private")
    prompt_box = gr.Textbox("\n".join(prompts[:3]), lines=3, max_lines=compare.MAX_PROMPTS,
                            label=f"Prompts, one per line (at most {compare.MAX_PROMPTS})", elem_id="pol-prompts")
    gr.Examples([["\n".join(prompts[i:i + 3])] for i in range(0, min(len(prompts), 12), 3)], inputs=[prompt_box],
                label="Prompt sets (assets/prompts.txt)")
    with gr.Row():
        n = gr.Slider(1, compare.MAX_SAMPLES_PER_PROMPT, value=4, step=1, label="Samples per prompt (N)")
        max_new = gr.Slider(1, compare.MAX_NEW_TOKENS, value=24, step=1, label="Max new tokens")
        temperature = gr.Slider(0.1, 2.0, value=1.0, step=0.05, label="Temperature")
        top_p = gr.Slider(0.05, 1.0, value=1.0, step=0.05, label="Top-p")
        seed = gr.Number(0, precision=0, label="Seed")
    with gr.Row():
        run = gr.Button("Generate and compare", variant="primary", elem_id="pol-run")
        stop = gr.Button("Stop", variant="stop", elem_id="pol-stop")
    status = gr.Markdown(label="status", elem_id="pol-status")
    summary = gr.HTML(label="summary table", elem_id="pol-summary")
    plot = gr.Plot(label="Reward distribution", elem_id="pol-plot")
    samples = gr.HTML(label="samples (RED heatmaps)", elem_id="pol-samples")
    with gr.Accordion("All samples as a table, and the numbers", open=False):
        tab = gr.Dataframe(label="samples", wrap=True)
        numbers = gr.JSON(label="summary")
    ev = run.click(handler(generate, ctx, on_gpu=True), [ctx.rm_state, before, after, reference, prompt_box, n, max_new,
                                                          temperature, top_p, seed],
                   [status, summary, plot, samples, tab, numbers], api_name="policies_generate",
                   api_description="Sample the same prompts from a policy before and after training (same seeds), "
                                   "score them with the session's reward model; status, summary, plot, samples, "
                                   "table and the numbers.")
    stop.click(lambda: "Stopped.", None, [status], cancels=[ev], api_name=False)
    with gr.Accordion("Train live: RED vs sparse PPO on the tiny defaults", open=False):
        gr.Markdown("Runs a short PPO from `assets/models/policy-base` with the bundled reward model, once with RED "
                    "token rewards and once with the sparse reward (same seed, same settings, "
                    f"{LIVE_BATCH_SIZE} rollouts per step), and plots the mean reward of each step as it comes. "
                    "About a second per step on a CPU core; the reward curves are noisy at this batch size.")
        with gr.Row():
            live_steps = gr.Slider(2, MAX_LIVE_STEPS, value=15, step=1, label="Steps per method")
            live_seed = gr.Number(0, precision=0, label="Seed")
            live_critic = gr.Radio([("reward model (paper)", "auto"), ("fresh value head", "policy")], value="auto",
                                   label="Critic starts from",
                                   info="a critic copied from the reward model already predicts the prefix score, "
                                        "RED's potential, so sparse PPO gets much of RED's help from it; with a fresh "
                                        "head RED's advantage shows (bench/results/train_curves*.png)")
            live_go = gr.Button("Train", variant="primary", elem_id="live-run")
            live_stop = gr.Button("Stop", variant="stop")
        live_status = gr.Markdown(label="status")
        live_plot = gr.Plot(label="Mean reward per step", elem_id="live-plot")
        live_ev = live_go.click(handler(train_live, ctx), [live_steps, live_seed, live_critic], [live_plot, live_status],
                                api_name="policies_train_live", concurrency_limit=ctx.limits.MAX_LIVE_TRAINING,
                                concurrency_id="train-live",
                                api_description="A short RED-PPO and sparse-PPO run from the default policy, streamed "
                                                "as a reward curve. One run at a time; others wait in the queue.")
        live_stop.click(lambda: "Stopped.", None, [live_status], cancels=[live_ev], api_name=False)


__all__ = ["after_info", "build", "describe", "generate", "shipped_html", "train_live"]
