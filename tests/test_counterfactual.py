"""Counterfactuals on tiny random models: edits, leave-one-out (batched == loop) and a policy's alternatives."""

import json

import numpy as np
import pytest
import torch

import red_core
from red_core.result import TokenRewards
from red_core.whatif import next_token_probs, unit_spans

PROMPT = "Tell me about your day: "
TEXT = "Not bad at all. Truly great!\nThe end, honestly quite good."


@pytest.fixture
def rm(request):
    return request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    return red_core.load_policy(red_core.testing.tiny_causal_lm(tmp_path_factory.mktemp("policy")))


def span_of(text: str, word: str) -> tuple[int, int]:
    start = text.index(word)
    return start, start + len(word)


def joined(tr: TokenRewards) -> str:
    return "".join(t for t, s in zip(tr.texts, tr.special) if not s)


# ----------------------------------------------------------------------------- counterfactual


@pytest.mark.parametrize("rm", ["rm_llama", "rm_qwen_chat", "rm_bert"], indirect=True)
def test_edit_equals_direct_scoring_of_both_texts(rm):
    start, end = span_of(TEXT, " great")
    cf = red_core.counterfactual(rm, PROMPT, TEXT, start, end, " awful")
    assert cf.edited_response == TEXT.replace(" great", " awful")
    for got, text in ((cf.original, TEXT), (cf.edited, cf.edited_response)):
        direct = red_core.token_rewards(rm, PROMPT, text, granularity="word")
        assert got.texts == direct.texts and got.offsets == direct.offsets and got.granularity == "word"
        np.testing.assert_allclose(got.rewards, direct.rewards, atol=1e-5)
        np.testing.assert_allclose(got.prefix_scores, direct.prefix_scores, atol=1e-5)
        assert got.score == pytest.approx(direct.score, abs=1e-5)
        assert got.check()["ok"] and got.total == pytest.approx(got.score - got.baseline, abs=1e-5)  # telescoping
    assert cf.delta == pytest.approx(cf.edited.score - cf.original.score, abs=1e-12)
    # The rows cover both results once each, in order, and spell both responses.
    assert [r["index_a"] for r in cf.rows if r["index_a"] is not None] == list(range(len(cf.original)))
    assert [r["index_b"] for r in cf.rows if r["index_b"] is not None] == list(range(len(cf.edited)))
    assert "".join(r["text_a"] for r in cf.rows if r["index_a"] is not None and not cf.original.special[r["index_a"]]) == TEXT
    edited = [r for r in cf.rows if r["inside"]]
    assert [(r["op"], r["text_a"], r["text_b"]) for r in edited] == [("replace", " great!", " awful!")]
    for r in cf.rows:
        ra, rb = r["reward_a"] or 0.0, r["reward_b"] or 0.0
        assert r["change"] == pytest.approx(rb - ra, abs=1e-12)
    top = cf.most_changed(3)
    assert len(top) == 3 and not any(r["inside"] for r in top)
    assert [abs(r["change"]) for r in top] == sorted((abs(r["change"]) for r in top), reverse=True)
    assert abs(top[0]["change"]) == max(abs(r["change"]) for r in cf.rows if not r["inside"])


def test_causal_rm_words_before_the_edit_keep_their_credit(rm_llama):
    start, end = span_of(TEXT, " Truly")
    cf = red_core.counterfactual(rm_llama, PROMPT, TEXT, start, end, " Barely")
    before = [r for r in cf.rows if r["index_a"] is not None and cf.original.offsets[r["index_a"]][1] <= start]
    assert len(before) == 4 and all(r["op"] == "equal" for r in before)
    assert max(abs(r["change"]) for r in before) < 1e-5  # a causal RM cannot see what comes after a word
    assert any(abs(r["change"]) > 1e-4 for r in cf.most_changed(5))  # ... but words after it can move


def test_deletion_insertion_and_parameters(rm_llama):
    start, end = span_of(TEXT, " great!")
    gone = red_core.counterfactual(rm_llama, PROMPT, TEXT, start, end, "")
    assert gone.edited_response == TEXT.replace(" great!", "") and joined(gone.edited) == gone.edited_response
    assert [r["op"] for r in gone.rows if r["inside"]] == ["delete"]
    deleted = next(r for r in gone.rows if r["inside"])
    assert deleted["index_b"] is None and deleted["change"] == pytest.approx(-deleted["reward_a"], abs=1e-12)
    assert gone.edited.check()["ok"] and gone.original.check()["ok"]
    assert gone.delta == pytest.approx(red_core.token_rewards(rm_llama, PROMPT, gone.edited_response).score
                                       - red_core.token_rewards(rm_llama, PROMPT, TEXT).score, abs=1e-5)
    added = red_core.counterfactual(rm_llama, PROMPT, TEXT, end, end, " really")
    assert added.edited_response == TEXT.replace(" great!", " great! really")
    assert [(r["op"], r["text_b"]) for r in added.rows if r["inside"]] == [("insert", " really")]
    # Half a word edited: the whole word is inside the edit.
    half = red_core.counterfactual(rm_llama, PROMPT, TEXT, start + 3, end, "")
    assert [(r["op"], r["text_a"], r["text_b"]) for r in half.rows if r["inside"]] == [("replace", " great!", " gr")]
    mixed = red_core.counterfactual(rm_llama, PROMPT, TEXT, start, end, " fine", granularity="token", beta_c=0.5)
    assert mixed.edited.granularity == "token" and mixed.edited.params["beta_c"] == 0.5 and mixed.edited.check()["ok"]
    same = red_core.counterfactual(rm_llama, PROMPT, TEXT, start, end, " great!")
    assert same.delta == pytest.approx(0.0, abs=1e-6) and all(r["op"] == "equal" for r in same.rows)


def test_counterfactual_to_dict_is_plain_json(rm_qwen_chat):
    start, end = span_of(TEXT, "end")
    cf = red_core.counterfactual(rm_qwen_chat, PROMPT, TEXT, start, end, "start")
    d = json.loads(json.dumps(cf.to_dict()))
    assert d["delta"] == cf.delta and type(cf.to_dict()["delta"]) is float
    assert d["edited_response"] == cf.edited_response and len(d["rows"]) == len(cf.rows)
    back = TokenRewards.from_dict(d["edited"])
    np.testing.assert_array_equal(back.rewards, cf.edited.rewards)  # full precision


def test_bad_spans_and_texts_say_what_to_do(rm_llama):
    n = len(TEXT)
    with pytest.raises(ValueError, match="start <= end"):
        red_core.counterfactual(rm_llama, PROMPT, TEXT, 5, 2, "x")
    with pytest.raises(ValueError, match="outside the response"):
        red_core.counterfactual(rm_llama, PROMPT, TEXT, 0, n + 1, "x")
    with pytest.raises(ValueError, match="outside the response"):
        red_core.counterfactual(rm_llama, PROMPT, TEXT, -1, 3, "x")
    with pytest.raises(ValueError, match="int character offset"):
        red_core.counterfactual(rm_llama, PROMPT, TEXT, 1.5, 3, "x")
    with pytest.raises(ValueError, match="int character offset"):
        red_core.counterfactual(rm_llama, PROMPT, TEXT, True, 3, "x")
    with pytest.raises(ValueError, match="replacement must be a string"):
        red_core.counterfactual(rm_llama, PROMPT, TEXT, 0, 3, None)
    with pytest.raises(ValueError, match="edited response is empty.*keep at least one word"):
        red_core.counterfactual(rm_llama, PROMPT, TEXT, 0, n, "  ")
    with pytest.raises(ValueError, match="granularity"):
        red_core.leave_one_out(rm_llama, PROMPT, TEXT, granularity="paragraph")
    with pytest.raises(ValueError, match="batch_size"):
        red_core.leave_one_out(rm_llama, PROMPT, TEXT, batch_size=0)


# ----------------------------------------------------------------------------- leave one out


@pytest.mark.parametrize("rm", ["rm_llama", "rm_qwen_chat", "rm_bert"], indirect=True)
def test_leave_one_out_batched_equals_loop(rm):
    for granularity in ("word", "sentence", "token"):
        fast = red_core.leave_one_out(rm, PROMPT, TEXT, granularity=granularity, batch_size=3)
        slow = red_core.leave_one_out_loop(rm, PROMPT, TEXT, granularity=granularity)
        assert fast.units == slow.units and fast.offsets == slow.offsets
        # float32 models: agreement to 1e-6 of the score's size (the loop takes another path, one text at a time)
        tol = 1e-6 * max(1.0, float(np.abs(slow.scores_without).max()), abs(slow.score))
        np.testing.assert_allclose(fast.scores_without, slow.scores_without, rtol=0, atol=tol)
        np.testing.assert_allclose(fast.changes, slow.changes, rtol=0, atol=2 * tol)
        assert fast.score == pytest.approx(slow.score, abs=tol)
        # The units are the response units of token_rewards at that granularity; special tokens are not among them.
        tr = red_core.token_rewards(rm, PROMPT, TEXT, granularity=granularity)
        assert fast.units == [t for t, s in zip(tr.texts, tr.special) if not s] and "".join(fast.units) == TEXT
        assert fast.score == pytest.approx(tr.score, abs=1e-5)
        np.testing.assert_allclose(fast.changes, fast.scores_without - fast.score, atol=1e-12)
    words = red_core.leave_one_out(rm, PROMPT, TEXT)
    assert [u.strip() for u in words.units] == TEXT.split()
    assert words.variant(1) == TEXT.replace(" bad", "", 1)
    one = red_core.leave_one_out(rm, PROMPT, TEXT, batch_size=1)
    np.testing.assert_allclose(one.changes, words.changes, atol=1e-6)  # batching does not change scores
    d = json.loads(json.dumps(words.to_dict()))
    assert [u["change"] for u in d["units"]] == words.changes.tolist()


def test_leave_one_out_of_the_only_word_is_the_prompt_alone(rm_llama, rm_gpt2):
    loo = red_core.leave_one_out(rm_llama, PROMPT, "Fine.")
    tr = red_core.token_rewards(rm_llama, PROMPT, "Fine.")
    assert loo.units == ["Fine."] and loo.scores_without[0] == pytest.approx(tr.baseline, abs=1e-5)
    no_baseline = red_core.leave_one_out(rm_gpt2, "", "Fine.")  # no BOS, no prompt: R(x, ∅) undefined
    assert no_baseline.scores_without[0] == 0.0 and "taken as 0" in no_baseline.notes[0]
    assert red_core.leave_one_out_loop(rm_gpt2, "", "Fine.").notes == no_baseline.notes
    assert unit_spans(rm_llama, PROMPT, "a b", "word") == [(0, 1), (1, 3)]


# ----------------------------------------------------------------------------- alternatives


def test_alternatives_are_the_softmax_top_k_of_the_policy(policy):
    model, tok = policy
    response = "The movie was great and the actors were wonderful."
    start = response.index(" great")
    got = red_core.alternatives(model, tok, PROMPT, response, start, k=5)
    # By hand: the ids a policy sees (prompt with BOS, then the response prefix), softmax of the last logits.
    ids = tok(PROMPT).input_ids + tok(response[:start], add_special_tokens=False).input_ids
    assert ids[0] == tok.bos_token_id
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].double()  # (V,)
    probs = torch.softmax(logits, -1)
    expected = []
    for i in torch.argsort(probs, descending=True, stable=True).tolist():
        text = tok.decode([i])
        if i not in tok.all_special_ids and text and "\ufffd" not in text:
            expected.append((text, float(probs[i])))
    expected = expected[:5]
    assert [t for t, _ in got] == [t for t, _ in expected]
    np.testing.assert_allclose([p for _, p in got], [p for _, p in expected], atol=1e-6)
    assert [p for _, p in got] == sorted((p for _, p in got), reverse=True) and sum(p for _, p in got) <= 1.0
    assert not {t for t, _ in got} & set(tok.all_special_tokens)
    full = next_token_probs(model, tok, PROMPT, response, start)
    assert full.shape == (model.config.vocab_size,) and float(full.sum()) == pytest.approx(1.0, abs=1e-5)
    assert len(red_core.alternatives(model, tok, PROMPT, response, 0, k=2)) == 2  # position 0: the prompt alone
    with pytest.raises(ValueError, match="outside the response"):
        red_core.alternatives(model, tok, PROMPT, response, len(response) + 1)
    with pytest.raises(ValueError, match="k must be a positive int"):
        red_core.alternatives(model, tok, PROMPT, response, 0, k=0)


# ----------------------------------------------------------------------------- the bundled reward model


def test_bundled_rm_scores_great_above_awful():
    rm = red_core.load_reward_model()  # assets/models/reward: a sentiment RM trained on VADER
    response = "The movie was great and the actors were wonderful."
    start, end = span_of(response, " great")
    cf = red_core.counterfactual(rm, "Tell me about the movie.", response, start, end, " awful")
    assert cf.delta < -0.05  # a negative word in place of a positive one lowers R(x, y)
    row = next(r for r in cf.rows if r["inside"])
    assert row["reward_a"] > 0 > row["reward_b"]  # and RED puts the credit on that word, with the right sign
