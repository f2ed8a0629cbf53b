"""The two public entry points: `token_rewards` (one pair) and `token_rewards_batch` (many, padded batches).

Data flows one way: text -> models.encode (token ids, offsets) -> scoring (prefix scores)
-> methods (token rewards) -> result.TokenRewards. Model-based methods (attribution.METHODS: ig, gxi,
occlusion) also take the model and the encoding; their results carry the RED prefix scores of the same
pass (for display) and the method's own credit as rewards.
"""

from __future__ import annotations

import numbers
import time

from red_core import align, attribution, methods, scoring
from red_core.models import Encoding, RewardModel, RewardModelError, encode
from red_core.result import TokenRewards


def _unit_positions(enc: Encoding, response: str, granularity) -> list[int]:
    """Scored-token indices that end a unit (word, sentence, or k-token chunk)."""
    units = align.assign_units(enc.offsets, enc.special, response, granularity)
    return [t for t in range(len(units)) if t == len(units) - 1 or units[t + 1] != units[t]]


def _build(rm: RewardModel, prompt: str, response: str, enc: Encoding, ps: scoring.PrefixScores, method: str,
           params: dict, granularity, max_batch_tokens: int | None = None) -> TokenRewards:
    extra_meta: dict = {}
    notes: list[str] = []
    if methods.needs_model(method):
        used = methods.resolve_params(method, params)
        t0 = time.perf_counter()
        units = align.assign_units(enc.offsets, enc.special, response, granularity)
        ctx = attribution.Context(units=units, max_batch_tokens=max_batch_tokens or scoring.default_max_batch_tokens(rm))
        att = attribution.compute(method, rm, enc, ctx, **used)
        rewards, extra_meta, notes = att.rewards, att.meta, att.notes
        extra_meta["method_seconds"] = time.perf_counter() - t0
    else:
        rewards, used = methods.compute_rewards(method, ps, **params)
    warnings = list(rm.warnings) + list(enc.warnings) + list(ps.notes) + notes
    if ps.baseline is None and method == "red" and used.get("prompt_baseline", True):
        warnings.append("the input has no tokens before the response, so R(x, ∅) is undefined; it is taken as 0 "
                        "(the first token's reward is its own prefix score).")
    tr = TokenRewards(prompt=prompt, response=response, texts=enc.texts, offsets=enc.offsets,
                      token_ids=[[i] for i in enc.ids[enc.start:enc.stop]], special=enc.special, rewards=rewards,
                      prefix_scores=ps.prefix_scores, score=ps.score, baseline=ps.baseline, method=method,
                      params=used, model=rm.name, warnings=warnings,
                      meta={"path": ps.path, "kind": rm.kind, "label_index": rm.label_index,
                            "chat_template": rm.uses_chat_template, "input_format": rm.input_format, **extra_meta})
    return tr.aggregate(granularity) if granularity != "token" else tr


def token_rewards_batch(rm: RewardModel, prompts: list[str], responses: list[str], method: str = "red", *,
                        batch_size: int = 8, granularity: str | int = "token", on_error: str = "raise",
                        max_batch_tokens: int | None = None, max_tokens: int | None = None,
                        **params) -> list[TokenRewards | Exception]:
    """Token rewards for many (prompt, response) pairs, scored in padded batches.

    method: one of `list_methods()`; params: beta_c, prompt_baseline (red), beta (abc), steps (ig).
    Model-based methods (ig, gxi, occlusion) run after the RED pass, one response at a time; meta["seconds"]
    is the row's share of the RED pass plus its own method time (meta["method_seconds"]).
    granularity: "token", "word", "sentence" or an int k (chunks of k tokens). For encoder RMs a
    coarser granularity also scores fewer prefixes (cheaper); causal RMs score every token anyway.
    on_error: "raise", or "return" to put the exception in the failed row's place and go on.
    max_tokens: refuse (RewardModelError, per row) a response of more scored tokens than this, before
    any model work; a server's limit on what one request may cost.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses; pass one prompt per response")
    if on_error not in ("raise", "return"):
        raise ValueError("on_error must be 'raise' or 'return'")
    for name, value in (("batch_size", batch_size), ("max_batch_tokens", max_batch_tokens), ("max_tokens", max_tokens)):
        if (value is not None or name == "batch_size") and (
                isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    methods.resolve_params(method, params)  # bad names fail before any model work
    if granularity not in align.LEVELS and not (isinstance(granularity, int) and granularity >= 1):
        raise ValueError(f"granularity must be one of {align.LEVELS} or a positive int, got {granularity!r}")
    results: list = [None] * len(prompts)
    encs: dict[int, Encoding] = {}
    for i, (p, r) in enumerate(zip(prompts, responses)):
        try:
            encs[i] = _within(encode(rm, p, r), max_tokens)
        except Exception as err:  # noqa: BLE001 - reported per row
            if on_error == "raise":
                raise
            results[i] = err
    order = list(encs)
    coarse = rm.kind == "encoder" and granularity != "token"
    positions = [_unit_positions(encs[i], responses[i], granularity) for i in order] if coarse else None
    t0 = time.perf_counter()
    scored = scoring.score_encodings(rm, [encs[i] for i in order], batch_size=batch_size,
                                     with_attention=method in methods.NEEDS_ATTENTION,
                                     max_batch_tokens=max_batch_tokens, positions=positions)
    seconds = time.perf_counter() - t0
    for i, ps in zip(order, scored):
        try:
            results[i] = _build(rm, prompts[i], responses[i], encs[i], ps, method, params, granularity,
                                max_batch_tokens)
            results[i].meta["seconds"] = seconds / max(1, len(order)) + results[i].meta.get("method_seconds", 0.0)
        except Exception as err:  # noqa: BLE001
            if on_error == "raise":
                raise
            results[i] = err
    return results


def token_rewards(rm: RewardModel, prompt: str, response: str, method: str = "red", *,
                  granularity: str | int = "token", max_tokens: int | None = None, **params) -> TokenRewards:
    """Per-token rewards of one response. See `token_rewards_batch` for the options."""
    result = token_rewards_batch(rm, [prompt], [response], method, granularity=granularity, max_tokens=max_tokens,
                                 **params)[0]
    assert isinstance(result, TokenRewards)  # on_error="raise": a failure raised already
    return result


def _within(enc: Encoding, max_tokens: int | None) -> Encoding:
    n = enc.stop - enc.start
    if max_tokens is not None and n > max_tokens:
        raise RewardModelError(f"the response is {n} tokens for this reward model; the limit is {max_tokens} "
                               f"(max_tokens). Shorten it and score again.")
    return enc
