"""Exact and lossless inputs: where the response is under a chat template, clear load errors, safe CSV.

The response is located by construction (a marker rendered through the template), never by
searching, so a response that also occurs in the template's own text is still found in its place.
"""



import copy
import json
import shutil

import pytest

import red_core
from red_core.models import RewardModelError, encode

# Each test template, with the text it must put before and after the assistant's content. The head and
# tail are written out by hand here, independently of the code under test.
TEMPLATES = {
    "chatml, with generation prompt": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
        lambda p: f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "chatml, no generation prompt": (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}",
        lambda p: f"<|im_start|>user\n{p}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
    "plain-text end of text": (
        "{{ bos_token }}{% for m in messages %}{{ m['role'] | upper }}: {{ m['content'] }}\n<|endoftext|>\n"
        "{% endfor %}{% if add_generation_prompt %}ASSISTANT: {% endif %}",
        lambda p: f"<bos>USER: {p}\n<|endoftext|>\nASSISTANT: ", "\n<|endoftext|>\n"),
    "eos after each turn": (
        "{% for m in messages %}### {{ m['role'] }}\n{{ m['content'] }}{{ eos_token }}{% endfor %}",
        lambda p: f"### user\n{p}<eos>### assistant\n", "<eos>"),
}
PROMPTS = ["Say something kind.", ""]


@pytest.fixture(scope="module")
def chat_rm(model_dir):
    """A causal RM whose tokenizer reads "<|endoftext|>" as plain text (the templates above add their own)."""
    return red_core.load_reward_model(model_dir("llama", chat=True))


def with_template(rm, template):
    rm = copy.copy(rm)
    rm.tokenizer = copy.deepcopy(rm.tokenizer)
    rm.tokenizer.chat_template = template
    return rm


def expected_split(rm, text: str, lo: int, hi: int) -> tuple[int, int, int]:
    """(first, count, end) of the tokens of `text` that overlap characters [lo, hi), from the tokenizer's
    offsets; `end` is where the last of them ends (a token may straddle the response's edge)."""
    spans = rm.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    inside = [i for i, (s, e) in enumerate(spans) if e > s and e > lo and s < hi]
    return inside[0], len(inside), spans[inside[-1]][1]


def assert_response_in_place(rm, prompt, response, head, tail):
    enc = encode(rm, prompt, response)
    text = head + response + tail
    first, count, end = expected_split(rm, text, len(head), len(head) + len(response))
    assert rm.tokenizer.decode(enc.ids) == text, "the RM must see exactly head + response + tail"
    assert enc.start == first, f"response {response!r}: scored tokens start at {enc.start}, expected {first}"
    assert enc.special.count(False) == count
    assert "".join(t for t, s in zip(enc.texts, enc.special) if not s) == response
    assert rm.tokenizer.decode(enc.ids[enc.start + count:enc.stop]) == text[end:]  # the template's tail tokens


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_every_short_piece_of_the_template_suffix_is_found_in_its_place(chat_rm, name):
    template, head_of, tail = TEMPLATES[name]
    rm = with_template(chat_rm, template)
    pieces = {tail[i:i + n] for n in (1, 2, 3) for i in range(len(tail) - n + 1)}
    pieces = sorted(p for p in pieces if p.strip())  # an all-whitespace response is its own case below
    assert len(pieces) >= 8
    for prompt in PROMPTS:
        head = head_of(prompt)
        for response in pieces:
            assert_response_in_place(rm, prompt, response, head, tail)
        # the response equal to the prompt, and a response repeated inside the prompt
        assert_response_in_place(rm, "echo", "echo", head_of("echo"), tail)
        assert_response_in_place(rm, "yes yes yes", "yes", head_of("yes yes yes"), tail)
        assert_response_in_place(rm, prompt, "  spaced\n", head, tail)


def test_misplaced_response_would_not_telescope_to_the_right_baseline(chat_rm):
    # "end" also occurs in "<|im_end|>". The score of the prompt-only input must be the score of
    # the head alone, which the old search-based location got wrong while check() still said ok.
    rm = with_template(chat_rm, TEMPLATES["chatml, with generation prompt"][0])
    tr = red_core.token_rewards(rm, "Say hi", "end")
    head = TEMPLATES["chatml, with generation prompt"][1]("Say hi")
    ids = rm.tokenizer(head, add_special_tokens=False)["input_ids"]
    import torch

    with torch.no_grad():
        own = rm.model(input_ids=torch.tensor([ids])).logits[0, rm.label_index]
    assert tr.baseline == pytest.approx(float(own), abs=1e-4)
    assert tr.check()["ok"] and [t for t, s in zip(tr.texts, tr.special) if not s] != []


def test_templates_that_rewrite_the_response_are_refused_clearly(chat_rm):
    trim = with_template(chat_rm, "{% for m in messages %}{{ m['role'] }}: {{ m['content'] | trim }}\n{% endfor %}")
    assert red_core.token_rewards(trim, "q", "fine").check()["ok"]  # nothing to strip: scored
    with pytest.raises(RewardModelError, match="strips whitespace"):
        red_core.token_rewards(trim, "q", " fine\n")
    think = with_template(chat_rm, "{% for m in messages %}{{ m['role'] }}: "
                                   "{{ m['content'].split('</think>')[-1] }}\n{% endfor %}")
    with pytest.raises(RewardModelError, match="changes it"):
        red_core.token_rewards(think, "q", "<think>hmm</think>Yes.")
    twice = with_template(chat_rm, "{% for m in messages %}{{ m['content'] }}|{{ m['content'] }}{% endfor %}")
    with pytest.raises(RewardModelError, match="2 times"):
        red_core.token_rewards(twice, "q", "a")
    dropped = with_template(chat_rm, "{% for m in messages %}{% if m['role'] == 'user' %}{{ m['content'] }}"
                                     "{% endif %}{% endfor %}")
    with pytest.raises(RewardModelError, match="0 times"):
        red_core.token_rewards(dropped, "q", "a")


def test_chat_template_failures_are_named(chat_rm):
    sandboxed = with_template(chat_rm, "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(RewardModelError, match="chat template failed"):
        red_core.token_rewards(sandboxed, "q", "a")
    raising = with_template(chat_rm, "{{ raise_exception('roles must alternate') }}")
    with pytest.raises(RewardModelError, match="roles must alternate"):
        red_core.token_rewards(raising, "q", "a")
    out = red_core.token_rewards_batch(sandboxed, ["q", "q"], ["a", "b"], on_error="return")
    assert all(isinstance(o, RewardModelError) for o in out)


def test_lone_surrogates_are_reported_not_raised_as_type_errors(rm_llama):
    with pytest.raises(RewardModelError, match=r"lone surrogate U\+D800 at character 3"):
        red_core.token_rewards(rm_llama, "q", "abc\ud800")
    with pytest.raises(RewardModelError, match="prompt contains"):
        red_core.token_rewards(rm_llama, "\udfff", "fine")
    out = red_core.token_rewards_batch(rm_llama, ["q", "q", "q"], ["good", "x\ud800", "fine"], on_error="return")
    assert isinstance(out[1], RewardModelError) and out[0].check()["ok"] and out[2].check()["ok"]


# ----------------------------------------------------------------------------- load errors


@pytest.fixture
def saved(model_dir, tmp_path):
    """A fresh copy of a tiny RM folder that a test may damage."""
    folder = tmp_path / "rm"
    shutil.copytree(model_dir("llama"), folder)
    return folder


def test_folder_without_config_is_not_called_a_missing_hub_id(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(RewardModelError, match="has no config.json") as err:
        red_core.load_reward_model(tmp_path)
    assert "offline" not in str(err.value)
    with pytest.raises(RewardModelError, match="is a file, not a model folder"):
        red_core.load_reward_model(tmp_path / "notes.txt")


def test_corrupt_config_names_the_file(saved):
    (saved / "config.json").write_text('{"model_type": "llama",')
    with pytest.raises(RewardModelError, match=r"config\.json is not valid JSON") as err:
        red_core.load_reward_model(saved)
    assert str(saved / "config.json") in str(err.value)


def test_folder_without_weights_says_so(saved):
    (saved / "model.safetensors").unlink()
    with pytest.raises(RewardModelError, match="has no weights file") as err:
        red_core.load_reward_model(saved)
    assert "pickle" not in str(err.value)


def test_truncated_weights_name_the_file(saved):
    data = (saved / "model.safetensors").read_bytes()
    (saved / "model.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(RewardModelError, match="damaged or incomplete") as err:
        red_core.load_reward_model(saved)
    assert "model.safetensors" in str(err.value)
    (saved / "model.safetensors").write_bytes(b"\x00" * 7)
    with pytest.raises(RewardModelError, match="damaged or incomplete"):
        red_core.load_reward_model(saved)


def test_corrupt_tokenizer_names_the_tokenizer(saved):
    (saved / "tokenizer.json").write_text("{not json")
    with pytest.raises(RewardModelError, match="tokenizer in folder"):
        red_core.load_reward_model(saved)


def test_home_folder_is_expanded(saved, monkeypatch):
    monkeypatch.setenv("HOME", str(saved.parent))
    rm = red_core.load_reward_model("~/rm")
    assert rm.name == str(saved)
    assert red_core.token_rewards(rm, "q", "fine").check()["ok"]
    policy = red_core.testing.tiny_causal_lm(saved.parent / "lm", layers=1, width=32)
    model, tok = red_core.load_policy(f"~/{policy.name}")
    assert model.config.model_type == "llama" and tok is not None


def test_policy_load_errors_are_clear(tmp_path):
    with pytest.raises(RewardModelError, match="has no config.json"):
        red_core.load_policy(tmp_path)
    folder = red_core.testing.tiny_causal_lm(tmp_path / "lm", layers=1, width=32)
    (folder / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(RewardModelError, match="damaged or incomplete"):
        red_core.load_policy(folder)


# ----------------------------------------------------------------------------- exports


def test_csv_export_neutralises_formulas_and_json_keeps_the_text(rm_llama, tmp_path):
    response = '=HYPERLINK("http://x","y") +1 -2 @SUM(A1) ok'
    tr = red_core.token_rewards(rm_llama, "q", response)
    import pandas as pd

    tr.to_csv(tmp_path / "t.csv")
    cells = pd.read_csv(tmp_path / "t.csv", keep_default_na=False)
    for col in ("token", "text"):
        assert not any(str(c).startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells[col])
    first = cells["text"][0]
    assert first.startswith("'=") and first[1:] == tr.texts[0]
    assert json.loads(tr.to_json())["tokens"][0]["text"] == tr.texts[0]  # the exact text stays in JSON
    assert cells["reward"].tolist() == pytest.approx(list(tr.rewards), abs=1e-12)  # numbers untouched


def test_config_that_is_not_an_object_and_tokens_the_model_lacks(saved, rm_llama):
    (saved / "config.json").write_text("[]")
    with pytest.raises(RewardModelError, match="not a model config"):
        red_core.load_reward_model(saved)
    rm = copy.copy(rm_llama)
    rm.tokenizer = copy.deepcopy(rm_llama.tokenizer)
    rm.tokenizer.add_special_tokens({"additional_special_tokens": ["<|new|>"]})  # an id past the embeddings
    with pytest.raises(RewardModelError, match="tokenizer and model do not match"):
        red_core.token_rewards(rm, "q", "a <|new|> b")
    with pytest.raises(ValueError, match="not a TokenRewards export"):
        red_core.TokenRewards.from_json("{}")


def test_config_list_defaults_are_not_shared_between_instances():
    import dataclasses

    from red_core.options import option

    @dataclasses.dataclass
    class Config:
        names: list = option(["a"], "names")

    one, two = Config(), Config()
    one.names.append("b")
    assert two.names == ["a"] and Config().names == ["a"]


def test_max_tokens_refuses_long_responses_per_row_before_scoring(rm_llama):
    short, long = "fine", "a long response " * 20
    with pytest.raises(RewardModelError, match="limit is 8"):
        red_core.token_rewards(rm_llama, "q", long, max_tokens=8)
    out = red_core.token_rewards_batch(rm_llama, ["q", "q"], [long, short], max_tokens=8, on_error="return")
    assert isinstance(out[0], RewardModelError) and out[1].check()["ok"]
    with pytest.raises(ValueError, match="max_tokens must be a positive int"):
        red_core.token_rewards(rm_llama, "q", short, max_tokens=0)


@pytest.mark.parametrize("pad_is_eos", [False, True])
def test_batched_one_pass_pooling_and_attention_equal_single_rows(model_dir, pad_is_eos):
    # The one-pass path pools every row of a batch at once (one gather, one copy to the host); rows of
    # different lengths, either padding side and pad == eos must give what each row gives alone.
    rm = red_core.load_reward_model(model_dir("llama", pad_is_eos=pad_is_eos))
    prompts, responses = ["Q: hi", "Question number two is longer"], ["fine<eos>", "a much longer answer here, ok"]
    for side in ("right", "left"):
        rm.tokenizer.padding_side = side
        for method in ("red", "abc"):
            batch = red_core.token_rewards_batch(rm, prompts, responses, method)
            for tr, p, r in zip(batch, prompts, responses):
                one = red_core.token_rewards(rm, p, r, method)
                assert tr.meta["path"] == one.meta["path"] == "one-pass"
                assert tr.rewards == pytest.approx(one.rewards, abs=1e-5)
                assert tr.score == pytest.approx(one.score, abs=1e-5)
    rm.tokenizer.padding_side = "right"
