"""The Explore tab's "What if?" panel: edits, deletions, the policy's proposals, leave one out, errors, the API.

Tiny random models built in the test session: a reward model (conftest `model_dir`) and a causal-LM
policy (red_core.testing.tiny_causal_lm), loaded through the app's own caches.
"""

import re

import gradio as gr
import numpy as np
import pytest

import red_core
from app import whatif
from app.context import AppContext, RMChoice
from red_core.testing import byte_bpe_tokenizer, tiny_causal_lm
from red_core.whatif import alternatives

PROMPT = "Tell me about the movie.\n"
RESPONSE = "The movie was great and the actors were wonderful."
XSS = 'It was <script>window.__x=1</script> <img src=x onerror="alert(1)"> & fine.'


@pytest.fixture(scope="module")
def setup(model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("whatif")
    policy = tiny_causal_lm(root / "policy", tokenizer=byte_bpe_tokenizer(), layers=1, width=32, seed=0)
    rm = model_dir("llama")
    ctx = AppContext.create(reward_model=rm, policy=str(policy), examples=[], files_dir=root / "files")
    return {"ctx": ctx, "rm": rm, "policy": str(policy), "root": root}


@pytest.fixture(scope="module")
def scored(setup):
    """The Explore result the panel works on (what the Score button leaves in the session's state)."""
    rm = setup["ctx"].reward_models.get(setup["ctx"].default_rm)
    return red_core.token_rewards(rm, PROMPT, RESPONSE, granularity="word")


def unit(tr, word: str) -> int:
    return next(i for i, t in enumerate(tr.texts) if t.strip() == word)


def run(setup, tr, i, mode, text="", proposal=None, response=RESPONSE):
    """The Run button: plan the edit, then the counterfactual (as the two chained events do)."""
    start, end, replacement, method, granularity = whatif.plan(tr, PROMPT, response, i, mode, text, proposal)
    return whatif.counterfactual_view(setup["ctx"], setup["ctx"].default_rm, PROMPT, response, start, end,
                                      replacement, method, granularity, progress=None)


def raw_tags(html: str) -> list[str]:
    ours = {"style", "div", "span", "table", "tr", "td", "th", "b", "code", "ul", "li"}
    return [t for t in re.findall(r"<\s*([a-zA-Z][a-zA-Z0-9]*)", html) if t.lower() not in ours]


# ----------------------------------------------------------------------------- units and spans


def test_units_count_from_one_and_picking_opens_the_panel(scored):
    choices = whatif.unit_choices(scored)
    assert choices[0] == ("1 · The", 0) and len(choices) == len(RESPONSE.split())
    assert [label.split(" · ")[1] for label, _ in choices] == [t.strip() for t in scored.texts]
    assert whatif.unit_choices(None) == []
    for written in ("3", "3:1712345678"):  # the heatmap's script adds a nonce, so a second click is a change
        dropdown, panel = whatif.pick(scored, written)
        assert dropdown["value"] == 3 and panel.open is True
    with pytest.raises(gr.Error, match="no unit 99"):
        whatif.pick(scored, "98")


def test_edit_spans_keep_spaces_and_punctuation(scored):
    cut = {mode: RESPONSE[slice(*whatif.edit_span(scored, unit(scored, "wonderful."), mode))]
           for mode in ("replace", "delete")}
    assert cut == {"replace": "wonderful", "delete": " wonderful"}
    first = whatif.edit_span(scored, 0, "delete")
    assert RESPONSE[:first[0]] + RESPONSE[first[1]:] == "movie was great and the actors were wonderful."


# ----------------------------------------------------------------------------- edits


def test_edit_changes_the_score_and_equals_a_direct_red_core_call(setup, scored):
    html, exact = run(setup, scored, unit(scored, "great"), "replace", " terrible ")
    edited = RESPONSE.replace("great", "terrible")
    assert exact["edited_response"] == edited and exact["replacement"] == "terrible"
    rm = red_core.load_reward_model(setup["rm"])
    direct = red_core.counterfactual(rm, PROMPT, RESPONSE, exact["start"], exact["end"], "terrible")
    alone = red_core.token_rewards(rm, PROMPT, edited, granularity="word")
    assert exact["score_edited"] == pytest.approx(alone.score, abs=1e-5)
    assert exact["score_original"] == pytest.approx(scored.score, abs=1e-5)
    assert exact["delta"] == pytest.approx(direct.delta, abs=1e-6) and abs(exact["delta"]) > 1e-6
    assert [t["reward"] for t in exact["edited"]["tokens"]] == pytest.approx(alone.rewards, abs=1e-5)
    assert f"{exact['delta']:+.4f}" in html and f"{alone.score:+.4f}" in html
    assert html.count('<div class="red-heatmap">') == 2  # before and after the edit
    scale = max(np.abs(scored.rewards).max(), np.abs(alone.rewards).max())
    assert html.count('<div class="red-legend">') == 1 and f"{scale:+.3g}" in html  # one scale for both
    changed = [r for r in exact["most_changed"]]
    assert all(not r["inside"] for r in changed)
    assert [abs(r["change"]) for r in changed] == sorted((abs(r["change"]) for r in changed), reverse=True)


def test_delete(setup, scored):
    html, exact = run(setup, scored, unit(scored, "great"), "delete")
    assert exact["edited_response"] == "The movie was and the actors were wonderful." and "deleted" in html
    rm = red_core.load_reward_model(setup["rm"])
    assert exact["score_edited"] == pytest.approx(red_core.token_rewards(rm, PROMPT, exact["edited_response"]).score,
                                                  abs=1e-5)
    assert any(r["op"] == "delete" and r["text_a"].strip() == "great" for r in exact["rows"])


def test_alternatives_come_from_the_policy(setup, scored):
    i = unit(scored, "great")
    words = whatif.proposals(setup["ctx"], scored, i)
    policy, tok = red_core.load_policy(setup["policy"])
    top = alternatives(policy, tok, PROMPT, RESPONSE, scored.offsets[i][0], k=whatif.ALTERNATIVES_ASKED)
    expected = {}
    for text, p in top:  # word starts (the unit follows a space), not the current word, first occurrence
        if text[:1].isspace() and text.strip() and text.strip() != "great":
            expected.setdefault(text.strip(), p)
    shown = list(expected.items())[:whatif.ALTERNATIVES_SHOWN]
    assert [w for w, _ in words] == [w for w, _ in shown]
    assert [p for _, p in words] == pytest.approx([p for _, p in shown], abs=1e-6)
    assert 0 < len(words) <= whatif.ALTERNATIVES_SHOWN
    dropdown = whatif.proposal_choices(setup["ctx"], scored, i, "policy")
    assert [v for _, v in dropdown.choices] == [w for w, _ in words] and dropdown.value == words[0][0]
    assert whatif.proposal_choices(setup["ctx"], scored, i, "replace") is not None  # left as it is (gr.skip)
    html, exact = run(setup, scored, i, "policy", proposal=words[0][0])
    assert exact["edited_response"] == RESPONSE.replace("great", words[0][0], 1)


@pytest.mark.parametrize("mode, text, response, message", [
    ("replace", "   ", RESPONSE, "Type the text to put in place"),
    ("policy", "", RESPONSE, "Choose one of the policy's words"),
    ("swap", "x", RESPONSE, "Unknown edit mode 'swap'"),
    ("replace", "bad", RESPONSE + " More.", "changed since it was scored"),
])
def test_bad_choices_in_the_panel_say_what_to_do(setup, scored, mode, text, response, message):
    with pytest.raises(gr.Error, match=message):
        run(setup, scored, 1, mode, text, proposal=None, response=response)


def test_bad_spans_and_replacements_give_clear_errors(setup, scored):
    ctx = setup["ctx"]
    with pytest.raises(gr.Error, match="Score a response first"):
        whatif.plan(None, PROMPT, RESPONSE, 0, "delete", "", None)
    with pytest.raises(gr.Error, match="Pick a word to change"):
        whatif.plan(scored, PROMPT, RESPONSE, None, "delete", "", None)

    def cf(start, end, replacement):
        return whatif.counterfactual_view(ctx, ctx.default_rm, PROMPT, RESPONSE, start, end, replacement, progress=None)

    n = len(RESPONSE)
    for args, message in [((5, 2, "x"), r"start \(5\) is after the end \(2\)"),
                          ((0, n + 1, "x"), "outside the response"), ((-1, 2, "x"), "outside the response"),
                          ((1.5, 3, "x"), "whole-number character offset"), (("a", 3, "x"), "character offset"),
                          ((4, 9, "movie"), "Nothing to change"), ((3, 3, ""), "Nothing to change"),
                          ((0, n, " "), "leaves the response empty")]:
        with pytest.raises(gr.Error, match=message):
            cf(*args)
    with pytest.raises(gr.Error, match="MAX_RESPONSE_CHARS"):
        cf(0, 3, "x" * 5000)
    html, exact = cf(3, 3, " good")  # an insertion (empty span) is an edit too
    assert exact["edited_response"] == "The good movie was great and the actors were wonderful." and "inserted" in html


def test_public_mode_refuses_an_unlisted_model(setup, model_dir):
    public = AppContext.create(reward_model=setup["rm"], policy=setup["policy"], examples=[], public=True,
                               files_dir=setup["root"] / "public-files")
    other = RMChoice(model_dir("gpt2", bos=False))
    with pytest.raises(gr.Error, match="This public app loads only these reward models"):
        whatif.counterfactual_view(public, other, PROMPT, RESPONSE, 4, 9, "film", progress=None)
    with pytest.raises(gr.Error, match="This public app loads only these reward models"):
        whatif.loo_view(public, other, PROMPT, RESPONSE, progress=None)
    html, exact = whatif.counterfactual_view(public, public.default_rm, PROMPT, RESPONSE, 4, 9, "film", progress=None)
    assert exact["edited_response"].startswith("The film was")


# ----------------------------------------------------------------------------- leave one out


def test_leave_one_out_has_one_row_per_word(setup, scored, monkeypatch):
    html, fig = whatif.loo_view(setup["ctx"], setup["ctx"].default_rm, PROMPT, RESPONSE, progress=None)
    words = RESPONSE.split()
    assert html.count("<tr><td class='num'>") == len(words) and len(fig.data[0].y) == len(words)
    rm = red_core.load_reward_model(setup["rm"])
    without = [" ".join(words[:k] + words[k + 1:]) for k in range(len(words))]
    without[0] = RESPONSE[len(words[0]):]  # the first word goes without the space after it staying
    expected = [scored.score - red_core.token_rewards(rm, PROMPT, w).score for w in without]
    assert list(fig.data[0].y) == pytest.approx(expected, abs=1e-4)
    assert list(fig.data[1].y) == pytest.approx(list(scored.rewards), abs=1e-5)  # RED's credit beside it
    assert f"R(x, y) = <b>{scored.score:+.4f}</b>" in html
    monkeypatch.setattr(whatif, "MAX_LOO_UNITS", 3)
    with pytest.raises(gr.Error, match="MAX_LOO_UNITS"):
        whatif.loo_view(setup["ctx"], setup["ctx"].default_rm, PROMPT, RESPONSE, progress=None)
    with pytest.raises(gr.Error, match="response is empty"):
        whatif.loo_view(setup["ctx"], setup["ctx"].default_rm, PROMPT, "  ", progress=None)


def test_tokens_are_escaped(setup):
    rm = setup["ctx"].reward_models.get(setup["ctx"].default_rm)
    tr = red_core.token_rewards(rm, PROMPT, XSS, granularity="word")
    html, exact = whatif.counterfactual_view(setup["ctx"], setup["ctx"].default_rm, PROMPT, XSS, 0, 2, "<b>x</b>",
                                             progress=None)
    loo_html, fig = whatif.loo_view(setup["ctx"], setup["ctx"].default_rm, PROMPT, XSS, progress=None)
    for page in (html, loo_html):
        assert raw_tags(page) == [] and "<script" not in page and "&lt;script&gt;" in page
    assert not any("<" in str(t) for t in fig.layout.xaxis.ticktext)
    assert "<" in "".join(tr.texts)  # the text itself really holds markup


# ----------------------------------------------------------------------------- inside a page


def test_panel_events_and_api(setup, serve_app):
    from gradio_client import Client

    ctx = setup["ctx"]
    with gr.Blocks() as demo:
        rm_state = gr.State(ctx.default_rm)
        result = gr.State(None)
        prompt, response = gr.Textbox(PROMPT), gr.Textbox(RESPONSE)
        parts = whatif.build(ctx, result=result, prompt=prompt, response=response, rm_state=rm_state)
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert {"whatif", "whatif-pick", "whatif-unit", "whatif-mode", "whatif-text", "whatif-alts", "whatif-run",
            "whatif-view", "whatif-loo", "whatif-loo-view", "whatif-loo-plot"} <= ids == ids | set(parts)
    assert parts["whatif-pick"].visible == "hidden"  # in the page, for the heatmap's click script
    with serve_app(demo) as url:
        client = Client(url, verbose=False)
        api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        assert {"/counterfactual", "/leave_one_out"} <= set(api)
        assert not [name for name in api if name not in ("/counterfactual", "/leave_one_out")]  # the rest is private
        html, exact = client.predict(PROMPT, RESPONSE, 14, 19, "awful", "red", "word", api_name="/counterfactual")
        assert exact["edited_response"] == RESPONSE.replace("great", "awful") and "change Δ" in html
        loo_html, plot = client.predict(PROMPT, RESPONSE, "word", api_name="/leave_one_out")
        assert loo_html.count("<tr><td class='num'>") == len(RESPONSE.split()) and plot["type"] == "plotly"
