"""Framework adapters: RED token rewards handed to verl through its own reward-manager interface.

A real verl `DataProto` with the keys verl's trainer puts there after a rollout (left-padded prompts,
right-padded responses, attention_mask, input_ids, position_ids, response_mask; data_source, raw_prompt,
reward_model, uid) goes in through verl's own loader and `compute_reward`; the (B, response_length) reward
tensor comes out and is checked against red_core's own scoring of the same ids, row by row. No cluster:
verl is imported, nothing of it is launched. The tiny RMs are built in-process (tests/conftest.py).
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from red_core import token_rewards
from red_core.train.rewards import rollout_credit

# ----------------------------------------------------------------------------- without verl


def test_red_core_imports_without_verl_and_the_adapter_names_the_extra(monkeypatch):
    code = "import sys, red_core, red_core.integrations; print(sorted(m for m in sys.modules if m.startswith('verl')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # importing red_core (and the integrations package) imports no verl
    monkeypatch.setitem(sys.modules, "verl", None)  # as if verl were not installed
    monkeypatch.delitem(sys.modules, "red_core.integrations.verl", raising=False)
    with pytest.raises(ImportError, match=r"pip install '\.\[verl\]'"):
        import red_core.integrations.verl  # noqa: F401


# ----------------------------------------------------------------------------- a verl batch

# Not installed: the tests below skip. Installed but broken (say tensordict missing): they fail, loudly.
HAVE_VERL = importlib.util.find_spec("verl") is not None
needs_verl = pytest.mark.skipif(not HAVE_VERL, reason="verl is not installed; CI installs it with `pip install "
                                "--no-deps verl==0.7.0` (its DataProto and config need tensordict and hydra-core)")
if HAVE_VERL:
    import verl
    from omegaconf import OmegaConf  # a verl dependency
    from packaging.version import Version
    from verl import DataProto

    from red_core.integrations.verl import LAST_TRAINER_VERSION, NAME, REDRewardManager

    TRAINER_CALLS_MANAGERS = Version(verl.__version__) <= Version(LAST_TRAINER_VERSION)
    OLD_TRAINER_ONLY = pytest.mark.skipif(not TRAINER_CALLS_MANAGERS, reason=(
        f"verl {verl.__version__}'s trainer no longer loads AbstractRewardManager classes (verl<={LAST_TRAINER_VERSION} "
        "does; examples/verl/red_ppo.yaml is for it)"))
else:
    OLD_TRAINER_ONLY = needs_verl

PROMPTS = ["The movie was", "Hi", "This is a terrible", "I love sunny", "Why?", "Hello"]
RESPONSES = [" great and wonderful", " world", ", awful day.", " mornings and fresh coffee", "", ""]
EOS = [True, True, False, False, True, False]  # rows 2, 3 stopped at the length limit; row 4 generated only EOS;
# row 5 has no response token at all


def verl_batch(tok, prompts, responses, eos, *, L=None, raw_prompt=True, sources=None):
    """The batch verl's trainer hands its reward manager: prompts left-padded, responses right-padded."""
    p_ids = [tok(p).input_ids for p in prompts]
    r_ids = [tok(r, add_special_tokens=False).input_ids + ([tok.eos_token_id] if e else []) for r, e in zip(responses, eos)]
    P, L = max(map(len, p_ids)) + 1, L or max(map(len, r_ids)) + 2
    pad = tok.pad_token_id
    prompts_t = torch.tensor([[pad] * (P - len(p)) + p for p in p_ids])  # (B, P)
    responses_t = torch.tensor([r + [pad] * (L - len(r)) for r in r_ids])  # (B, L)
    mask = torch.tensor([[0] * (P - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (L - len(r))
                         for p, r in zip(p_ids, r_ids)])  # (B, P + L)
    B = len(prompts)
    raw = np.empty(B, dtype=object)  # one list of chat messages per row, as verl's collate_fn makes it
    gt = np.empty(B, dtype=object)
    for b, p in enumerate(prompts):
        raw[b] = [{"role": "user", "content": p}]
        gt[b] = {"ground_truth": None, "style": "model"}
    non_tensors = {"data_source": np.array(sources or ["movies"] * B, dtype=object), "reward_model": gt,
                   "uid": np.array([f"u{b}" for b in range(B)], dtype=object)}
    if raw_prompt:
        non_tensors["raw_prompt"] = raw
    return DataProto.from_dict(
        tensors={"prompts": prompts_t, "responses": responses_t, "input_ids": torch.cat([prompts_t, responses_t], 1),
                 "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
                 "response_mask": mask[:, P:]},
        non_tensors=non_tensors, meta_info={"eos_token_id": tok.eos_token_id, "pad_token_id": pad})


def rows(data):
    """Each row's prompt ids and response ids without padding (read back from the batch, not from the test)."""
    P = data.batch["prompts"].shape[1]
    for p, r, m in zip(data.batch["prompts"], data.batch["responses"], data.batch["attention_mask"]):
        yield p[m[:P].bool()].tolist(), r[m[P:].bool()].tolist()


def trainer_config(source: str, **reward_kwargs):
    """The parts of verl's PPO trainer config that its `load_reward_manager` reads."""
    name = NAME if source == "register" else "REDRewardManager"
    return OmegaConf.create({
        "reward_manager": {"source": source, "name": name,
                           "module": {"path": "pkg://red_core.integrations.verl", "name": None}},
        "reward_model": {"reward_manager": NAME, "reward_kwargs": reward_kwargs, "sandbox_fusion": None},
        "custom_reward_function": {"path": None, "name": "compute_score"},
        "data": {"reward_fn_key": "data_source"}})


# ----------------------------------------------------------------------------- RED through verl's interface


@needs_verl
@OLD_TRAINER_ONLY
@pytest.mark.parametrize("source", ["register", "importlib"])
def test_verl_loads_the_manager_by_name_and_its_trainer_gets_the_token_tensor(model_dir, rm_llama, source):
    from verl.trainer.ppo.reward import compute_reward, load_reward_manager

    tok = rm_llama.tokenizer
    config = trainer_config(source, reward_model=model_dir("llama"), batch_size=2)
    manager = load_reward_manager(config, tok, num_examine=0, **config.reward_model.reward_kwargs)
    assert isinstance(manager, REDRewardManager) and manager.batch_size == 2 and manager.shared
    val = load_reward_manager(config, tok, num_examine=1, **config.reward_model.reward_kwargs)  # validation's
    assert val.rm is manager.rm  # the trainer's two managers share one copy of the RM
    data = verl_batch(tok, PROMPTS, RESPONSES, EOS)
    reward, extra = compute_reward(data, manager)  # what verl's trainer calls after each rollout
    direct = REDRewardManager(tok, 0, reward_model=rm_llama)(data, return_dict=True)  # the same RM, loaded once more
    torch.testing.assert_close(reward, direct["reward_tensor"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(extra["red_score"], direct["reward_extra_info"]["red_score"], atol=1e-5)


@needs_verl
@OLD_TRAINER_ONLY
def test_the_example_config_composes_with_verls_own_and_builds_the_manager(model_dir, rm_llama):
    import hydra  # verl's config system (requirements-dev.txt)

    folder = Path(__file__).resolve().parents[1] / "examples" / "verl"
    with hydra.initialize_config_dir(config_dir=str(folder), version_base=None):
        cfg = hydra.compose(config_name="red_ppo", overrides=[f"reward_model.reward_kwargs.reward_model={model_dir('llama')}"])
    assert cfg.critic.strategy == "fsdp" and cfg.trainer.n_gpus_per_node == 1  # verl's defaults, then the example's
    assert (cfg.algorithm.adv_estimator, cfg.reward_model.use_reward_loop, cfg.reward_model.enable) == ("gae", False, False)
    from verl.trainer.ppo.reward import load_reward_manager

    manager = load_reward_manager(cfg, rm_llama.tokenizer, num_examine=0, **cfg.reward_model.get("reward_kwargs", {}))
    assert isinstance(manager, REDRewardManager)
    assert (manager.method, manager.params, manager.batch_size) == ("red", {"beta_c": 1.0, "prompt_baseline": True}, 16)
    assert manager.rm.device.type == ("cuda" if torch.cuda.is_available() else "cpu")  # device: auto


@needs_verl
def test_red_credit_lands_on_the_response_tokens_and_telescopes(rm_llama):
    tok = rm_llama.tokenizer  # the policy's tokenizer: the RM has the same vocabulary and no chat template
    data = verl_batch(tok, PROMPTS, RESPONSES, EOS)
    manager = REDRewardManager(tok, 0, reward_model=rm_llama, batch_size=2)
    assert manager.shared
    out = manager(data, return_dict=True)
    reward, extra = out["reward_tensor"], out["reward_extra_info"]
    mask = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:]
    assert reward.shape == data.batch["responses"].shape and reward.dtype == torch.float32
    assert torch.all(reward[mask == 0] == 0)  # nothing on padding
    assert len(extra["red_score"]) == len(extra["red_baseline"]) == len(data)
    for b, (p, r) in enumerate(rows(data)):
        if not r:  # no response token at all: nothing to credit
            assert torch.all(reward[b] == 0) and np.isnan(extra["red_score"][b])
            continue
        alone = rollout_credit(rm_llama, tok, [p], [r], [""], "red", {}, len(r))  # this row scored on its own
        np.testing.assert_allclose(reward[b, : len(r)].numpy(), alone.credit[0].numpy(), atol=1e-4)
        assert extra["red_score"][b] == pytest.approx(alone.scores[0], abs=1e-4)
        # telescoping: the row's credit is R(x, y) − R(x, ∅)
        assert float(reward[b].sum()) == pytest.approx(extra["red_score"][b] - extra["red_baseline"][b], abs=1e-4)
        if not EOS[b]:  # a response without EOS is plain text: the text API scores the very same ids
            tr = token_rewards(rm_llama, PROMPTS[b], RESPONSES[b])
            assert [i for ids in tr.token_ids for i in ids] == r
            np.testing.assert_allclose(reward[b, : len(r)].numpy(), tr.rewards, atol=1e-4)
            assert (tr.score, tr.baseline) == (pytest.approx(extra["red_score"][b], abs=1e-4),
                                               pytest.approx(extra["red_baseline"][b], abs=1e-4))
    assert torch.equal(manager(data), reward)  # return_dict=False: the tensor alone


@needs_verl
def test_an_rm_with_its_own_chat_template_reads_the_raw_prompt_and_keeps_the_sum(rm_llama, rm_qwen_chat):
    tok = rm_llama.tokenizer
    policy_prompts = [f"User: {p}\nAssistant:" for p in PROMPTS[:4]]  # the policy's own template around the prompt
    data = verl_batch(tok, policy_prompts, RESPONSES[:4], EOS[:4])
    data.non_tensor_batch["raw_prompt"] = verl_batch(tok, PROMPTS[:4], RESPONSES[:4], EOS[:4]).non_tensor_batch[
        "raw_prompt"]  # the chat messages before the policy's template: what the user asked
    manager = REDRewardManager(tok, 0, reward_model=rm_qwen_chat)
    assert not manager.shared  # a chat template: the RM reads text
    out = manager(data, return_dict=True)
    reward, extra = out["reward_tensor"], out["reward_extra_info"]
    mask = data.batch["attention_mask"][:, data.batch["prompts"].shape[1]:]
    assert torch.all(reward[mask == 0] == 0)
    for b, (_, r) in enumerate(rows(data)):
        text = tok.decode(r, skip_special_tokens=True)
        tr = token_rewards(rm_qwen_chat, PROMPTS[b], text)  # the RM's view: the user's prompt, the decoded response
        assert extra["red_score"][b] == pytest.approx(tr.score, abs=1e-4)
        assert extra["red_baseline"][b] == pytest.approx(tr.baseline, abs=1e-4)
        assert float(reward[b].sum()) == pytest.approx(tr.score - tr.baseline, abs=1e-4)
        alone = rollout_credit(rm_qwen_chat, tok, [[]], [r], [PROMPTS[b]], "red", {}, len(r))
        np.testing.assert_allclose(reward[b, : len(r)].numpy(), alone.credit[0].numpy(), atol=1e-4)
    # without raw_prompt the prompt ids are decoded: the RM then sees the policy's template text
    bare = verl_batch(tok, policy_prompts[:1], RESPONSES[:1], EOS[:1], raw_prompt=False)
    got = manager(bare, return_dict=True)["reward_extra_info"]
    assert got["red_score"][0] == pytest.approx(token_rewards(rm_qwen_chat, policy_prompts[0], RESPONSES[0]).score,
                                                abs=1e-4)


@needs_verl
def test_options_pick_the_method_and_examine_prints_per_data_source(rm_llama, capsys):
    tok = rm_llama.tokenizer
    data = verl_batch(tok, PROMPTS[:4], RESPONSES[:4], EOS[:4], sources=["a", "a", "b", "b"])
    red = REDRewardManager(tok, 0, reward_model=rm_llama)(data, return_dict=True)
    sparse = REDRewardManager(tok, 1, reward_model=rm_llama, method="sparse")(data, return_dict=True)
    half = REDRewardManager(tok, 0, reward_model=rm_llama, beta_c=0.5)(data)
    np.testing.assert_allclose(sparse["reward_extra_info"]["red_score"], red["reward_extra_info"]["red_score"])
    for b, (_, r) in enumerate(rows(data)):
        last = len(r) - 1  # sparse: all of R(x, y) on the last response token, EOS or not
        assert float(sparse["reward_tensor"][b, last]) == pytest.approx(red["reward_extra_info"]["red_score"][b],
                                                                        abs=1e-5)
        assert torch.count_nonzero(sparse["reward_tensor"][b]) == 1
    torch.testing.assert_close(half, 0.5 * red["reward_tensor"] + 0.5 * sparse["reward_tensor"])  # paper Eq. 7
    printed = capsys.readouterr().out
    assert printed.count("[response]") == 2 and "method=sparse" in printed  # num_examine=1 row per data source


@needs_verl
def test_bad_options_fail_before_the_model_is_loaded(rm_llama):
    tok, nowhere = rm_llama.tokenizer, "/nonexistent/reward-model"
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['betac'\]"):
        REDRewardManager(tok, 0, reward_model=nowhere, betac=0.5)
    with pytest.raises(ValueError, match="cannot score verl rollouts"):
        REDRewardManager(tok, 0, reward_model=nowhere, method="ig")
    with pytest.raises(ValueError, match="beta_c must be between 0 and 1"):
        REDRewardManager(tok, 0, reward_model=nowhere, beta_c=2.0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        REDRewardManager(tok, 0, reward_model=nowhere, batch_size=0)
    manager = REDRewardManager(tok, 0, reward_model=rm_llama)
    data = verl_batch(tok, PROMPTS[:2], RESPONSES[:2], EOS[:2])
    data.batch["attention_mask"] = data.batch["attention_mask"][:, 1:]  # a mask that does not cover prompt + response
    with pytest.raises(ValueError, match=r"the mask must cover prompt \+ response"):
        manager(data)
