"""Per-token rewards of PPO rollouts: RM credit (red, sparse, uniform, abc) minus the KL penalty.

    r_final_t = credit_t − β · (log π_old(y_t|s_t) − log π_ref(y_t|s_t))         (paper Eq. 8)

with credit_t from `red_core.methods.compute_rewards` (RED: Eq. 6-7; the others for comparison),
placed on the response tokens the policy actually generated (EOS included when it was generated;
padding after it gets nothing). The KL term is the signed k1 estimate, not clamped.

Scoring reads the RM once per rollout batch: `red_core.scoring.score_encodings` gives the sequence
score R(x, y), the prompt-only score R(x, ∅) and every prefix score together (one pass for causal
RMs), so every method costs the same RM work.

Two ways to hand rollouts to the RM:
- shared vocabulary (the RM's tokenizer has exactly the policy's vocabulary and no chat template):
  the RM scores the policy's own token ids (`encode_ids`), no decoding. A <bos> the RM's tokenizer
  would add is prepended when the policy's prompt ids lack it.
- different tokenizers: the response is decoded to text, the RM tokenises (prompt, text) its own way
  (`encode`, chat template included), and the RM-token credit moves to policy tokens by character
  end offsets (`red_core.align.transfer_rewards`): the total is kept, so RED still telescopes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from red_core.align import transfer_rewards
from red_core.methods import NEEDS_ATTENTION, compute_rewards
from red_core.models import Encoding, RewardModel, encode, encode_ids
from red_core.scoring import PrefixScores, score_encodings


@dataclass
class Credit:
    """What the RM says about a rollout batch, already on policy tokens."""

    credit: torch.Tensor  # (B, T) method credit per response token, 0 on padding
    scores: np.ndarray  # (B,) R(x, y), the sequence score
    baselines: np.ndarray  # (B,) R(x, ∅), the prompt-only score (nan when undefined)
    notes: list[str] = field(default_factory=list)  # warnings from scoring, said once


# ----------------------------------------------------------------------------- reward assembly


def assemble_rewards(credit: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor, mask: torch.Tensor,
                     kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Final per-token rewards (B, T) and the per-token k1 KL estimate (B, T); both 0 on padding."""
    mask = mask.to(credit.dtype)  # (B, T)
    kl = (logp_old - logp_ref) * mask  # (B, T) signed k1: log π_old(y_t|s_t) − log π_ref(y_t|s_t)
    rewards = (credit - kl_coef * kl) * mask  # (B, T)
    return rewards, kl


def assemble_rewards_loop(credit, logp_old, logp_ref, mask, kl_coef: float) -> list[list[float]]:
    """Reference for `assemble_rewards`: one token at a time, plain floats."""
    out = []
    for c_row, o_row, r_row, m_row in zip(credit.tolist(), logp_old.tolist(), logp_ref.tolist(), mask.tolist()):
        out.append([(c - kl_coef * (o - r)) if m else 0.0 for c, o, r, m in zip(c_row, o_row, r_row, m_row)])
    return out


# ----------------------------------------------------------------------------- RM credit


def same_vocabulary(a, b) -> bool:
    """True when two tokenizers map the same strings to the same ids (so ids can be shared)."""
    if a is None or b is None:
        return False
    try:
        return a is b or a.get_vocab() == b.get_vocab()
    except Exception:  # noqa: BLE001 - a tokenizer without get_vocab cannot be compared
        return False


def shares_vocabulary(rm: RewardModel, policy_tokenizer) -> bool:
    """True when the RM can read the policy's token ids as they are."""
    if rm.uses_chat_template or rm.input_format == "pair":
        return False
    return same_vocabulary(rm.tokenizer, policy_tokenizer)


def rm_bos(rm: RewardModel) -> int | None:
    """The BOS id the RM's tokenizer puts in front of a text, or None when it adds none."""
    bos = rm.tokenizer.bos_token_id
    if bos is None:
        return None
    ids = rm.tokenizer("a").input_ids
    return bos if ids and ids[0] == bos else None


def token_char_ends(tokenizer, response_ids: list[int], text: str) -> list[int]:
    """Character end (in `text`, the decoded response) of each policy token, non-decreasing.

    Found by decoding growing prefixes; a byte-level token that ends inside a character shares the
    end of the token that completes it. Special tokens (EOS) end where the text ends.
    """
    ends, best = [], 0
    for t in range(len(response_ids)):
        n = len(tokenizer.decode(response_ids[: t + 1], skip_special_tokens=True))
        best = min(max(best, n), len(text))
        ends.append(best)
    # A prefix that decodes to a replacement char before its character is complete can overshoot
    # by one; the final text decides.
    return ends


def empty_response_scores(rm: RewardModel, prompt_text: str) -> PrefixScores:
    """A response with no text: R(x, y) = R(x, ∅) = the prompt's own score; one token carries it."""
    if prompt_text:
        ps = score_encodings(rm, [encode(rm, "", prompt_text)])[0]
        s = float(ps.score)
    else:
        s = 0.0
    return PrefixScores(prefix_scores=np.array([s]), baseline=s, score=s, path="empty-response",
                        attention=np.array([1.0]))


def rollout_credit(rm: RewardModel, policy_tokenizer, prompt_ids: list[list[int]], response_ids: list[list[int]],
                   prompt_texts: list[str], method: str, params: dict, T: int, *, shared: bool | None = None,
                   batch_size: int = 16) -> Credit:
    """RM credit of each rollout on its policy tokens, as a (B, T) tensor (T = padded response length).

    prompt_ids[b]: the policy's prompt ids (no padding); response_ids[b]: the tokens generated, up to
    and including EOS when there was one (no padding).
    """
    shared = shares_vocabulary(rm, policy_tokenizer) if shared is None else shared
    B = len(response_ids)
    credit = torch.zeros(B, T, dtype=torch.float64)  # (B, T)
    scores, baselines = np.zeros(B), np.full(B, np.nan)
    with_attention = method in NEEDS_ATTENTION
    notes: list[str] = []
    if shared:
        bos = rm_bos(rm)
        encs = [encode_ids(rm, ([bos] if bos is not None and (not p or p[0] != bos) else []) + list(p), list(r))
                for p, r in zip(prompt_ids, response_ids)]
        results = score_encodings(rm, encs, batch_size=batch_size, with_attention=with_attention)
        for b, ps in enumerate(results):
            rewards, _ = compute_rewards(method, ps, **params)  # (n_b,) one per generated token
            assert len(rewards) == len(response_ids[b]), "RM credit does not line up with the response tokens"
            credit[b, : len(rewards)] = torch.from_numpy(np.asarray(rewards, dtype=np.float64))
            scores[b], baselines[b] = ps.score, np.nan if ps.baseline is None else ps.baseline
            notes.extend(ps.notes)
        return Credit(credit, scores, baselines, sorted(set(notes)))
    # Different tokenizers: text in between, rewards moved by character offsets.
    texts = [policy_tokenizer.decode(r, skip_special_tokens=True) for r in response_ids]
    todo = [b for b in range(B) if texts[b]]
    text_encs: list[Encoding] = [encode(rm, prompt_texts[b], texts[b]) for b in todo]
    by_rollout = dict(zip(todo, score_encodings(rm, text_encs, batch_size=batch_size, with_attention=with_attention)))
    for b in range(B):
        n = len(response_ids[b])
        if b in by_rollout:
            ps, enc = by_rollout[b], text_encs[todo.index(b)]
            rm_rewards, _ = compute_rewards(method, ps, **params)  # (n_rm,) on the RM's tokens
            rm_ends = [e for _, e in enc.offsets]  # special tail tokens end at len(text)
            moved = transfer_rewards(rm_ends, rm_rewards, token_char_ends(policy_tokenizer, response_ids[b], texts[b]))
            notes.extend(ps.notes + enc.warnings)
        else:  # nothing but special tokens was generated
            ps = empty_response_scores(rm, prompt_texts[b])
            rm_rewards, _ = compute_rewards(method, ps, **params)
            moved = np.zeros(n)
            moved[-1] = float(np.sum(rm_rewards))
        credit[b, :n] = torch.from_numpy(np.asarray(moved, dtype=np.float64))
        scores[b], baselines[b] = ps.score, np.nan if ps.baseline is None else ps.baseline
    return Credit(credit, scores, baselines, sorted(set(notes)))
