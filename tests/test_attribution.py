"""Model-based credit methods (red_core.attribution): ig, gxi, occlusion, checked against hand computations."""

import numpy as np
import pytest
import torch

import red_core
from red_core import encode, load_reward_model, methods, token_rewards, token_rewards_batch
from red_core.scoring import score_encodings

PROMPT = "What is the capital of France?"
RESPONSE = "The capital is Paris, of course."
MODEL_METHODS = ("ig", "gxi", "occlusion")

@pytest.fixture(scope="module")
def rm_chat(model_dir):
    return load_reward_model(model_dir("qwen2", chat=True))


def _score(rm, ids, type_ids=None) -> float:
    """The model's own score of one unpadded input, no batching."""
    kw = {"token_type_ids": torch.tensor([type_ids])} if type_ids is not None else {}
    with torch.no_grad():
        return float(rm.model(input_ids=torch.tensor([ids]), **kw).logits[0, rm.label_index])


def test_listed_and_unknown_method_lists_all(rm_llama):
    names = red_core.list_methods()
    assert names == ["red", "sparse", "uniform", "abc", "ig", "gxi", "occlusion"]
    assert all("Cost:" in methods.DESCRIPTIONS[m] for m in names)
    with pytest.raises(ValueError) as err:
        token_rewards(rm_llama, PROMPT, RESPONSE, method="shap")
    assert all(m in str(err.value) for m in names)
    ps = score_encodings(rm_llama, [encode(rm_llama, PROMPT, RESPONSE)])[0]
    with pytest.raises(ValueError, match="needs the model"):
        methods.compute_rewards("ig", ps)
    assert methods.method_params("ig") == {"steps": 32}
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            methods.resolve_params("ig", {"steps": bad})


def test_ig_completeness_gap_shrinks_with_steps(rm_llama):
    gaps = {}
    for steps in (4, 64):
        tr = token_rewards(rm_llama, PROMPT, RESPONSE, method="ig", steps=steps)
        m = tr.meta
        assert tr.params == {"steps": steps}
        assert m["f_input"] == pytest.approx(tr.score, abs=1e-4)  # F(x) is the model's own score
        # prompt and special tokens equal their baseline: all the attribution is on the scored tokens
        assert abs(tr.total - (m["f_input"] - m["f_baseline"])) == pytest.approx(m["completeness_gap"], abs=1e-6)
        gaps[steps] = m["completeness_gap"]
    assert gaps[64] < gaps[4]
    assert gaps[64] < 1e-3


@pytest.mark.parametrize("which", ["llama", "chat", "bert"])
def test_occlusion_equals_single_deletions_by_hand(which, rm_llama, rm_chat, rm_bert):
    rm = {"llama": rm_llama, "chat": rm_chat, "bert": rm_bert}[which]
    for prompt in (PROMPT, ""):
        tr = token_rewards(rm, prompt, RESPONSE, method="occlusion")
        enc = encode(rm, prompt, RESPONSE)
        full = _score(rm, enc.ids, enc.token_type_ids)
        assert tr.meta["f_input"] == pytest.approx(full, abs=1e-5)
        expected = np.zeros(enc.stop - enc.start)
        for t, sp in enumerate(enc.special):
            if sp:
                continue  # special/template tokens: not deleted, credit 0
            k = enc.start + t
            ids = enc.ids[:k] + enc.ids[k + 1:]
            tt = enc.token_type_ids[:k] + enc.token_type_ids[k + 1:] if enc.token_type_ids is not None else None
            expected[t] = full - _score(rm, ids, tt)
        np.testing.assert_allclose(tr.rewards, expected, rtol=0, atol=1e-5)


def test_occlusion_word_removes_whole_words(rm_llama):
    tr = token_rewards(rm_llama, PROMPT, RESPONSE, method="occlusion", granularity="word")
    tok = token_rewards(rm_llama, PROMPT, RESPONSE, method="occlusion")
    enc = encode(rm_llama, PROMPT, RESPONSE)
    full = _score(rm_llama, enc.ids)
    word = next(i for i, t in enumerate(tr.texts) if "capital" in t)  # " capital": more than one token here?
    lo = sum(len(ids) for ids in tr.token_ids[:word])
    drop = set(range(enc.start + lo, enc.start + lo + len(tr.token_ids[word])))
    by_hand = full - _score(rm_llama, [i for k, i in enumerate(enc.ids) if k not in drop])
    assert tr.rewards[word] == pytest.approx(by_hand, abs=1e-5)
    assert len(tr) < len(tok)


def test_gxi_matches_autograd(rm_llama):
    tr = token_rewards(rm_llama, PROMPT, RESPONSE, method="gxi")
    enc = encode(rm_llama, PROMPT, RESPONSE)
    model = rm_llama.model
    ids = torch.tensor([enc.ids])
    e = model.get_input_embeddings()(ids).detach().requires_grad_(True)  # (1, L, D)
    with torch.enable_grad():
        f = model(inputs_embeds=e).logits[0, rm_llama.label_index]
        (grad,) = torch.autograd.grad(f, e)
    assert float(f.detach()) == pytest.approx(_score(rm_llama, enc.ids), abs=1e-5)  # same pooled token as with ids
    expected = (grad * e).sum(-1)[0, enc.start:enc.stop].detach().numpy()
    np.testing.assert_allclose(tr.rewards, expected, rtol=1e-4, atol=1e-6)
    assert not model.training and all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("which", ["llama", "chat", "bert"])
def test_every_method_one_value_per_scored_token(which, rm_llama, rm_chat, rm_bert):
    rm = {"llama": rm_llama, "chat": rm_chat, "bert": rm_bert}[which]
    for prompt in (PROMPT, ""):
        red = token_rewards(rm, prompt, RESPONSE)
        enc = encode(rm, prompt, RESPONSE)
        for m in MODEL_METHODS:
            tr = token_rewards(rm, prompt, RESPONSE, method=m, **({"steps": 8} if m == "ig" else {}))
            assert tr.method == m and len(tr) == enc.stop - enc.start == len(red)
            assert tr.same_tokens(red) and np.isfinite(tr.rewards).all()
            np.testing.assert_allclose(tr.prefix_scores, red.prefix_scores, atol=1e-6)  # display keeps RED's
            assert tr.score == pytest.approx(red.score) and tr.meta["seconds"] > 0
            if m != "gxi":  # ig: special tokens equal their baseline; occlusion: never deleted
                assert all(r == 0.0 for r, sp in zip(tr.rewards, tr.special) if sp)
            if which == "chat":
                assert any(tr.special)
            tr.to_json()
        assert not rm.model.training


def test_batch_and_errors_per_row(rm_llama):
    out = token_rewards_batch(rm_llama, [PROMPT, "", PROMPT], [RESPONSE, "Yes.", ""], method="occlusion",
                              on_error="return")
    assert isinstance(out[2], Exception)
    single = token_rewards(rm_llama, "", "Yes.", method="occlusion")
    np.testing.assert_allclose(out[1].rewards, single.rewards, atol=1e-5)


def test_attributions_are_not_called_telescoping_and_training_refuses_them(rm_llama):
    import red_core
    from red_core.train import TrainConfig

    ig = red_core.token_rewards(rm_llama, "q", "a fine day", "ig", steps=16)
    c = ig.check()
    assert c["ok"] is None and "completeness gap" in c["note"]
    assert c["difference"] == pytest.approx(ig.total - (ig.meta["f_input"] - ig.meta["f_baseline"]))
    assert red_core.token_rewards(rm_llama, "q", "a fine day", "occlusion").check()["ok"] is None
    with pytest.raises(ValueError, match="unknown method 'ig'"):
        TrainConfig(method="ig")
