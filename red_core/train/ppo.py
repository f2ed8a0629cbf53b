"""RED-PPO: a compact PPO for Hugging Face causal-LM policies, in five numbered phases per step.

    1. rollouts   sample a response per prompt; log π_old, log π_ref, V, entropy on the response tokens
    2. score      the reward model reads every rollout once: R(x, y), R(x, ∅) and all prefix scores
    3. rewards    method credit (red / sparse / uniform / abc) − β·(log π_old − log π_ref)   [Eq. 8]
    4. GAE        advantages and returns per token (γ, λ)
    5. update     clipped policy loss and clipped value loss, a few epochs of minibatches

RED changes only phase 3 (see red_core/train/rewards.py, and the README's method summary).

`algo="reinforce"` is REINFORCE++ (Hu 2025), critic-free: no V in phase 1; phase 4 takes the
return-to-go G_t = Σ_{s≥t} γ^{s−t} r_s of the same token rewards as the advantage, whitened over the
batch's response tokens (gae.reinforce_returns); phase 5 has the same clipped policy loss and no
value loss. Dense RED credit gives each token its own G_t (the score change still to come), where
sparse credit gives every token of a response the same terminal reward. `kl_target` adapts β after
each step (red_core/train/kl.py, Ziegler et al. 2019); the β of each step is logged as `kl_coef`.

Implementation choices (P = from the RED paper, S = from its code lineage safe-rlhf, not stated in
the paper, O = ours):
- [P] credit: RED Eq. 6 with the prompt baseline R(x, ∅) ("DI") on, β_c = 1 (Eq. 7); KL penalty is the
  signed k1 estimate log π_old − log π_ref on every generated token, not clamped (Eq. 8).
- [P] values used by the paper: actor lr 1e-5, critic lr 5e-6, β 0.02, 3 epochs (7B models). The
  defaults of TrainConfig are set for the ~3M-parameter offline default task instead; see its help.
- [S] γ = 1, GAE λ = 0.95, ratio clip 0.2, critic initialised from the reward model.
- [O] critic: a separate model, never sharing weights with the policy. `critic_init="auto"` copies the
  RM (trunk + score head, the head read at every position, so V(s_t) starts at the prefix score
  R(x, y_<t)) when the RM is causal and shares the policy's vocabulary; otherwise a copy of the
  policy's trunk with a fresh linear head, zero-initialised (V ≡ 0 at the start). Note: an
  RM-initialised critic starts as a good value function for sparse rewards (E[R | y_<t] ≈ R(x, y_<t)),
  while for RED the ideal start is ≈ 0 (the remaining RED return is R(x, y) − R(x, y_<t)); both
  methods get the same critic start, as in the paper.
- [O] the reference model is a frozen copy of the starting policy; the reward model is frozen.
- [O] sampling: temperature 1, no top-k / top-p, so samples follow π and log π_old is exact; a
  response ends at EOS (which is scored and rewarded) or at max_new_tokens (treated as terminal,
  no bootstrap, no truncation penalty).
- [O] log π_old, values and entropy come from a separate no-grad forward pass after generation (not
  from generate's scores), so the first minibatch has ratio 1 exactly.
- [O] advantages whitened over the batch's response tokens; losses are means over response tokens
  (token-level), value loss 0.5·max((V − R)², (V_clip − R)²); no entropy bonus; no reward scaling
  or clipping; AdamW without weight decay and a constant learning rate; gradient norm clip 1.0 on
  each model; dropout off (models in eval mode while training).
- [O] determinism: step s draws its prompts, samples and minibatch order from seeds derived from
  (seed, s), so a run resumed from a checkpoint at step s continues exactly as an uninterrupted run
  (bit-exact on CPU with the same thread count).
- [O] resume: from the newest complete checkpoint found by content; refused, with a message saying
  what to do, wherever continuing would overwrite or mix histories (see resume() below). The run
  folder's files and their faults (full disk, damaged or half-written checkpoints): checkpoints.py.
"""

from __future__ import annotations

import copy
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from red_core.gold import gold_scores
from red_core.models import load_policy, load_reward_model, resolve_device
from red_core.train import checkpoints
from red_core.train.checkpoints import (  # noqa: F401 - re-exported: the run folder's I/O used to live here
    CHECKPOINT_DIR,
    METRIC_COLUMNS,
    DamagedCheckpoint,
    RunFolderError,
    _atomic_write,
    _fsync,
    find_checkpoints,
    latest_checkpoint,
    read_metrics,
    write_metrics,
)
from red_core.train.config import TrainConfig, read_prompts
from red_core.train.gae import explained_variance, gae, masked_mean, masked_whiten, reinforce_returns
from red_core.train.kl import kl_controller
from red_core.train.rewards import assemble_rewards, rollout_credit, shares_vocabulary


def derive_seed(seed: int, step: int, stream: int) -> int:
    """An independent 63-bit seed for (seed, step, stream)."""
    return int(np.random.SeedSequence([seed, step, stream]).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


# ----------------------------------------------------------------------------- critic


class Critic(torch.nn.Module):
    """V(s) at every position: a transformer trunk and a linear head applied per position."""

    def __init__(self, trunk: torch.nn.Module, head: torch.nn.Module, index: int = 0):
        super().__init__()
        self.trunk, self.head, self.index = trunk, head, index

    def forward(self, input_ids, attention_mask, position_ids) -> torch.Tensor:
        hidden = self.trunk(input_ids=input_ids, attention_mask=attention_mask,
                            position_ids=position_ids).last_hidden_state  # (B, L, H)
        return self.head(hidden)[..., self.index].float()  # (B, L)


def _hidden_size(model) -> int:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    for name in ("hidden_size", "n_embd", "d_model"):
        if getattr(cfg, name, None):
            return int(getattr(cfg, name))
    raise ValueError("cannot find the policy's hidden size for a fresh value head")


def build_critic(choice: str, policy, rm, shared: bool) -> tuple[Critic, str]:
    """The critic and one line saying where it came from (see 'critic' in the module doc)."""
    head = getattr(rm.model, "score", None)
    rm_ok = shared and rm.kind == "causal" and isinstance(head, torch.nn.Linear)
    if choice == "reward" and not rm_ok:
        raise ValueError("critic_init='reward' needs a causal reward model with a linear `score` head that shares the "
                         "policy's vocabulary (same tokenizer, no chat template); use critic_init='policy' or 'auto'.")
    if (choice == "reward" or (choice == "auto" and rm_ok)) and isinstance(head, torch.nn.Linear):  # rm_ok: a Linear
        critic = Critic(copy.deepcopy(rm.model.base_model), copy.deepcopy(head), rm.label_index)
        how = f"critic = copy of the reward model {rm.name!r} (trunk + score head read at every position)"
    else:
        linear = torch.nn.Linear(_hidden_size(policy), 1)
        torch.nn.init.zeros_(linear.weight)
        torch.nn.init.zeros_(linear.bias)
        critic = Critic(copy.deepcopy(policy.base_model), linear, 0)
        why = "asked for" if choice == "policy" else "the reward model cannot read the policy's tokens"
        how = f"critic = copy of the policy's trunk + fresh zero-initialised value head ({why})"
    critic = critic.float().to(next(policy.parameters()).device)
    for p in critic.parameters():
        p.requires_grad_(True)
    return critic.eval(), how


# ----------------------------------------------------------------------------- rollouts


@dataclass
class Sequences:
    """Phase 1's samples as model input: B prompts (left-padded to P) and their responses (right-padded to T)."""

    prompt_texts: list[str]  # (B,)
    prompt_ids: list[list[int]]  # (B,) unpadded policy prompt ids
    input_ids: torch.Tensor  # (B, P+T) prompt (left pad) + response (pad after EOS)
    attention_mask: torch.Tensor  # (B, P+T)
    position_ids: torch.Tensor  # (B, P+T) counts real tokens only
    P: int  # padded prompt length
    response: torch.Tensor  # (B, T) generated ids
    mask: torch.Tensor  # (B, T) float, 1 on generated tokens (EOS included), 0 after

    @property
    def T(self) -> int:
        return self.response.shape[1]

    def response_lists(self) -> list[list[int]]:
        lengths = self.mask.sum(-1).long().tolist()
        return [row[:n] for row, n in zip(self.response.tolist(), lengths)]


@dataclass
class Rollouts(Sequences):
    """One step's batch, complete: the samples plus what the old policy, the reference and the critic said."""

    logp_old: torch.Tensor  # (B, T) log π_old(y_t|s_t)
    logp_ref: torch.Tensor  # (B, T) log π_ref(y_t|s_t)
    values: torch.Tensor | None  # (B, T) V(s_t); None without a critic (algo reinforce)
    entropy: torch.Tensor  # (B, T) H(π_old(·|s_t))


def _eos_ids(policy, tokenizer) -> list[int]:
    eos = getattr(policy.generation_config, "eos_token_id", None)
    eos = eos if eos is not None else tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the policy has no EOS token; set tokenizer.eos_token (responses must be able to end)")
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def response_mask(response: torch.Tensor, eos_ids: list[int]) -> torch.Tensor:
    """(B, T) -> (B, T) float: 1 up to and including the first EOS (everything when there is none)."""
    is_eos = torch.isin(response, torch.tensor(eos_ids, device=response.device))  # (B, T)
    # Reference loop: for b: n = (index of the first EOS) + 1, or T without one; mask[b, :n] = 1
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # (B, T) number of EOS strictly before t
    return (before == 0).float()


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float,
                   with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, T, V) logits, (B, T) tokens -> (B, T) log-probs of the tokens (and (B, T) entropies)."""
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)  # (B, T, V)
    logp = torch.gather(logp_all, -1, tokens.unsqueeze(-1)).squeeze(-1)  # (B, T)
    entropy = -(logp_all.exp() * logp_all).sum(-1) if with_entropy else None  # (B, T)
    return logp, entropy


# ----------------------------------------------------------------------------- trainer


class PPOTrainer:
    """Holds the models and optimisers; `step()` runs phases 1-5 once and returns the step's metrics.

    With cfg.algo == "reinforce" there is no critic: `critic` and `critic_opt` are None."""

    def __init__(self, cfg: TrainConfig, *, policy=None, tokenizer=None, rm=None, prompts: list[str] | None = None):
        self.cfg = cfg
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(resolve_device(cfg.device))
        if policy is None:
            policy, tokenizer = load_policy(cfg.policy, device=str(self.device), dtype="float32")
        self.policy, self.tokenizer = policy.float().to(self.device).eval(), tokenizer
        self.rm = rm if rm is not None else load_reward_model(cfg.reward_model, device=str(self.device),
                                                              label_index=cfg.label_index)
        self.prompts = prompts if prompts is not None else read_prompts(cfg.prompts)
        self.shared = shares_vocabulary(self.rm, tokenizer)
        self.ref = copy.deepcopy(self.policy).eval()
        for p in list(self.ref.parameters()) + list(self.rm.model.parameters()):
            p.requires_grad_(False)
        self.critic: Critic | None = None
        self.critic_how = "no critic (reinforce: REINFORCE++, advantages = returns whitened over the batch)"
        if cfg.algo == "ppo":
            self.critic, self.critic_how = build_critic(cfg.critic_init, self.policy, self.rm, self.shared)
        self.kl_ctl = kl_controller(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)  # β of the next step
        self.eos_ids = _eos_ids(self.policy, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.actor_opt = torch.optim.AdamW(self.policy.parameters(), lr=cfg.actor_lr, weight_decay=0.0)
        self.critic_opt = (torch.optim.AdamW(self.critic.parameters(), lr=cfg.critic_lr, weight_decay=0.0)
                           if self.critic is not None else None)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.amp == "fp16")
        self.step_index = 0  # steps completed
        self.last_metrics: dict | None = None  # metrics of step `step_index`, saved with its checkpoint
        self.notes: list[str] = list(self.rm.warnings)
        if self.shared and self.rm.max_length < cfg.max_prompt_tokens + cfg.max_new_tokens + 1:
            raise ValueError(f"max_prompt_tokens + max_new_tokens ({cfg.max_prompt_tokens} + {cfg.max_new_tokens}) "
                             f"exceeds what the reward model takes ({self.rm.max_length}); lower them.")

    def autocast(self):
        if self.cfg.amp == "no":
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16 if self.cfg.amp == "bf16" else torch.float16)

    # ------------------------------------------------------------------ phase 1: rollouts

    def sample_prompts(self, step: int) -> list[str]:
        rng = np.random.default_rng(derive_seed(self.cfg.seed, step, 0))
        idx = rng.choice(len(self.prompts), size=self.cfg.batch_size, replace=len(self.prompts) < self.cfg.batch_size)
        return [self.prompts[i] for i in idx]

    def encode_prompts(self, texts: list[str]) -> list[list[int]]:
        out = []
        for text in texts:
            ids = self.tokenizer(text).input_ids[-self.cfg.max_prompt_tokens:]  # (P_b,) cut from the left
            if not ids:
                raise ValueError(f"prompt {text!r} has no tokens and the tokenizer adds no BOS; give a non-empty prompt")
            out.append(ids)
        return out

    @torch.no_grad()
    def rollout(self, step: int) -> Rollouts:
        from transformers import GenerationConfig

        cfg = self.cfg
        texts = self.sample_prompts(step)
        prompt_ids = self.encode_prompts(texts)
        P = max(len(p) for p in prompt_ids)
        prompt = torch.full((len(texts), P), self.pad_id, dtype=torch.long)  # (B, P) left-padded
        prompt_mask = torch.zeros((len(texts), P), dtype=torch.long)  # (B, P)
        for b, ids in enumerate(prompt_ids):
            prompt[b, P - len(ids):] = torch.tensor(ids)
            prompt_mask[b, P - len(ids):] = 1
        prompt, prompt_mask = prompt.to(self.device), prompt_mask.to(self.device)
        gen = GenerationConfig(do_sample=True, temperature=cfg.temperature, top_k=0, top_p=1.0,
                               max_new_tokens=cfg.max_new_tokens, pad_token_id=self.pad_id, eos_token_id=self.eos_ids,
                               bos_token_id=self.tokenizer.bos_token_id)
        torch.manual_seed(derive_seed(cfg.seed, step, 1))  # seeds CUDA too
        with self.autocast():
            seq = self.policy.generate(input_ids=prompt, attention_mask=prompt_mask, generation_config=gen)  # (B, P+T)
        response = seq[:, P:]  # (B, T)
        mask = response_mask(response, self.eos_ids)  # (B, T)
        response = torch.where(mask.bool(), response, torch.full_like(response, self.pad_id))  # (B, T)
        input_ids = torch.cat([prompt, response], dim=1)  # (B, P+T)
        attention_mask = torch.cat([prompt_mask, mask.long()], dim=1)  # (B, P+T)
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # (B, P+T)
        seq = Sequences(texts, prompt_ids, input_ids, attention_mask, position_ids, P, response, mask)
        # log π_old, log π_ref, V(s_t) and entropy on the response tokens, in one no-grad pass each.
        logp_old, entropy = self.policy_logprobs(self.policy, seq, with_entropy=True)  # (B, T) each
        logp_ref, _ = self.policy_logprobs(self.ref, seq)  # (B, T)
        assert entropy is not None
        return Rollouts(**{f.name: getattr(seq, f.name) for f in fields(Sequences)}, logp_old=logp_old,
                        logp_ref=logp_ref, values=self.critic_values(seq) if self.critic is not None else None,
                        entropy=entropy)

    def policy_logprobs(self, model, ro: Sequences, rows=None, with_entropy=False):
        rows = slice(None) if rows is None else rows
        with self.autocast():
            logits = model(input_ids=ro.input_ids[rows], attention_mask=ro.attention_mask[rows],
                           position_ids=ro.position_ids[rows]).logits  # (b, P+T, V)
        logits = logits[:, ro.P - 1: ro.P - 1 + ro.T]  # (b, T, V): position P-1+t predicts y_t
        return token_logprobs(logits, ro.response[rows], self.cfg.temperature, with_entropy)

    def critic_values(self, ro: Sequences, rows=None) -> torch.Tensor:
        assert self.critic is not None, "no critic with algo='reinforce'"
        rows = slice(None) if rows is None else rows
        with self.autocast():
            v = self.critic(ro.input_ids[rows], ro.attention_mask[rows], ro.position_ids[rows])  # (b, P+T)
        return v[:, ro.P - 1: ro.P - 1 + ro.T].float()  # (b, T): V(s_t) is read at the token before y_t

    # ------------------------------------------------------------------ phases 2-3: score, rewards

    def score(self, ro: Rollouts):
        return rollout_credit(self.rm, self.tokenizer, ro.prompt_ids, ro.response_lists(), ro.prompt_texts,
                              self.cfg.method, self.cfg.method_params, ro.T, shared=self.shared,
                              batch_size=self.cfg.rm_batch_size)

    def gold(self, ro: Rollouts) -> np.ndarray | None:
        """(B,) gold reward of the rollouts (cfg.gold; None when off), on the decoded text as evaluation reads it."""
        if self.cfg.gold == "none":
            return None
        texts = [self.tokenizer.decode(r, skip_special_tokens=True) for r in ro.response_lists()]
        return gold_scores(ro.prompt_texts, texts, self.cfg.gold)

    # ------------------------------------------------------------------ phase 5: update

    def update(self, ro: Rollouts, advantages: torch.Tensor, returns: torch.Tensor, step: int) -> dict:
        cfg = self.cfg
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, step, 2))
        stats: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "clip_fraction": [], "approx_kl": []}
        B = ro.response.shape[0]
        trained: list[tuple[torch.nn.Module, torch.optim.Optimizer]] = [(self.policy, self.actor_opt)]
        if self.critic is not None and self.critic_opt is not None:  # none for reinforce: no value loss
            trained.append((self.critic, self.critic_opt))
        for model, _ in trained:
            model.eval()  # dropout off, see the module doc
        for _ in range(cfg.ppo_epochs):
            order = torch.randperm(B, generator=g)
            for start in range(0, B, cfg.minibatch_size):
                rows = order[start:start + cfg.minibatch_size].to(self.device)
                m = ro.mask[rows]  # (b, T)
                adv, ret = advantages[rows], returns[rows]  # (b, T)
                logp, _ = self.policy_logprobs(self.policy, ro, rows)  # (b, T) log π_θ
                ratio = torch.exp(logp - ro.logp_old[rows])  # (b, T)
                pg = torch.maximum(-adv * ratio, -adv * ratio.clamp(1 - cfg.clip, 1 + cfg.clip))  # (b, T)
                policy_loss = masked_mean(pg, m)
                value_loss = torch.tensor(float("nan"))
                loss = policy_loss
                if self.critic is not None and ro.values is not None:
                    v = self.critic_values(ro, rows)  # (b, T)
                    v_old = ro.values[rows]  # (b, T)
                    v_clip = v_old + (v - v_old).clamp(-cfg.value_clip, cfg.value_clip) if cfg.value_clip > 0 else v
                    value_loss = 0.5 * masked_mean(torch.maximum((v - ret) ** 2, (v_clip - ret) ** 2), m)
                    loss = policy_loss + value_loss  # disjoint parameters: one backward
                for _, opt in trained:
                    opt.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                for model, opt in trained:
                    if cfg.max_grad_norm > 0:
                        self.scaler.unscale_(opt)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
                    self.scaler.step(opt)
                self.scaler.update()
                with torch.no_grad():
                    stats["policy_loss"].append(float(policy_loss))
                    stats["value_loss"].append(float(value_loss))
                    stats["clip_fraction"].append(float(masked_mean(((ratio - 1).abs() > cfg.clip).float(), m)))
                    stats["approx_kl"].append(float(masked_mean(0.5 * (logp - ro.logp_old[rows]) ** 2, m)))
        return {k: float(np.mean(v)) for k, v in stats.items()}

    # ------------------------------------------------------------------ one step

    def step(self) -> dict:
        """Run phases 1-5 for the next step; returns its metrics."""
        cfg, step, nan = self.cfg, self.step_index, float("nan")
        t0 = time.perf_counter()
        # 1. rollouts: sample, then log π_old, log π_ref, V, entropy on the response tokens
        ro = self.rollout(step)
        t1 = time.perf_counter()
        # 2. score: one RM read per rollout gives R(x, y), R(x, ∅) and every prefix score; credit per token
        credit = self.score(ro)  # credit.credit (B, T)
        for note in credit.notes:
            if note not in self.notes:
                self.notes.append(note)
        t2 = time.perf_counter()
        # 3. rewards: r_t = credit_t − β (log π_old − log π_ref)   (Eq. 8); β from the KL controller
        beta = self.kl_ctl.value
        rewards, kl = assemble_rewards(credit.credit.to(self.device, torch.float32), ro.logp_old, ro.logp_ref,
                                       ro.mask, beta)  # (B, T) each
        # 4. advantages and returns per token: GAE (ppo), or the return-to-go itself (reinforce, no critic)
        if ro.values is not None:
            advantages, returns = gae(rewards, ro.values, ro.mask, cfg.gamma, cfg.lam)  # (B, T) each
        else:
            returns = reinforce_returns(rewards, ro.mask, cfg.gamma)  # (B, T)
            advantages = returns
        if cfg.whiten_advantages:
            advantages = masked_whiten(advantages, ro.mask)  # (B, T)
        # 5. update: clipped policy (and value) losses, ppo_epochs passes over shuffled minibatches
        upd = self.update(ro, advantages, returns, step)
        t3 = time.perf_counter()
        seq_kl = float(kl.sum(-1).mean())  # mean KL per response (nats, summed over its tokens)
        self.kl_ctl.update(seq_kl, cfg.batch_size)  # β of the next step
        gold = self.gold(ro)  # (B,) logged only, never trained on
        self.step_index += 1
        lengths = ro.mask.sum(-1)  # (B,)
        ends_eos = torch.isin(ro.response.gather(1, (lengths.long() - 1).clamp(min=0)[:, None]),
                              torch.tensor(self.eos_ids, device=self.device)).float()
        self.last_metrics = {
            "step": self.step_index,
            "reward_mean": float(np.mean(credit.scores)), "reward_std": float(np.std(credit.scores)),
            "gold_mean": float(np.mean(gold)) if gold is not None else nan,
            "gold_std": float(np.std(gold)) if gold is not None else nan,
            "baseline_mean": float(np.nanmean(credit.baselines)) if np.isfinite(credit.baselines).any() else float("nan"),
            "credit_sum_mean": float(credit.credit.sum(-1).mean()),
            "return_mean": float(rewards.sum(-1).mean()),
            "kl": seq_kl, "kl_per_token": float(masked_mean(kl, ro.mask)), "kl_coef": beta,
            "entropy": float(masked_mean(ro.entropy, ro.mask)),
            "response_length": float(lengths.mean()), "eos_fraction": float(ends_eos.mean()),
            **upd,
            "explained_variance": explained_variance(ro.values, returns, ro.mask) if ro.values is not None else nan,
            "value_mean": float(masked_mean(ro.values, ro.mask)) if ro.values is not None else nan,
            "time_rollout": t1 - t0, "time_score": t2 - t1, "time_update": t3 - t2, "step_time": t3 - t0,
        }
        return self.last_metrics

    # ------------------------------------------------------------------ checkpoints (files: checkpoints.py)

    def save_checkpoint(self, out: Path, keep: int = 1) -> Path:
        """Write OUT/checkpoints/step-NNNNNN atomically and prune older ones (see checkpoints.py)."""
        critic = {"critic": self.critic_opt.state_dict()} if self.critic_opt is not None else {}  # none: reinforce
        optim = {"actor": self.actor_opt.state_dict(), **critic, "scaler": self.scaler.state_dict()}
        # kl_coef: the controller's β for the next step (adaptive KL continues from it on resume)
        state = {"config": self.cfg.to_dict(), "metrics": self.last_metrics, "kl_coef": self.kl_ctl.value}
        return checkpoints.save_checkpoint(out, self.step_index, self.policy, self.critic, optim, state, keep)

    def load_checkpoint(self, folder: Path) -> None:
        """Continue from a checkpoint: ValueError if its settings differ, DamagedCheckpoint if a file is bad."""
        folder = Path(folder)
        state = checkpoints.read_state(folder)
        diff = self.cfg.differences(state["config"])
        if diff:
            lines = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise ValueError(f"the checkpoint in {folder} was made with other settings ({lines}); use the same "
                             f"settings to resume, or --no-resume / another --out to start over.")
        adaptive = self.cfg.kl_target is not None  # β continues from the saved value (a fixed β is the setting)
        if adaptive and not isinstance(state.get("kl_coef"), (int, float)):
            raise DamagedCheckpoint(f"{folder / 'state.json'} lacks the adaptive KL coefficient (kl_coef)")
        opt = checkpoints.load_weights(folder, self.policy, self.critic, self.device)
        try:
            self.actor_opt.load_state_dict(opt["actor"])
            if self.critic_opt is not None:
                self.critic_opt.load_state_dict(opt["critic"])
            self.scaler.load_state_dict(opt["scaler"])
        except (KeyError, ValueError, TypeError, RuntimeError) as err:
            raise DamagedCheckpoint(f"{folder / 'optim.pt'} does not fit this run's optimisers ({err})") from None
        if adaptive:
            self.kl_ctl.value = float(state["kl_coef"])
        self.step_index = state["step"]
        self.last_metrics = state.get("metrics")

    def save_policy(self, folder: Path, card: str | None = None) -> Path:
        """The trained policy as a Hugging Face folder (safetensors + tokenizer), written atomically."""
        def fill(tmp: Path) -> None:
            self.policy.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            if card:
                (tmp / "README.md").write_text(card)

        return checkpoints.write_folder(Path(folder), fill)


# ----------------------------------------------------------------------------- the run


def train(cfg: TrainConfig, *, trainer: PPOTrainer | None = None, callback=None, stop=None) -> dict:
    """Run (or resume) a PPO run into cfg.out; returns a summary dict.

    callback(metrics, trainer) is called after each step (after its checkpoint); returning True stops
    the run early, as does stop() returning True. The final policy is written to OUT/policy.
    Faults of the run folder (a full disk, a damaged checkpoint, history that resuming would
    overwrite) raise RunFolderError, a ValueError whose message says what to do.
    """
    out = Path(cfg.out)
    with checkpoints.run_folder(out):
        found = scan(out) if cfg.resume else None  # refusals that need no model come before loading any
        trainer = trainer or PPOTrainer(cfg)
        if cfg.resume:
            ckpt, rows = resume(trainer, out, found)
        else:
            ckpt, rows = None, []
            checkpoints.start_over(out)
        _atomic_write(out / "config.json", cfg.to_json())
        stopped = _run_steps(cfg, trainer, out, rows, ckpt is not None, callback, stop)
        summary = {"out": str(out), "steps_done": trainer.step_index, "steps": cfg.steps, "stopped": stopped,
                   "critic": trainer.critic_how, "shared_vocabulary": trainer.shared, "notes": trainer.notes,
                   "final": rows[-1] if rows else None, "resumed_from": str(ckpt) if ckpt else None}
        if not stopped:
            summary["policy"] = str(trainer.save_policy(out / "policy"))
        _atomic_write(out / "summary.json", checkpoints.strict_json(summary, indent=1) + "\n")
    summary["metrics"] = rows
    return summary


def _run_steps(cfg: TrainConfig, trainer: PPOTrainer, out: Path, rows: list[dict], resumed: bool, callback,
               stop) -> bool:
    """Steps until cfg.steps (metrics after each, a checkpoint every save_every); True if stopped early."""
    from tqdm.auto import tqdm

    saved = trainer.step_index if resumed else None  # the step of the newest checkpoint on disk
    stopped = False
    with tqdm(total=cfg.steps, initial=trainer.step_index, desc=f"{cfg.algo} {cfg.method}", disable=not cfg.progress,
              dynamic_ncols=True) as bar:
        while trainer.step_index < cfg.steps:
            metrics = trainer.step()
            rows.append(metrics)
            write_metrics(out, rows)
            if trainer.step_index % cfg.save_every == 0 or trainer.step_index == cfg.steps:
                trainer.save_checkpoint(out, cfg.keep_checkpoints)
                saved = trainer.step_index
            bar.update(1)
            bar.set_postfix(reward=f"{metrics['reward_mean']:+.3f}", kl=f"{metrics['kl']:.3f}",
                            s_step=f"{metrics['step_time']:.2f}")
            if (callback is not None and callback(metrics, trainer)) or (stop is not None and stop()):
                stopped = trainer.step_index < cfg.steps
                break
    if stopped and saved != trainer.step_index:
        trainer.save_checkpoint(out, cfg.keep_checkpoints)
    return stopped


# ----------------------------------------------------------------------------- resume


def scan(out: Path) -> tuple[list[dict], list[Path], list[str]]:
    """(metrics rows, complete checkpoints newest first, problems of damaged ones); refuses when none is usable."""
    rows = read_metrics(out)
    folders, damaged = find_checkpoints(out)
    if not folders:
        _refuse_without_checkpoint(out, rows, damaged)
    return rows, folders, damaged


def resume(trainer: PPOTrainer, out: Path, found=None) -> tuple[Path | None, list[dict]]:
    """Load the newest usable checkpoint of OUT into `trainer`: (its folder, the metrics rows up to its step).

    (None, []) for a fresh folder. Refuses (RunFolderError) rather than start over on top of a history:
    metrics rows without a usable checkpoint, or metrics that do not reach the checkpoint or come from
    another run. Damaged checkpoints are skipped with a warning when an older complete one exists.
    `found`: what scan(out) returned, if called already.
    """
    rows, folders, damaged = found or scan(out)
    for folder in folders:
        try:
            trainer.load_checkpoint(folder)
        except DamagedCheckpoint as err:  # found only on loading (the scan reads headers, not all bytes)
            damaged.append(str(err))
            continue
        if damaged:
            _note(trainer, f"skipped damaged checkpoint file(s): {'; '.join(damaged)}; resuming from {folder}",
                  warn=True)
        return folder, _history(trainer, out, folder, rows)
    _refuse_without_checkpoint(out, rows, damaged)
    return None, []


def _refuse_without_checkpoint(out: Path, rows: list[dict], damaged: list[str]) -> None:
    """Raise unless OUT is fresh: no checkpoint to resume, but damaged ones or metrics a restart would overwrite."""
    if damaged:
        raise RunFolderError(f"cannot resume {out}: no complete checkpoint ({'; '.join(damaged)}). Put back the "
                             f"damaged file(s), or {checkpoints.START_OVER}.")
    if rows:
        raise RunFolderError(f"{out} holds metrics for {len(rows)} step(s) but no checkpoint to continue from; "
                             f"training would start over at step 1 and overwrite them. To keep them use another "
                             f"--out; to start over pass --no-resume (TrainConfig(resume=False)).")


def _history(trainer: PPOTrainer, out: Path, folder: Path, rows: list[dict]) -> list[dict]:
    """The rows of steps 1..k for a checkpoint at step k; RunFolderError if metrics.jsonl is not its history."""
    k = trainer.step_index
    steps = [r["step"] for r in rows]
    if steps[:k] != list(range(1, k + 1)):
        held = f"steps {steps[0]}-{steps[-1]}" if steps else "no rows"
        raise RunFolderError(f"cannot resume {out}: checkpoint {folder.name} is at step {k} but {out / 'metrics.jsonl'} "
                             f"holds {held}, not steps 1-{k}: they do not belong together. Put back the metrics.jsonl "
                             f"of this run, or {checkpoints.START_OVER}.")
    if trainer.last_metrics is not None and k and not checkpoints.same_row(rows[k - 1], trainer.last_metrics):
        raise RunFolderError(f"cannot resume {out}: {out / 'metrics.jsonl'} and checkpoint {folder.name} come from "
                             f"different runs (their rows for step {k} differ); {checkpoints.START_OVER}.")
    if len(rows) > k:
        _note(trainer, f"metrics.jsonl went to step {steps[-1]}; the steps after the checkpoint (step {k}) run again")
    return rows[:k]


def _note(trainer: PPOTrainer, text: str, warn: bool = False) -> None:
    """A line for the summary's notes (printed by the CLI); with warn, a warning too."""
    if warn:
        warnings.warn(text, stacklevel=3)
    trainer.notes.append(text)
