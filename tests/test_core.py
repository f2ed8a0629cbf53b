"""red_core on tiny random models: equivalences, invariants, golden values, and every bad input."""

import json

import numpy as np
import pytest
import torch

import red_core
from red_core import align, methods, scoring
from red_core.models import RewardModelError, encode
from red_core.result import TokenRewards
from red_core.scoring import PrefixScores

PROMPT = "Tell me about your day: "
TRICKY = [
    "I love sunny mornings 🌞 and coffee.",
    "世界 你好, hello   world!\n\nNew paragraph\twith tab.",
    "  leading spaces, trailing spaces   ",
    "emoji 👍🏽👨‍👩‍👧 family, done.",
]
CAUSAL = ["rm_llama", "rm_gpt2", "rm_qwen_chat"]
ALL = CAUSAL + ["rm_bert", "rm_deberta"]


@pytest.fixture
def rm(request):
    return request.getfixturevalue(request.param)


def response_part(tr: TokenRewards) -> str:
    return "".join(t for t, s in zip(tr.texts, tr.special) if not s)


# ----------------------------------------------------------------------------- golden values


def test_golden_methods_on_hand_computed_example():
    ps = PrefixScores(prefix_scores=np.array([1.0, 3.0, 2.0]), baseline=0.5, score=2.0, path="test",
                      attention=np.array([0.2, 0.3, 0.5]))
    tol = 1e-12
    np.testing.assert_allclose(methods.red(ps), [0.5, 2.0, -1.0], atol=tol)
    np.testing.assert_allclose(methods.red(ps, prompt_baseline=False), [1.0, 2.0, -1.0], atol=tol)
    np.testing.assert_allclose(methods.red(ps, beta_c=0.5), [0.25, 1.0, 0.5], atol=tol)
    np.testing.assert_allclose(methods.red(ps, beta_c=0.0), methods.sparse(ps), atol=tol)
    np.testing.assert_allclose(methods.sparse(ps), [0.0, 0.0, 2.0], atol=tol)
    np.testing.assert_allclose(methods.uniform(ps), [2 / 3] * 3, atol=tol)
    np.testing.assert_allclose(methods.abc(ps, beta=0.8), [0.32, 0.48, 0.8 + 0.4], atol=tol)


def test_red_vectorised_equals_reference_loop():
    rng = np.random.default_rng(0)
    ps = PrefixScores(prefix_scores=rng.normal(size=50), baseline=0.3, score=0.0, path="test")
    ps.score = float(ps.prefix_scores[-1])
    loop, prev = [], ps.baseline
    for p in ps.prefix_scores:
        loop.append(p - prev)
        prev = p
    np.testing.assert_allclose(methods.red(ps), loop, atol=1e-12)


def test_unknown_method_and_parameter_errors_list_valid_ones(rm_llama):
    with pytest.raises(ValueError, match="red, sparse, uniform, abc"):
        red_core.token_rewards(rm_llama, PROMPT, "hi", method="magic")
    with pytest.raises(ValueError, match="unknown parameter"):
        red_core.token_rewards(rm_llama, PROMPT, "hi", gamma=0.3)
    with pytest.raises(ValueError, match="between 0 and 1"):
        red_core.token_rewards(rm_llama, PROMPT, "hi", beta_c=1.5)
    assert red_core.list_methods() == ["red", "sparse", "uniform", "abc", "ig", "gxi", "occlusion"]


# ----------------------------------------------------------------------------- equivalences


@pytest.mark.parametrize("rm", ALL, indirect=True)
def test_prefix_scores_equal_one_call_per_prefix(rm):
    for text in TRICKY[:2]:
        tr = red_core.token_rewards(rm, PROMPT, text)
        base, loop = scoring.score_prefixes_loop(rm, encode(rm, PROMPT, text))
        np.testing.assert_allclose(tr.prefix_scores, loop, atol=1e-5, rtol=1e-5)
        assert tr.baseline == pytest.approx(base, abs=1e-5)
        assert tr.meta["path"] == ("one-pass" if rm.kind == "causal" else "prefix-batched")


@pytest.mark.parametrize("rm", CAUSAL, indirect=True)
def test_last_prefix_score_is_the_models_own_output(rm):
    enc = encode(rm, PROMPT, TRICKY[0])
    with torch.no_grad():
        own = float(rm.model(input_ids=torch.tensor([enc.ids])).logits[0, 0])
    tr = red_core.token_rewards(rm, PROMPT, TRICKY[0])
    assert tr.score == pytest.approx(own, rel=1e-5, abs=1e-6)
    assert tr.prefix_scores[-1] == pytest.approx(own, rel=1e-5, abs=1e-6)
    assert rm.kind == "causal"


def test_encoders_are_detected_as_encoders(rm_bert, rm_deberta):
    assert rm_bert.kind == "encoder" and rm_deberta.kind == "encoder"


@pytest.mark.parametrize("rm", ["rm_llama", "rm_bert"], indirect=True)
def test_batch_size_and_padding_side_do_not_change_rewards(rm):
    prompts = [PROMPT, "", "Q? ", PROMPT * 3] * 2
    responses = (TRICKY + ["ok", "A much longer answer that goes on and on for a while.", "x", "Fine."])[:8]
    ref = [red_core.token_rewards(rm, p, r) for p, r in zip(prompts, responses)]
    old_side = rm.tokenizer.padding_side
    try:
        for side in ("right", "left"):
            rm.tokenizer.padding_side = side
            got = red_core.token_rewards_batch(rm, prompts, responses, batch_size=8)
            for a, b in zip(ref, got):
                np.testing.assert_allclose(a.rewards, b.rewards, atol=1e-5)
                assert a.score == pytest.approx(b.score, abs=1e-5)
    finally:
        rm.tokenizer.padding_side = old_side


def test_self_check_failure_falls_back_to_exact_scoring(rm_llama, monkeypatch):
    fast = red_core.token_rewards(rm_llama, PROMPT, TRICKY[0])
    monkeypatch.setattr(scoring, "_close", lambda a, b: False)
    slow = red_core.token_rewards(rm_llama, PROMPT, TRICKY[0])
    assert slow.meta["path"] == "prefix-batched"
    assert any("self-check failed" in w for w in slow.warnings)
    np.testing.assert_allclose(fast.rewards, slow.rewards, atol=1e-5)


# ----------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("rm", ALL, indirect=True)
def test_telescoping_sum_and_no_credit_on_prompt_tokens(rm):
    for text in TRICKY:
        tr = red_core.token_rewards(rm, PROMPT, text)
        assert tr.total == pytest.approx(tr.score - tr.baseline, abs=1e-5)
        assert tr.check()["ok"]
        # Every reward belongs to a response token or a template token after it; none to the prompt.
        assert response_part(tr) == text
        enc = encode(rm, PROMPT, text)
        assert len(tr) == enc.stop - enc.start
        prompt_only = rm.tokenizer(PROMPT)["input_ids"]
        assert enc.start >= len(prompt_only) - 2  # the prompt's tokens sit before the first scored token
        nb = red_core.token_rewards(rm, PROMPT, text, prompt_baseline=False)
        assert nb.total == pytest.approx(nb.score, abs=1e-5)
        mixed = red_core.token_rewards(rm, PROMPT, text, beta_c=0.3)
        assert mixed.total == pytest.approx(0.3 * (tr.score - tr.baseline) + 0.7 * tr.score, abs=1e-5)
        for m in ("sparse", "uniform", "abc"):
            assert red_core.token_rewards(rm, PROMPT, text, method=m).total == pytest.approx(tr.score, abs=1e-5)


@pytest.mark.parametrize("rm", ALL, indirect=True)
def test_offsets_tile_the_response_exactly(rm):
    for text in TRICKY:
        tr = red_core.token_rewards(rm, PROMPT, text)
        pos = 0
        for (s, e), sp in zip(tr.offsets, tr.special):
            if sp:
                assert (s, e) == (len(text), len(text))
                continue
            assert s == pos and e >= s
            pos = e
        assert pos == len(text)
        assert [text[s:e] for (s, e), sp in zip(tr.offsets, tr.special) if not sp] == [
            t for t, sp in zip(tr.texts, tr.special) if not sp]


def test_chat_template_path(rm_qwen_chat):
    tr = red_core.token_rewards(rm_qwen_chat, "What is 2+2?", "It is 4.")
    assert tr.meta["chat_template"] is True
    assert response_part(tr) == "It is 4."
    assert tr.texts[-2:] == ["<|im_end|>", "\n"] and tr.special[-2:] == [True, True]
    assert tr.total == pytest.approx(tr.score - tr.baseline, abs=1e-5)
    # The prompt-only input is the templated prompt plus the assistant header.
    enc = encode(rm_qwen_chat, "What is 2+2?", "It is 4.")
    head = rm_qwen_chat.tokenizer.decode(enc.ids[:enc.start])
    assert head.endswith("<|im_start|>assistant\n") and "What is 2+2?" in head
    plain = red_core.load_reward_model(rm_qwen_chat.name, input_format="concat")
    assert plain.uses_chat_template is False
    assert not any(red_core.token_rewards(plain, "What is 2+2?", "It is 4.").special)


def test_empty_prompt_uses_bos_baseline_or_says_zero(rm_llama, rm_gpt2):
    with_bos = red_core.token_rewards(rm_llama, "", "Fine.")
    assert with_bos.baseline is not None  # the <bos> token alone is the prompt-only input
    assert with_bos.total == pytest.approx(with_bos.score - with_bos.baseline, abs=1e-5)
    no_bos = red_core.token_rewards(rm_gpt2, "", "Fine.")
    assert no_bos.baseline is None
    assert no_bos.total == pytest.approx(no_bos.score, abs=1e-5)
    assert any("taken as 0" in w for w in no_bos.warnings)


def test_pad_equal_eos_follows_the_models_pooling(model_dir):
    rm = red_core.load_reward_model(model_dir("llama", pad_is_eos=True))
    assert any("pad_token_id equals eos_token_id" in w for w in rm.warnings)
    text = "Done here.<eos>"
    tr = red_core.token_rewards(rm, PROMPT, text)
    assert tr.texts[-1] == "<eos>"
    assert tr.rewards[-1] == 0.0  # like transformers, the text ending in EOS is scored at the token before
    _, loop = scoring.score_prefixes_loop(rm, encode(rm, PROMPT, text))
    np.testing.assert_allclose(tr.prefix_scores, loop, atol=1e-5)


def test_truncation_is_visible_and_exact(model_dir):
    rm = red_core.load_reward_model(model_dir("llama"))
    rm.max_length = 24
    long = "word " * 60
    tr = red_core.token_rewards(rm, "Hi. ", long)
    assert any("were cut" in w for w in tr.warnings)
    enc = encode(rm, "Hi. ", long)
    assert len(enc.ids) == 24
    _, loop = scoring.score_prefixes_loop(rm, enc)
    np.testing.assert_allclose(tr.prefix_scores, loop, atol=1e-5)
    with pytest.raises(RewardModelError, match="prompt alone"):
        red_core.token_rewards(rm, "word " * 60, "ok")


# ----------------------------------------------------------------------------- granularity and alignment


@pytest.mark.parametrize("rm", ["rm_llama", "rm_bert"], indirect=True)
def test_word_and_sentence_units_keep_sums_and_chain_prefix_scores(rm):
    text = "Not bad at all. Truly great!\nThe end."
    tr = red_core.token_rewards(rm, PROMPT, text)
    for level in ("word", "sentence", 3):
        agg = tr.aggregate(level)
        assert agg.total == pytest.approx(tr.total, abs=1e-9)
        assert response_part(agg) == text
        direct = red_core.token_rewards(rm, PROMPT, text, granularity=level)
        np.testing.assert_allclose(direct.rewards, agg.rewards, atol=1e-5)
        np.testing.assert_allclose(direct.prefix_scores, agg.prefix_scores, atol=1e-5)
    words = tr.aggregate("word")
    assert [t.strip() for t, s in zip(words.texts, words.special) if not s] == text.split()
    sentences = tr.aggregate("sentence")
    assert [t.strip() for t, s in zip(sentences.texts, sentences.special) if not s] == [
        "Not bad at all.", "Truly great!", "The end."]


def test_transfer_rewards_between_tokenizers_keeps_the_sum(rm_bert, rm_llama):
    text = "Not bad at all, truly great!"
    src = red_core.token_rewards(rm_bert, PROMPT, text)
    dst = red_core.token_rewards(rm_llama, PROMPT, text)
    moved = align.transfer_rewards([e for _, e in src.offsets], src.rewards, [e for _, e in dst.offsets])
    assert moved.sum() == pytest.approx(src.total, abs=1e-9)
    # Reference loop: cumulative source reward at each target end, differenced.
    ends = [e for _, e in src.offsets]
    cum = [sum(r for r, e2 in zip(src.rewards, ends) if e2 <= e) for _, e in dst.offsets]
    ref = np.diff([0.0] + cum)
    ref[-1] += src.total - cum[-1]
    np.testing.assert_allclose(moved, ref, atol=1e-12)


# ----------------------------------------------------------------------------- result object


def test_result_exports_round_trip_and_escape(rm_llama, tmp_path):
    tr = red_core.token_rewards(rm_llama, PROMPT, "<script>alert(1)</script> & <img src=x onerror=alert(2)>")
    back = TokenRewards.from_json(tr.to_json())
    np.testing.assert_array_equal(back.rewards, tr.rewards)
    assert back.texts == tr.texts and back.offsets == tr.offsets and back.baseline == tr.baseline
    path = tmp_path / "tr.json"
    tr.to_json(path)
    assert TokenRewards.from_json(str(path)).score == tr.score
    df = tr.to_pandas()
    assert list(df.columns[:3]) == ["text", "token", "start"] and len(df) == len(tr)
    assert tr.to_csv().count("\n") == len(tr) + 1 + sum(t.count("\n") for t in tr.texts)
    page = tr.to_html()
    assert "<script" not in page and "<img" not in page and "&lt;" in page
    # The page's visible token text is exactly the response, escaped and unescaped again.
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts, self.depth = [], 0

        def handle_starttag(self, tag, attrs):
            self.depth += ("tok" in dict(attrs).get("class", "") and "special" not in dict(attrs)["class"])

        def handle_endtag(self, tag):
            self.depth = 0

        def handle_data(self, data):
            if self.depth:
                self.parts.append(data)

    parser = Text()
    parser.feed(page)
    assert "".join(parser.parts) == tr.response
    assert page.count('class="tok') == len(tr)
    assert "R(x, ∅)" in page and tr._repr_html_().startswith("<style>")
    row = json.loads(tr.to_json())["tokens"][0]
    assert set(row) == {"text", "start", "end", "id", "special", "reward", "prefix_score"}


def test_result_validates_shapes():
    with pytest.raises(ValueError, match="rewards has 1 entries"):
        TokenRewards(prompt="", response="ab", texts=["a", "b"], offsets=[(0, 1), (1, 2)], token_ids=[1, 2],
                     special=[False, False], rewards=[0.1], prefix_scores=[0.1, 0.2], score=0.2, baseline=0.0)
    with pytest.raises(ValueError, match="outside the response"):
        TokenRewards(prompt="", response="ab", texts=["a"], offsets=[(0, 5)], token_ids=[1], special=[False],
                     rewards=[0.1], prefix_scores=[0.1], score=0.1, baseline=0.0)


# ----------------------------------------------------------------------------- bad inputs


def test_missing_model_offline_says_so(tmp_path):
    with pytest.raises(RewardModelError, match="offline mode is on"):
        red_core.load_reward_model("nobody/no-such-reward-model")
    with pytest.raises(RewardModelError, match="folder .* not found"):
        red_core.load_reward_model(str(tmp_path / "missing"))


def test_causal_lm_without_head_is_refused(tmp_path):
    folder = red_core.testing.tiny_causal_lm(tmp_path / "lm")
    with pytest.raises(RewardModelError, match="no sequence-classification head"):
        red_core.load_reward_model(folder)


def test_head_missing_from_checkpoint_is_refused(tmp_path):
    from transformers import LlamaConfig, LlamaModel

    tok = red_core.testing.byte_bpe_tokenizer()
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, num_labels=1)
    red_core.testing.save_model(LlamaModel(cfg), tok, tmp_path / "bare")
    cfg_path = tmp_path / "bare" / "config.json"  # a config that claims a head the weights lack
    cfg_path.write_text(cfg_path.read_text().replace('"LlamaModel"', '"LlamaForSequenceClassification"'))
    with pytest.raises(RewardModelError, match="no trained sequence-classification head"):
        red_core.load_reward_model(tmp_path / "bare")


def test_several_labels_need_a_label_index(model_dir):
    folder = model_dir("bert", num_labels=2)
    with pytest.raises(RewardModelError, match="label_index"):
        red_core.load_reward_model(folder)
    rm = red_core.load_reward_model(folder, label_index=1)
    tr = red_core.token_rewards(rm, "", "great film")
    with torch.no_grad():
        own = rm.model(**rm.tokenizer("great film", return_tensors="pt")).logits[0, 1]
    assert tr.score == pytest.approx(float(own), abs=1e-5)
    with pytest.raises(RewardModelError, match="out of range"):
        red_core.load_reward_model(folder, label_index=5)


def test_tokenizer_without_pad_gets_eos_and_a_warning(model_dir):
    rm = red_core.load_reward_model(model_dir("llama", no_pad=True))
    assert rm.tokenizer.pad_token == "<eos>"
    assert any("no pad token" in w for w in rm.warnings)
    assert red_core.token_rewards(rm, PROMPT, "ok then").check()["ok"]


def test_pickle_weights_need_opt_in(tmp_path):
    tok = red_core.testing.byte_bpe_tokenizer()
    folder = red_core.testing.tiny_reward_model("llama", tmp_path / "src", tokenizer=tok)
    model = red_core.load_reward_model(folder).model
    red_core.testing.save_model(model, tok, tmp_path / "pickle")
    (tmp_path / "pickle" / "model.safetensors").unlink()  # transformers 5 always writes safetensors
    torch.save(model.state_dict(), tmp_path / "pickle" / "pytorch_model.bin")
    assert not list((tmp_path / "pickle").glob("*.safetensors"))
    with pytest.raises(RewardModelError, match="allow_pickle=True"):
        red_core.load_reward_model(tmp_path / "pickle")
    rm = red_core.load_reward_model(tmp_path / "pickle", allow_pickle=True)
    assert red_core.token_rewards(rm, PROMPT, "ok").check()["ok"]


def test_remote_code_needs_opt_in(model_dir, tmp_path):
    import shutil

    folder = tmp_path / "remote"
    shutil.copytree(model_dir("llama"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_custom.CustomRM",
                       "AutoConfig": "modeling_custom.CustomConfig"}
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RewardModelError, match="trust_remote_code=True"):
        red_core.load_reward_model(folder)


def test_bad_text_inputs(rm_llama):
    with pytest.raises(RewardModelError, match="response is empty"):
        red_core.token_rewards(rm_llama, PROMPT, "")
    with pytest.raises(RewardModelError, match="must be strings"):
        red_core.token_rewards(rm_llama, PROMPT, None)
    with pytest.raises(ValueError, match="pass one prompt per response"):
        red_core.token_rewards_batch(rm_llama, ["a"], ["b", "c"])
    out = red_core.token_rewards_batch(rm_llama, [PROMPT, PROMPT, PROMPT], ["good", "", "fine"], on_error="return")
    assert isinstance(out[1], RewardModelError) and out[0].check()["ok"] and out[2].check()["ok"]
