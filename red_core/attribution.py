"""Model-based credit methods: gradients and occlusion. A plain dict, like methods.METHODS.

The methods in methods.py need only the prefix scores of one pass; these need the model itself, so
`api.token_rewards_batch` calls them with the RewardModel and the Encoding (the token ids exactly as
scored: nothing is re-tokenised). F(ids) below is the scalar reward: the RM's logit at label_index,
pooled as the model pools (the model's own forward, with the input's own ids and attention mask).

    ig         Integrated Gradients on the input embedding layer (the Gauss-Legendre rule that captum's
               LayerIntegratedGradients uses by default; captum itself is not needed: importing it pulls in
               matplotlib, which scans the system fonts)
               `rm.model.get_input_embeddings()`: a_t = sum_d (e(x) - e(x'))_td * mean_path dF/de_td.
               Baseline x': the same ids with every scored *response* token replaced by the pad token
               (the model's pad_token_id, else the tokenizer's, else 0); prompt, template and special
               tokens are kept, so their attribution is exactly 0. Only the embedding layer's output
               is interpolated: every step runs with x's own ids, attention mask and pooling position,
               so the pad baseline never moves the pooled token. Completeness: sum_t a_t approximates
               F(x) - F(x') up to the integration error, reported as meta["completeness_gap"] (with
               meta["f_input"] = F(x) and meta["f_baseline"] = F(x')). IG is in reward units only up
               to this gap; RED's telescoping (TokenRewards.check()) is exact.
    gxi        gradient x input: a_t = sum_d e(x)_td * dF/de_td, one forward and one backward. Not in
               reward units: there is no completeness, the sum is not R(x, y) nor any difference of
               scores. Special/template tokens get their gradient x input like any scored token.
    occlusion  leave-one-out: a_u = R(x, y) - R(x, y without unit u), exact, where a unit is a token
               (or, with granularity "word"/"sentence"/k, the whole unit). The unit's tokens are cut
               out of the token ids (and token type ids); the variants are scored in padded batches
               (scoring._model_scores). The unit's credit sits on its last token, so summing a unit
               (TokenRewards.aggregate) gives it. Special/template tokens (end-of-turn, EOS) are never
               deleted and get 0: removing them changes the input format, not the response. A variant
               with no tokens left (one-token response, empty prompt, no template) has no score; it is
               taken as 0, as RED takes R(x, ∅) = 0, and the result says so.

Each function takes (rm, enc, ctx, **params) and returns an Attribution; its keyword-only parameters
are the ones users may set (methods.method_params lists them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from red_core.records import Encoding, RewardModel
from red_core.scoring import _accepts_positions, _collate, _model_scores, _pad_id


@dataclass
class Context:
    """What a model-based method needs besides the model and the encoding."""

    units: list[int]  # (T,) unit index of each scored token (one unit per token at token level)
    max_batch_tokens: int  # padded tokens per batch of model inputs


@dataclass
class Attribution:
    rewards: np.ndarray  # (T,) credit of each scored token
    meta: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers


def _row(rm: RewardModel, enc: Encoding) -> tuple[torch.Tensor, dict]:
    """(1, L) input ids and the other model inputs of one unpadded row."""
    types = [enc.token_type_ids] if enc.token_type_ids is not None else None
    batch, positions, _ = _collate([enc.ids], _pad_id(rm), "right", rm.device, types)
    ids = batch.pop("input_ids")
    if _accepts_positions(rm):
        batch["position_ids"] = positions
    return ids, batch


def _reward_fn(rm: RewardModel, extra: dict):
    """F(ids): (B, L) -> (B,) the scalar reward, other inputs broadcast to the batch."""

    def forward(input_ids: torch.Tensor) -> torch.Tensor:
        b = input_ids.shape[0]
        more = {k: v.expand(b, -1) for k, v in extra.items()}
        return rm.model(input_ids=input_ids, **more).logits[:, rm.label_index].float()

    return forward


def _embed_override(rm: RewardModel, emb: torch.Tensor):
    """Forward hook on the input embedding layer that makes it output `emb` instead."""
    return rm.model.get_input_embeddings().register_forward_hook(lambda _m, _i, _out: emb)


@torch.no_grad()
def _reward_with_embeddings(rm: RewardModel, ids: torch.Tensor, extra: dict, emb: torch.Tensor) -> float:
    """F with x's ids, mask and pooling, but the embedding layer's output replaced by `emb`."""
    handle = _embed_override(rm, emb)
    try:
        return float(_reward_fn(rm, extra)(ids)[0])
    finally:
        handle.remove()


def _baseline_ids(rm: RewardModel, enc: Encoding, ids: torch.Tensor) -> torch.Tensor:
    base = ids.clone()
    for t, sp in enumerate(enc.special):
        if not sp:
            base[0, enc.start + t] = _pad_id(rm)
    return base


# ----------------------------------------------------------------------------- methods


def ig(rm: RewardModel, enc: Encoding, ctx: Context, *, steps: int = 32) -> Attribution:
    """Integrated Gradients on the input embeddings (captum's LayerIntegratedGradients), pad baseline for the
    response tokens; prompt and special tokens are kept, so their credit is 0.

    captum interpolates only the embedding layer's output between the baseline's and the input's, and runs the
    model with the input's ids, mask and pooled position at every step (Gauss-Legendre rule, `steps` nodes,
    in batches that fit `max_batch_tokens`). In reward units only up to meta["completeness_gap"] =
    |sum a_t - (F(x) - F(x'))| (captum's convergence delta), which shrinks as `steps` grows; RED's
    telescoping (check()) is exact instead.
    """
    from captum.attr import LayerIntegratedGradients  # imports matplotlib: only when IG is asked for

    ids, extra = _row(rm, enc)  # (1, L)
    base = _baseline_ids(rm, enc, ids)  # (1, L)
    layer = rm.model.get_input_embeddings()
    chunk = max(1, ctx.max_batch_tokens // max(1, ids.shape[1]))
    with torch.enable_grad():
        attributions = LayerIntegratedGradients(_reward_fn(rm, extra), layer).attribute(
            inputs=ids, baselines=base, n_steps=int(steps), method="gausslegendre", internal_batch_size=chunk)
    per_token = attributions.float().sum(-1)[0].double().cpu().numpy()  # (L,) summed over the embedding dim
    with torch.no_grad():
        e_x, e_base = layer(ids).detach(), layer(base).detach()  # (1, L, D)
    f_x = _reward_with_embeddings(rm, ids, extra, e_x)
    f_base = _reward_with_embeddings(rm, ids, extra, e_base)
    rewards = per_token[enc.start:enc.stop].copy()  # (T,)
    gap = abs(float(per_token.sum()) - (f_x - f_base))
    return Attribution(rewards, {"completeness_gap": gap, "f_input": f_x, "f_baseline": f_base,
                                 "ig_baseline": "pad token for each scored response token", "cost_passes": int(steps)})


def gxi(rm: RewardModel, enc: Encoding, ctx: Context) -> Attribution:
    """Gradient x input on the input embeddings; not in reward units (no completeness)."""
    ids, extra = _row(rm, enc)
    captured: dict[str, torch.Tensor] = {}

    def hook(_m, _i, out):
        captured["e"] = out.detach().requires_grad_(True)
        return captured["e"]

    handle = rm.model.get_input_embeddings().register_forward_hook(hook)
    try:
        with torch.enable_grad():
            f = _reward_fn(rm, extra)(ids)[0]
            (grad,) = torch.autograd.grad(f, captured["e"])
    finally:
        handle.remove()
    per_token = (grad * captured["e"].detach()).float().sum(-1)[0].double().cpu().numpy()  # (L,)
    return Attribution(per_token[enc.start:enc.stop].copy(), {"f_input": float(f.detach())})


def _drop(enc: Encoding, positions: set[int]) -> tuple[list[int], list[int] | None]:
    ids = [i for k, i in enumerate(enc.ids) if k not in positions]
    tt = enc.token_type_ids
    return ids, ([v for k, v in enumerate(tt) if k not in positions] if tt is not None else None)


def occlusion(rm: RewardModel, enc: Encoding, ctx: Context) -> Attribution:
    """Leave-one-out: R(x, y) - R(x, y without the unit); exact, special tokens 0 and never deleted."""
    groups: dict[int, list[int]] = {}
    for t, (u, sp) in enumerate(zip(ctx.units, enc.special)):
        if not sp:
            groups.setdefault(u, []).append(t)
    inputs = [(list(enc.ids), enc.token_type_ids)]
    inputs += [_drop(enc, {enc.start + t for t in g}) for g in groups.values()]
    filled = [k for k, (ids, _) in enumerate(inputs) if ids]
    scores = np.zeros(len(inputs))
    scores[filled] = _model_scores(rm, [inputs[k] for k in filled], ctx.max_batch_tokens)
    notes = []
    if len(filled) < len(inputs):
        notes.append("removing the only response unit leaves no tokens, so that input has no score; it is taken "
                     "as 0 (that unit's credit is R(x, y)).")
    rewards = np.zeros(len(enc.special))
    for k, g in enumerate(groups.values(), start=1):
        rewards[g[-1]] = scores[0] - scores[k]
    return Attribution(rewards, {"f_input": float(scores[0]), "cost_passes": len(inputs)}, notes)


METHODS = {"ig": ig, "gxi": gxi, "occlusion": occlusion}
DESCRIPTIONS = {
    "ig": "Integrated Gradients on the input embeddings (pad baseline for the response): reward units only up to "
          "the completeness gap in meta. Cost: `steps` forwards+backwards (batched).",
    "gxi": "Gradient x input on the input embeddings: a saliency, not reward units (no completeness). "
           "Cost: 1 forward+backward.",
    "occlusion": "Leave-one-out: the score change when the token (or unit) is removed; exact, special tokens 0. "
                 "Cost: T+1 forwards (batched).",
}


def compute(name: str, rm: RewardModel, enc: Encoding, ctx: Context, **params) -> Attribution:
    """Credit of model-based method `name` for one encoding (params already resolved)."""
    return METHODS[name](rm, enc, ctx, **params)
