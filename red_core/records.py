"""The records every stage shares: a loaded RewardModel, one Encoding, and RewardModelError.

They live apart from the code that makes them (models.py loads and encodes; scoring.py scores), so
the data flow text -> models -> scoring -> methods -> result imports one way, with no cycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


class RewardModelError(ValueError):
    """A reward model could not be loaded or used; the message says what to do."""


@dataclass
class RewardModel:
    """A loaded reward model: the transformers model and tokenizer plus what we learned about them."""

    model: PreTrainedModel  # a ...ForSequenceClassification model, in eval mode
    tokenizer: PreTrainedTokenizerBase  # a fast tokenizer (offsets are needed)
    name: str  # hub id or folder, as the user gave it
    kind: str  # "causal": one pass gives every prefix score; "encoder": one pass per prefix
    label_index: int = 0  # which output of the score head is the reward
    input_format: str = "auto"  # "auto" (chat template if any, else concat), "concat" or "pair"
    max_length: int = 2048  # longest input the model takes
    warnings: list[str] = field(default_factory=list)  # said once at load, copied into every result

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def uses_chat_template(self) -> bool:
        return self.input_format == "auto" and bool(getattr(self.tokenizer, "chat_template", None))


@dataclass
class Encoding:
    """One (prompt, response) pair as model input, and which positions carry token rewards."""

    ids: list[int]  # (L,) the full model input
    start: int  # index in `ids` of the first scored token; ids[:start] is the prompt-only input
    stop: int  # scored tokens are ids[start:stop]; ids[stop:] is a fixed tail added to every prefix
    offsets: list[tuple[int, int]]  # (T,) [start, end) character span of each scored token in `response`
    special: list[bool]  # (T,) template/special token rather than response text
    texts: list[str]  # (T,) raw text of each scored token (response slice, or the special token)
    token_type_ids: list[int] | None = None  # (L,) segment ids for pair inputs, else None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        n = self.stop - self.start
        if not 0 <= self.start <= self.stop <= len(self.ids):
            raise ValueError(f"bad encoding bounds start={self.start} stop={self.stop} len={len(self.ids)}")
        for name in ("offsets", "special", "texts"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Encoding.{name} has {len(getattr(self, name))} entries, expected {n}")
