"""Prefix scores R(x, y_<=t) for every scored token: one pass for causal RMs, batched prefixes otherwise.

Causal (decoder) RMs with a linear score head apply the head at every position and only then pool
the last non-pad token. So one forward pass, with a hook on the head, gives every prefix score:

    prefix_score[t] = head(h[pool(t)])   where pool(t) = last position <= t whose id != pad_token_id

which is exactly the pooling rule transformers applies to a text cut after token t (including the
pad == eos pitfall). Every call checks itself: the value read at the last position must equal what
the model returns for the same input (1e-4 relative); otherwise the batch is scored again the slow,
exact way and the result says so (`path == "prefix-batched"`).

Encoder RMs see the future, so each prefix is its own input, built by slicing token ids (never by
decoding and re-tokenising): ids[:start] + ids[start:start+t+1] + tail. Prefixes are sorted by length
and packed into batches of at most `max_batch_tokens` padded tokens, which bounds memory.

`score_prefixes_loop` is the reference: one model call per prefix. Tests check both paths against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from red_core.records import Encoding, RewardModel

SELF_CHECK_RTOL = 1e-4
# Padded tokens per batch of prefixes. Small on CPU, where bigger batches only add padding and
# cache misses (bench/bench_scoring.py: 2048 ran 2x faster than 65536); large on GPU.
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 2048, "cuda": 16384}


def default_max_batch_tokens(rm: RewardModel) -> int:
    return DEFAULT_MAX_BATCH_TOKENS["cuda" if rm.device.type == "cuda" else "cpu"]


@dataclass
class PrefixScores:
    """Scores of one encoding: what every credit method is computed from."""

    prefix_scores: np.ndarray  # (T,) R(x, y_<=t) for each scored token t
    baseline: float | None  # R(x, ∅): score of the prompt-only input; None when it has no tokens
    score: float  # R(x, y): the model's own score of the whole input
    path: str  # "one-pass" or "prefix-batched"
    attention: np.ndarray | None = None  # (T,) last-layer attention of the pooled token (abc), heads averaged
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers


def _head_module(model) -> torch.nn.Module | None:
    """The linear score head that causal seq-cls models apply at every position (`model.score`)."""
    head = getattr(model, "score", None)
    return head if isinstance(head, torch.nn.Module) else None


def _pool_index(ids: torch.Tensor, pad_id: int | None) -> torch.Tensor:
    """(T,) -> (T,) for each t, the position transformers would pool for the text cut after t."""
    pos = torch.arange(ids.shape[0], device=ids.device)  # (T,)
    if pad_id is None:
        return pos
    marked = torch.where(ids != pad_id, pos, torch.zeros_like(pos))  # (T,)
    return torch.cummax(marked, dim=0).values  # (T,) rightmost non-pad position <= t, else 0


def _collate(seqs: list[list[int]], pad_id: int, side: str, device, type_ids: list[list[int]] | None = None):
    """Pad id lists into (B, L) tensors; position ids count real tokens so left padding changes nothing."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)  # (B, L)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)  # (B, L)
    tt = torch.zeros((len(seqs), n), dtype=torch.long) if type_ids is not None else None
    lefts = []
    for b, s in enumerate(seqs):
        left = n - len(s) if side == "left" else 0
        ids[b, left:left + len(s)] = torch.tensor(s, dtype=torch.long)
        mask[b, left:left + len(s)] = 1
        if tt is not None and type_ids is not None:
            tt[b, left:left + len(s)] = torch.tensor(type_ids[b], dtype=torch.long)
        lefts.append(left)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, L)
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
    if tt is not None:
        batch["token_type_ids"] = tt.to(device)
    return batch, positions.to(device), lefts


def _pad_id(rm: RewardModel) -> int:
    pid = rm.model.config.pad_token_id
    return int(pid) if pid is not None else int(rm.tokenizer.pad_token_id or 0)


def _accepts_positions(rm: RewardModel) -> bool:
    return rm.kind == "causal"


def _padding_side(rm: RewardModel) -> str:
    """The tokenizer's side for causal RMs (we pass position ids); always right for encoders, whose
    absolute position embeddings would shift under left padding."""
    return rm.tokenizer.padding_side if rm.kind == "causal" else "right"


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= SELF_CHECK_RTOL * max(1.0, abs(b))


def _batches(n: int, batch_size: int):
    for i in range(0, n, batch_size):
        yield range(i, min(i + batch_size, n))


class _EagerAttention:
    """Context: switch to eager attention (the only kind that returns weights), then back."""

    def __init__(self, model, on: bool):
        self.model, self.on, self.prev = model, on, None

    def __enter__(self):
        if self.on:
            self.prev = getattr(self.model.config, "_attn_implementation", None)
            if self.prev != "eager":
                self.model.set_attn_implementation("eager")
        return self

    def __exit__(self, *exc):
        if self.on and self.prev not in (None, "eager"):
            self.model.set_attn_implementation(self.prev)


# ----------------------------------------------------------------------------- causal: one pass


@torch.no_grad()
def _one_pass(rm: RewardModel, encs: list[Encoding], with_attention: bool) -> list[PrefixScores] | None:
    """Every prefix score of a batch in one forward pass; None when the self-check fails."""
    head = _head_module(rm.model)
    if head is None:
        return None
    captured: dict[str, torch.Tensor] = {}
    handle = head.register_forward_hook(lambda _m, _i, out: captured.__setitem__("out", out))
    pad_id = rm.model.config.pad_token_id
    batch, positions, lefts = _collate([e.ids for e in encs], _pad_id(rm), _padding_side(rm), rm.device)
    try:
        with _EagerAttention(rm.model, with_attention):
            out = rm.model(**batch, position_ids=positions, output_attentions=with_attention)
    finally:
        handle.remove()
    per_pos = captured.get("out")
    if per_pos is None or per_pos.dim() != 3:  # head was not applied per position
        return None
    per_pos = per_pos[..., rm.label_index].float()  # (B, L) head output at every position
    model_score = out.logits[:, rm.label_index].float()  # (B,) the model's own pooled score
    # Pooling for every row at once: the score of the text cut after position t is the head's output at the
    # rightmost non-pad position <= t (of that row's own tokens). One gather and one device->host copy for
    # the whole batch: a copy per row would synchronise with a GPU once per row.
    # Reference loop: for b: ids = input_ids[b, left:left+n]; row = per_pos[b, left:left+n][_pool_index(ids)]
    ids = batch["input_ids"]  # (B, L)
    L = ids.shape[1]
    pos = torch.arange(L, device=ids.device).expand_as(ids)  # (B, L)
    start = torch.tensor(lefts, device=ids.device)[:, None]  # (B, 1) first position of each row's tokens
    real = pos >= start  # (B, L) inside the row (left padding excluded)
    if pad_id is not None:
        real = real & (ids != pad_id)
    marked = torch.where(real, pos, start.expand_as(pos))  # (B, L) a pad points back to the row's first token
    pooled = per_pos.gather(1, torch.cummax(marked, dim=1).values)  # (B, L) score of the text cut after t
    host = torch.cat([pooled, model_score[:, None]], dim=1).double().cpu().numpy()  # (B, L + 1), one copy
    results = []
    for b, enc in enumerate(encs):
        left, n = lefts[b], len(enc.ids)
        row, own = host[b, left:left + n], float(host[b, L])  # (n,), the model's own score
        if not _close(float(row[-1]), own):
            return None
        attention = None
        if with_attention:
            last = int(torch.cummax(marked[b], dim=0).values[left + n - 1])  # pooled position (absolute)
            att = out.attentions[-1][b].float().mean(0)  # (L, L) heads averaged
            attention = att[last, left + enc.start:left + enc.stop].cpu().numpy()  # (T,)
        results.append(PrefixScores(prefix_scores=row[enc.start:enc.stop],
                                    baseline=float(row[enc.start - 1]) if enc.start > 0 else None,
                                    score=own, path="one-pass", attention=attention))
    return results


# ----------------------------------------------------------------------------- exact prefixes


def prefix_inputs(enc: Encoding, positions: list[int] | None = None) -> list[tuple[list[int], list[int] | None]]:
    """Model inputs for the baseline and for the prefix ending at each scored position (ids, type ids)."""
    n = enc.stop - enc.start
    positions = list(range(n)) if positions is None else positions
    head, tail = enc.ids[:enc.start], enc.ids[enc.stop:]
    tt = enc.token_type_ids
    out = []
    for t in [-1] + positions:
        cut = enc.start + t + 1
        ids = head + enc.ids[enc.start:cut] + tail
        types = (tt[:cut] + tt[enc.stop:]) if tt is not None else None
        out.append((ids, types))
    return out


def _group_type_ids(inputs: list[tuple[list[int], list[int] | None]], group: list[int]) -> list[list[int]] | None:
    """The token type ids of a group of inputs, or None when the model takes none."""
    if inputs[group[0]][1] is None:
        return None
    types = []
    for j in group:
        tt = inputs[j][1]
        if tt is None:
            raise ValueError("some inputs have token type ids and others do not; they cannot share a batch")
        types.append(tt)
    return types


@torch.no_grad()
def _model_scores(rm: RewardModel, inputs: list[tuple[list[int], list[int] | None]], max_batch_tokens: int) -> np.ndarray:
    """The model's own score of each input, longest-first batches of at most `max_batch_tokens` padded tokens."""
    scores = np.full(len(inputs), np.nan)
    order = sorted(range(len(inputs)), key=lambda i: -len(inputs[i][0]))
    i = 0
    while i < len(order):
        width = max(len(inputs[order[i]][0]), 1)
        group = order[i:i + max(1, max_batch_tokens // width)]
        seqs = [inputs[j][0] for j in group]
        types = _group_type_ids(inputs, group)
        batch, positions, _ = _collate(seqs, _pad_id(rm), _padding_side(rm), rm.device, types)
        extra = {"position_ids": positions} if _accepts_positions(rm) else {}
        logits = rm.model(**batch, **extra).logits[:, rm.label_index].float()  # (b,)
        scores[group] = logits.double().cpu().numpy()
        i += len(group)
    return scores


@torch.no_grad()
def _attention_full(rm: RewardModel, enc: Encoding) -> np.ndarray:
    """(T,) last-layer attention (heads averaged) from the pooled token to each scored token."""
    batch, positions, _ = _collate([enc.ids], _pad_id(rm), "right", rm.device,
                                   [enc.token_type_ids] if enc.token_type_ids is not None else None)
    extra = {"position_ids": positions} if _accepts_positions(rm) else {}
    with _EagerAttention(rm.model, True):
        out = rm.model(**batch, **extra, output_attentions=True)
    att = out.attentions[-1][0].float().mean(0)  # (L, L)
    pool = 0 if rm.kind == "encoder" else int(_pool_index(batch["input_ids"][0], rm.model.config.pad_token_id)[-1])
    return att[pool, enc.start:enc.stop].cpu().numpy()


def _exact(rm: RewardModel, encs: list[Encoding], with_attention: bool, max_batch_tokens: int,
           positions: list[list[int]] | None) -> list[PrefixScores]:
    """Exact prefix scores of several encodings, all their prefixes batched together."""
    inputs: list[tuple[list[int], list[int] | None]] = []
    spans: list[tuple[int, int, list[int] | None]] = []
    for k, enc in enumerate(encs):
        pk = positions[k] if positions is not None else None
        rows = prefix_inputs(enc, pk)
        spans.append((len(inputs), len(rows), pk))
        inputs.extend(rows)
    flat = _model_scores(rm, inputs, max_batch_tokens)
    results = []
    for enc, (lo, count, pk) in zip(encs, spans):
        vals = flat[lo:lo + count]  # baseline, then each requested prefix
        n = enc.stop - enc.start
        if pk is None:
            scores = vals[1:]
        else:  # coarse boundaries: carry each boundary's score forward to the next boundary
            scores = np.empty(n)
            known = dict(zip(pk, vals[1:]))
            last = vals[0]
            for t in range(n):
                last = known.get(t, last)
                scores[t] = last
        has_base = enc.start > 0 or enc.stop < len(enc.ids)
        results.append(PrefixScores(prefix_scores=scores, baseline=float(vals[0]) if has_base else None,
                                    score=float(vals[-1]), path="prefix-batched",
                                    attention=_attention_full(rm, enc) if with_attention else None))
    return results


# ----------------------------------------------------------------------------- public


def score_encodings(rm: RewardModel, encs: list[Encoding], *, batch_size: int = 8, with_attention: bool = False,
                    max_batch_tokens: int | None = None,
                    positions: list[list[int]] | None = None) -> list[PrefixScores]:
    """Prefix scores for each encoding. `positions` (encoders): score only these scored-token indices
    per encoding (coarse boundaries; last index must be included); other positions carry the previous
    boundary's score forward, so token rewards inside a unit sum to the unit's reward.
    `max_batch_tokens`: padded tokens per batch of prefixes (bounds memory); default by device."""
    max_batch_tokens = max_batch_tokens or default_max_batch_tokens(rm)
    if rm.kind == "causal":
        results = []
        for idx in _batches(len(encs), batch_size):
            chunk = [encs[i] for i in idx]
            got = _one_pass(rm, chunk, with_attention)
            if got is None:
                got = _exact(rm, chunk, with_attention, max_batch_tokens, None)
                for ps in got:
                    ps.notes.append("one-pass self-check failed (the score head is not applied per position, or the "
                                    "pooling differs); every prefix was scored separately instead (exact, slower).")
            results.extend(got)
        return results
    results = []
    for idx in _batches(len(encs), batch_size):
        chunk = [encs[i] for i in idx]
        results.extend(_exact(rm, chunk, with_attention, max_batch_tokens,
                              [positions[i] for i in idx] if positions is not None else None))
    return results


@torch.no_grad()
def score_prefixes_loop(rm: RewardModel, enc: Encoding) -> tuple[float | None, np.ndarray]:
    """Reference: one model call per prefix (baseline, then each scored token). Slow on purpose."""
    values: list[float | None] = []
    for ids, types in prefix_inputs(enc):
        if not ids:
            values.append(None)
            continue
        x = torch.tensor([ids], device=rm.device)
        kw = {"token_type_ids": torch.tensor([types], device=rm.device)} if types is not None else {}
        values.append(float(rm.model(input_ids=x, **kw).logits[0, rm.label_index].float()))
    return values[0], np.array(values[1:], dtype=np.float64)


@torch.no_grad()
def detect_kind(rm: RewardModel) -> str:
    """'causal' when one pass reproduces exact prefix scores on a probe input, else 'encoder'.

    Evidence beats names: a model is treated as causal only if its score head is applied per
    position and the score of a cut text equals the head's output at that position.
    """
    if _head_module(rm.model) is None:
        return "encoder"
    vocab = [i for i in range(min(rm.model.config.vocab_size, 200)) if i not in rm.tokenizer.all_special_ids][:12]
    if len(vocab) < 6:
        return "encoder"
    enc = Encoding(ids=vocab, start=1, stop=len(vocab), offsets=[(0, 0)] * (len(vocab) - 1),
                   special=[False] * (len(vocab) - 1), texts=[""] * (len(vocab) - 1))
    rm.kind = "causal"
    got = _one_pass(rm, [enc], with_attention=False)
    if got is None:
        return "encoder"
    _, exact = score_prefixes_loop(rm, enc)
    return "causal" if np.allclose(got[0].prefix_scores, exact, rtol=1e-3, atol=1e-4) else "encoder"
