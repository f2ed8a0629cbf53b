"""RED token rewards in verl: a reward manager that fills verl's token-level reward tensor with RED credit.

verl's PPO trainer asks its reward manager for the reward of every response token,

    reward_tensor = manager(data, return_dict=True)["reward_tensor"]    # (batch, response_length)

and uses it as `token_level_scores` (minus the KL penalty when `algorithm.use_kl_in_reward`), then GAE.
`REDRewardManager` answers with RED (paper Eq. 6-7) from any Hugging Face reward model:

    r_t = R(x, y≤t) − R(x, y≤t−1),   R(x, y≤−1) = R(x, ∅)

on the response tokens the policy generated (EOS included when it was generated), 0 on padding, so each
row sums to R(x, y) − R(x, ∅). The other prefix-score methods (sparse, uniform, abc) are options.

What it reads from verl's `DataProto` (the keys its trainer puts there after a rollout):
- `prompts` (B, P): prompt ids, left-padded; `responses` (B, L): generated ids, right-padded;
- `attention_mask` (B, P + L): 1 on real tokens, which says where each prompt and response is;
- `raw_prompt` (non-tensor, with `data.return_raw_chat=True`): the chat messages; its last user message is
  the prompt text an RM with another tokenizer sees. Without it the prompt ids are decoded.
Scoring is `red_core.train.rewards.rollout_credit`: an RM with the policy's vocabulary and no chat template
scores the policy's ids as they are (nothing is decoded); any other RM gets decoded text, and its credit
moves back to the policy's tokens by character offsets (the total is kept).

verl versions: the trainer calls this interface (`verl.workers.reward_manager.AbstractRewardManager`) in
verl 0.6.x and in 0.7.0 with `reward_model.use_reward_loop=False`. From 0.7.1 on, verl's trainer takes rewards
only from its "reward loop", whose managers return one number per sample; see examples/verl/README.md.

Importing this module registers the class with verl's registry under the name "red" (`NAME`).
"""

from __future__ import annotations

import functools
import warnings
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from red_core.methods import METHODS, resolve_params
from red_core.models import RewardModel, load_reward_model
from red_core.train.rewards import Credit, rollout_credit, shares_vocabulary

try:
    import verl
    from verl import DataProto
    from verl.workers.reward_manager import register
    from verl.workers.reward_manager.abstract import AbstractRewardManager
    from verl.workers.reward_manager.registry import REWARD_MANAGER_REGISTRY
except ImportError as err:  # the framework is an optional extra
    raise ImportError(
        f"red_core.integrations.verl needs verl ({err}). Install the extra from a red_core checkout: "
        "pip install '.[verl]' (verl>=0.6,<0.7.1: the releases whose PPO trainer reads token-level rewards from a "
        "reward manager).") from err

NAME = "red"  # reward_model.reward_manager=red (verl 0.6) / reward_manager.name=red (verl 0.7)
LAST_TRAINER_VERSION = "0.7.0"  # the newest verl release whose PPO trainer calls reward managers like this one


# ----------------------------------------------------------------------------- verl's padded batch


def split_batch(prompts: torch.Tensor, responses: torch.Tensor, attention_mask: torch.Tensor
                ) -> tuple[list[list[int]], list[list[int]], torch.Tensor]:
    """Each row's prompt ids and response ids without padding, and the (B, L) response mask."""
    P, L = prompts.shape[1], responses.shape[1]
    if attention_mask.shape != (prompts.shape[0], P + L) or responses.shape[0] != prompts.shape[0]:
        raise ValueError(f"verl batch shapes do not fit: prompts {tuple(prompts.shape)}, responses "
                         f"{tuple(responses.shape)}, attention_mask {tuple(attention_mask.shape)}; the mask must "
                         f"cover prompt + response, (B, P + L)")
    prompt_mask = attention_mask[:, :P].bool()  # (B, P) left padding is 0
    response_mask = attention_mask[:, P:].bool()  # (B, L) right padding (after EOS) is 0
    prompt_ids = [row[keep].tolist() for row, keep in zip(prompts, prompt_mask)]
    response_ids = [row[keep].tolist() for row, keep in zip(responses, response_mask)]
    return prompt_ids, response_ids, response_mask


def place_credit(credit: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Move compact credit (B, T), row b on its first n_b slots, onto the response positions: (B, L) float32."""
    out = torch.zeros(response_mask.shape, dtype=torch.float32)  # (B, L)
    for b in range(response_mask.shape[0]):
        positions = response_mask[b].nonzero().squeeze(-1)  # (n_b,) 0..n_b-1 when right-padded
        out[b, positions] = credit[b, : len(positions)].to(torch.float32)
    return out


def chat_prompt_text(messages) -> str | None:
    """The last user message of verl's `raw_prompt` (a list of {"role", "content"}), or None."""
    if not isinstance(messages, (list, tuple, np.ndarray)):
        return None
    for message in reversed(list(messages)):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, (list, tuple)):  # multimodal parts: keep the text ones
                return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return None


# ----------------------------------------------------------------------------- the reward manager


@functools.lru_cache(maxsize=4)
def _load(name: str | None, device, dtype, label_index, input_format: str, allow_pickle: bool,
          trust_remote_code: bool) -> RewardModel:
    """One copy of each RM per process: verl's trainer makes two managers (training and validation) alike."""
    return load_reward_model(name, device=device, dtype=dtype, label_index=label_index, allow_pickle=allow_pickle,
                             trust_remote_code=trust_remote_code, input_format=input_format)


class REDRewardManager(AbstractRewardManager):
    """verl reward manager: RED token rewards (B, response_length) from a Hugging Face reward model.

    verl passes tokenizer (the policy's), num_examine, compute_score and reward_fn_key; the rest comes from
    `reward_model.reward_kwargs` in the trainer config:
    reward_model: hub id or folder of the RM (None: the offline default in assets/models/reward), or a loaded
    `red_core.RewardModel`; method: red, sparse, uniform or abc; beta_c, prompt_baseline (red), beta (abc);
    batch_size: rollouts per RM forward pass; device ("auto": a GPU when this process sees one), dtype,
    label_index, input_format, allow_pickle, trust_remote_code: as in `red_core.load_reward_model`.
    compute_score (verl's rule-based scorer) is accepted for the interface and not used: the RM gives the reward.
    """

    def __init__(self, tokenizer, num_examine: int = 0, compute_score=None, reward_fn_key: str = "data_source",
                 reward_model: str | RewardModel | None = None, method: str = "red", beta_c: float | None = None,
                 prompt_baseline: bool | None = None, beta: float | None = None, batch_size: int = 16,
                 device: str | None = None, dtype: str | None = None, label_index: int | None = None,
                 input_format: str = "auto", allow_pickle: bool = False, trust_remote_code: bool = False,
                 **unknown: Any) -> None:
        if unknown:
            raise TypeError(f"REDRewardManager got unknown option(s) {sorted(unknown)} in reward_model.reward_kwargs; "
                            "it takes: reward_model, method, beta_c, prompt_baseline, beta, batch_size, device, dtype, "
                            "label_index, input_format, allow_pickle, trust_remote_code")
        if method not in METHODS:
            raise ValueError(f"method {method!r} cannot score verl rollouts; choose one of {', '.join(METHODS)} "
                             "(the attribution methods need the model per response and are not for training)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        params = {k: v for k, v in (("beta_c", beta_c), ("prompt_baseline", prompt_baseline), ("beta", beta))
                  if v is not None}
        self.params = resolve_params(method, params)  # bad values fail here, before the RM is loaded
        self.method, self.batch_size = method, batch_size
        self.tokenizer, self.num_examine, self.reward_fn_key = tokenizer, num_examine, reward_fn_key
        self.compute_score = compute_score  # unused: the RM gives the reward
        self.rm = reward_model if isinstance(reward_model, RewardModel) else _load(
            reward_model, device, dtype, label_index, input_format, allow_pickle, trust_remote_code)
        self.shared = shares_vocabulary(self.rm, tokenizer)  # score the policy's ids as they are
        self._said: set[str] = set()

    def prompt_texts(self, data: DataProto, prompt_ids: list[list[int]]) -> list[str]:
        """Prompt text per row, for an RM that reads text: raw_prompt's last user message, else decoded ids."""
        raw = data.non_tensor_batch.get("raw_prompt")
        texts = []
        for b, ids in enumerate(prompt_ids):
            text = chat_prompt_text(raw[b]) if raw is not None else None
            texts.append(text if text is not None else self.tokenizer.decode(ids, skip_special_tokens=True))
        return texts

    def credit(self, data: DataProto) -> tuple[torch.Tensor, Credit]:
        """RED credit of a verl batch: (B, L) float32 on the response positions, and rollout_credit's result."""
        prompt_ids, response_ids, response_mask = split_batch(
            data.batch["prompts"].cpu(), data.batch["responses"].cpu(), data.batch["attention_mask"].cpu())
        B, L = response_mask.shape
        rows = [b for b in range(B) if response_ids[b]]  # a response with no token gets no reward
        texts = ([""] * B) if self.shared else self.prompt_texts(data, prompt_ids)  # text only when the RM reads it
        full = Credit(torch.zeros(B, L, dtype=torch.float64), np.full(B, np.nan), np.full(B, np.nan))
        if rows:
            got = rollout_credit(self.rm, self.tokenizer, [prompt_ids[b] for b in rows],
                                 [response_ids[b] for b in rows], [texts[b] for b in rows], self.method, self.params,
                                 L, shared=self.shared, batch_size=self.batch_size)
            full.credit[rows] = got.credit  # (B, L) compact: row b on its first n_b slots
            full.scores[rows], full.baselines[rows], full.notes = got.scores, got.baselines, got.notes
        return place_credit(full.credit, response_mask).to(data.batch["responses"].device), full

    def __call__(self, data: DataProto, return_dict: bool = False) -> torch.Tensor | dict[str, Any]:
        reward_tensor, got = self.credit(data)  # (B, L)
        for note in got.notes:
            if note not in self._said:
                self._said.add(note)
                print(f"[red] {note}")
        self.examine(data, got)
        if not return_dict:
            return reward_tensor
        extra = {"red_score": got.scores.tolist(), "red_baseline": got.baselines.tolist()}  # (B,) each
        return {"reward_tensor": reward_tensor, "reward_extra_info": extra}

    def examine(self, data: DataProto, got: Credit) -> None:
        """Print the first `num_examine` rows of each data source, as verl's managers do."""
        if self.num_examine <= 0:
            return
        sources = data.non_tensor_batch.get(self.reward_fn_key)
        printed: dict[Any, int] = defaultdict(int)
        prompt_ids, response_ids, _ = split_batch(data.batch["prompts"].cpu(), data.batch["responses"].cpu(),
                                                  data.batch["attention_mask"].cpu())
        for b in range(len(response_ids)):
            source = sources[b] if sources is not None else None
            if printed[source] >= self.num_examine:
                continue
            printed[source] += 1
            print("[prompt]", self.tokenizer.decode(prompt_ids[b], skip_special_tokens=True))
            print("[response]", self.tokenizer.decode(response_ids[b], skip_special_tokens=True))
            print(f"[red] method={self.method} R(x,y)={got.scores[b]:.4f} R(x,∅)={got.baselines[b]:.4f} "
                  f"sum={float(got.credit[b].sum()):.4f}")


def _check_version() -> None:
    """Say so when the installed verl's trainer no longer calls token-level reward managers."""
    from packaging.version import Version

    if Version(verl.__version__) > Version(LAST_TRAINER_VERSION):
        warnings.warn(f"verl {verl.__version__}'s PPO trainer takes rewards only from its reward loop (one number per "
                      f"sample) and does not call REDRewardManager; it still works on a DataProto in your own code. "
                      f"For RED token rewards in verl's trainer use verl>=0.6,<={LAST_TRAINER_VERSION} "
                      "(see examples/verl/README.md).", stacklevel=2)


def _register() -> None:
    """Register under NAME; a second copy of this module (verl loads files by path) keeps the first class."""
    current = REWARD_MANAGER_REGISTRY.get(NAME)
    if current is not None and current.__qualname__ == REDRewardManager.__qualname__:
        return
    register(NAME)(REDRewardManager)


_check_version()
_register()
