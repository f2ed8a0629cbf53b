"""The Gradio app: RED token rewards you can see, step through and compare.

    python -m app                      # the bundled default reward model, http://127.0.0.1:7860
    python -m app --reward-model DIR   # any reward model folder or hub id; --help for the rest

Modules: limits (named limits), context (AppContext, RMChoice), cache (LRU of loaded models),
handlers (plain event functions; gr.Error for bad input), render (HTML/figures on red_core.viz),
texts (prose), presets (links and lesson presets), lessons (guided steps, curated pairs), whatif (the
"What if?" panel), dataset_tab / policies_tab (those tabs), static/ (app.js, app.css: served offline),
ui (layout and wiring), __main__ (command line). The app calls red_core and reads TokenRewards fields;
it never touches tensors.

The context handed to other tabs (`app/policies_tab.py: build(ctx)`, called inside the Blocks and
inside `gr.Tab("Policies")`) is an `AppContext` with:

    ctx.default_rm        RMChoice(name, label_index, input_format): the reward model sessions start with
    ctx.default_policy    folder / hub id of the default policy (assets/models/policy-base), or None
    ctx.rm_state          gr.State holding the session's current RMChoice (use it as an event input)
    ctx.reward_models     ModelCache, shared LRU (MODEL_CACHE_SIZE) RMChoice -> red_core.RewardModel;
                          `with ctx.reward_models.use(choice) as rm:` holds that model's lock
    ctx.policies          ModelCache, LRU (POLICY_CACHE_SIZE) name -> (model, tokenizer) via red_core.load_policy
    ctx.examples          [{"name", "prompt", "response"}] from assets/examples.json ([] if missing)
    ctx.after_policies    the shipped "after" policies (assets/models/policy-* but policy-base; `models_dir`)
    ctx.limits            the app.limits module (MAX_TOKENS, CONCURRENCY_LIMIT, ...)
    ctx.new_download_dir()  a fresh folder for files a handler returns for download
    ctx.extra             a dict for anything else a tab wants to share

Handlers in app.handlers that other tabs may reuse: check_prompt, check_response, check_choice,
get_rm (cache + gr.Error), score (token_rewards with the limits), export, render_explore.
"""

__all__ = ["AppContext", "RMChoice", "build_app"]


def __getattr__(name: str):
    """AppContext / RMChoice on first use: importing `app` (e.g. for --help) stays light."""
    if name in ("AppContext", "RMChoice"):
        from app import context

        return getattr(context, name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")


def build_app(ctx):
    """The gr.Blocks app for a context (imported lazily: gradio is heavy)."""
    from app.ui import build_app as _build

    return _build(ctx)
