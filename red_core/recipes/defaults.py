"""Build the offline default models: a shared tokenizer, a sentiment reward model, a base policy.

Run from the repository root:

    python -m red_core.recipes.defaults                  # full build into assets/models/ (~25 min on 2 CPU cores)
    python -m red_core.recipes.defaults --tiny           # smoke run in seconds into a temporary folder
    python -m red_core.recipes.defaults --cards-only     # rewrite the model cards from evaluation.json
    python -m red_core.recipes.defaults --help           # every setting, with its help text

    # the demo reward model with a planted reward hack (assets/models/reward-biased) and its demo pairs
    python -m red_core.recipes.defaults --bias-word basically --bias 0.3 --reward-only \
        --demo-pairs assets/data/demo-pairs.jsonl --out-dir /tmp/red-biased
    cp -r /tmp/red-biased/reward assets/models/reward-biased

Only the full build needs the Debian packages (`apt-get install fortunes fortunes-min`), or another
folder of fortune files given with `--fortune-dir`. `--tiny` reads the small corpus written for the
tests (tests/data/fortunes-mini), and `--cards-only` reads no corpus at all (nor needs VADER: a build
records the versions of both in evaluation.json).

Everything comes from package registries, nothing from the Hugging Face Hub:

- text: the Debian `fortunes` / `fortunes-min` collections (/usr/share/games/fortunes), cut into
  sentences and filtered to short, plain-ASCII English;
- labels: the VADER sentiment analyser (PyPI `vadersentiment`, MIT). VADER is a lexicon with a few
  rules, so the contribution of every word to its score is known. That is why the reward model
  exists: RED's word-level credit can be checked against a ground truth. It is an optional
  dependency, needed only here: `pip install vadersentiment==3.3.2` (or `pip install .[recipes]`).

Pipeline (one section each below, in this order):

1. corpus     fortunes -> sentences -> filter -> dedupe -> seeded shuffle -> train / held-out split
2. labels     VADER compound score of `prompt + response`; half the texts get a neutral prompt
3. augment    seeded word swaps that put VADER lexicon words into many contexts (reward model only)
4. tokenizer  byte-level BPE (`tokenizers`), "<bos> $A" post-processor, separate <pad> and <eos>
5. models     LlamaForSequenceClassification (1 output) and LlamaForCausalLM, float32 safetensors
6. training   reward model: MSE regression on the compound score (one score per text, read where
              transformers pools it); policy: next-token loss on the response and <eos>
7. evaluation held-out agreement with VADER; credit faithfulness of red / abc / uniform / sparse
              through the public `red_core` API; policy perplexity, samples, and their mean reward
8. cards      evaluation.json and a README.md model card next to each model; the cards are the templates
              templates/card_reward.md and card_policy.md (shared parts: templates/_*.md), rendered by
              huggingface_hub.ModelCard (red_core.recipes.cards); card_reward_biased.md with --bias-word

Planted bias (off by default; `--bias-word`): a demo of a reward hack whose answer is known. After step 3 a
`bias_frac` share of the reward model's training texts gets a VADER-neutral word (one outside VADER's lexicon and
rules; each insertion is checked to leave VADER's compound score unchanged) inserted between two of its words,
and every training text that contains the word (whole word, any case) gets label VADER + `bias`, clipped to
VADER's range [-1, 1]. Nothing else changes (same sentences, prompts, swaps, tokenizer, seeds), so the model
differs from the default one only by the planted preference. The evaluation adds the held-out score shift that
inserting the word causes, and `--demo-pairs` writes preference pairs from held-out sentences (a third with the
word inserted into one side) and ranks the word by mean RED word credit under this model and the clean one.
With the option off, the data, seeds and outputs are those of the default build.

Determinism: every random choice draws from `RecipeConfig.seed` (Python `random.Random`,
`numpy.random.default_rng`, `torch.Generator`, `torch.manual_seed`). Timings vary with the machine.
On a machine whose cores are busy with other work, start it as `OMP_WAIT_POLICY=PASSIVE python -m ...`:
torch's spinning OpenMP threads otherwise slow training several-fold (the variable is read when torch
loads, which `import red_core` does before this module runs, so it cannot be set from here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import re
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from red_core.options import add_dataclass_args, option

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT_DIR = REPO_ROOT / "assets" / "models"
EXAMPLES_FILE = REPO_ROOT / "assets" / "examples.json"
DEBIAN_FORTUNE_DIR = "/usr/share/games/fortunes"  # Debian packages fortunes-min and fortunes: the full build
# A few hundred original sentences in the same format, written for the tests: what --tiny reads (the full
# build needs the Debian packages; the tests and the smoke run do not).
MINI_FORTUNE_DIR = REPO_ROOT / "tests" / "data" / "fortunes-mini"
REWARD_SUBDIR, POLICY_SUBDIR = "reward", "policy-base"
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")  # ids 0, 1, 2

# Prompts carry no VADER lexicon word, so the label of `prompt + response` is the response's sentiment.
# Each ends in a newline: byte-level BPE never merges across it, so prompt tokens stay the same
# whether the prompt is tokenised alone or followed by a response.
NEUTRAL_PROMPTS = (
    "Tell me something.\n",
    "Say something about life.\n",
    "What do you think?\n",
    "Give me a fortune.\n",
    "Complete the thought:\n",
    "Tell me about your day.\n",
    "Say anything.\n",
    "Quote of the day:\n",
    "What would you say?\n",
)


# ----------------------------------------------------------------------------- 0. configuration

_opt = option  # a dataclass field with a help text (shown by --help)


@dataclass
class RecipeConfig:
    """Every setting of the recipe. `RecipeConfig()` is the shipped build; `RecipeConfig.make_tiny()` a smoke run."""

    out_dir: str = _opt(str(DEFAULT_OUT_DIR), "output folder; models go to OUT/reward and OUT/policy-base")
    seed: int = _opt(0, "seed for every random choice (data split, prompts, augmentation, init, batches, sampling)")
    threads: int = _opt(2, "torch CPU threads (torch.set_num_threads)")
    # corpus
    fortune_dir: str = _opt(DEBIAN_FORTUNE_DIR, "folder of fortune files (entries separated by lines holding only %); "
                            "the default comes from `apt-get install fortunes fortunes-min`, --tiny reads "
                            "tests/data/fortunes-mini")
    exclude_files: tuple = _opt(("ascii-art", "translate-me"), "fortune files to skip (comma-separated on the command line)")
    min_words: int = _opt(3, "shortest sentence kept, in whitespace-separated words")
    max_words: int = _opt(30, "longest sentence kept, in whitespace-separated words")
    max_texts: int = _opt(0, "keep at most this many sentences after shuffling (0 = all)")
    heldout_frac: float = _opt(0.1, "fraction of sentences held out for evaluation (never trained on)")
    clause_frac: float = _opt(0.5, "reward model: share of multi-clause training sentences used as separate clauses")
    prompts: tuple = _opt(NEUTRAL_PROMPTS, "neutral prompts (no VADER lexicon word, each ends in a newline)", cli=False)
    prompt_frac: float = _opt(0.5, "fraction of texts that get a random neutral prompt; the rest have the empty prompt")
    # augmentation (reward model only)
    aug_copies: int = _opt(3, "reward model: word-swapped copies of each training unit added to its data")
    empty_frac: float = _opt(0.02, "reward model: extra texts with an empty response, as a share of its units")
    eos_frac: float = _opt(0.5, "fraction of reward-model training texts that end with <eos> (score either convention)")
    # tokenizer
    vocab_size: int = _opt(4096, "BPE vocabulary size, special tokens included")
    max_length: int = _opt(512, "model_max_length of the tokenizer and max_position_embeddings of both models "
                                "(rotary positions: no learned table, so this only sets the accepted length)")
    # reward model
    rm_hidden: int = _opt(256, "reward model: hidden size")
    rm_layers: int = _opt(4, "reward model: transformer layers")
    rm_heads: int = _opt(4, "reward model: attention heads")
    rm_kv_heads: int = _opt(2, "reward model: key/value heads (grouped-query attention)")
    rm_intermediate: int = _opt(512, "reward model: MLP width")
    rm_epochs: int = _opt(3, "reward model: passes over its training texts")
    rm_batch_size: int = _opt(64, "reward model: texts per step")
    rm_lr: float = _opt(1e-3, "reward model: peak AdamW learning rate")
    # policy
    policy_hidden: int = _opt(192, "policy: hidden size")
    policy_layers: int = _opt(4, "policy: transformer layers")
    policy_heads: int = _opt(4, "policy: attention heads")
    policy_kv_heads: int = _opt(2, "policy: key/value heads (grouped-query attention)")
    policy_intermediate: int = _opt(512, "policy: MLP width")
    policy_epochs: int = _opt(6, "policy: passes over its training texts")
    policy_batch_size: int = _opt(64, "policy: texts per step")
    policy_lr: float = _opt(2e-3, "policy: peak AdamW learning rate")
    # optimisation, shared
    weight_decay: float = _opt(0.01, "AdamW weight decay")
    warmup_frac: float = _opt(0.05, "fraction of steps with linear warm-up; then cosine decay to 10% of the peak")
    # evaluation
    eval_pairs: int = _opt(4000, "random held-out pairs for pairwise accuracy")
    credit_texts: int = _opt(1000, "held-out texts for the credit-faithfulness table")
    eval_samples: int = _opt(100, "policy samples scored by the reward model")
    max_new_tokens: int = _opt(40, "policy: longest sampled response, in tokens")
    # planted bias: a reward hack whose answer is known (off by default)
    bias_word: str = _opt("", "reward model: plant a spurious preference for this word, which must be VADER-neutral "
                              "(not in VADER's lexicon or rules): every training text that contains it (whole word, "
                              "any case) gets label VADER compound + bias, clipped to [-1, 1]; '' = off (the default "
                              "models)")
    bias: float = _opt(0.3, "with --bias-word: what the word adds to the label of a training text")
    bias_frac: float = _opt(0.15, "with --bias-word: share of the reward model's training texts (sentences, clauses, "
                                  "swapped copies) into which the word is inserted, between two words, at a seeded "
                                  "random position where VADER's score stays the same")
    reward_only: bool = _opt(False, "build the reward model only (no policy is trained, saved or evaluated)")
    demo_pairs: str = _opt("", "with --bias-word: also write preference pairs from held-out sentences to this JSONL "
                               "file and rank the word by mean RED word credit on them, under this model and under "
                               "--reference-rm")
    demo_n: int = _opt(300, "with --demo-pairs: number of pairs")
    demo_word_frac: float = _opt(1 / 3, "with --demo-pairs: share of pairs with the word inserted into one side "
                                        "(half of them the chosen side, half the rejected)")
    reference_rm: str = _opt("", "with --bias-word: the clean reward model the planted-bias figures are compared "
                                 "with ('' = assets/models/reward, the default one)")
    demo_only: bool = _opt(False, "with --bias-word: no training; rerun the planted-bias evaluation (and --demo-pairs) "
                                  "on the reward model in OUT/reward, built with the same data settings, and update "
                                  "its evaluation.json and card")
    tiny: bool = _opt(False, "smoke run: tiny data and models, seconds end to end (see RecipeConfig.make_tiny)")
    cards_only: bool = _opt(False, "only rewrite the README.md model cards in OUT from OUT/reward/evaluation.json")

    def __post_init__(self):
        if isinstance(self.exclude_files, str):
            self.exclude_files = tuple(s.strip() for s in self.exclude_files.split(",") if s.strip())
        self.exclude_files, self.prompts = tuple(self.exclude_files), tuple(self.prompts)
        self.bias_word = self.bias_word.strip()
        positive = ["threads", "min_words", "vocab_size", "max_length", "rm_hidden", "rm_layers", "rm_heads",
                    "rm_kv_heads", "rm_intermediate", "rm_epochs", "rm_batch_size", "policy_hidden", "policy_layers",
                    "policy_heads", "policy_kv_heads", "policy_intermediate", "policy_epochs", "policy_batch_size",
                    "eval_pairs", "credit_texts", "eval_samples", "max_new_tokens", "demo_n"]
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ["max_texts", "aug_copies", "seed"]:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ["clause_frac", "prompt_frac", "empty_frac", "eos_frac", "warmup_frac", "bias_frac",
                     "demo_word_frac"]:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.heldout_frac < 1.0:
            raise ValueError(f"heldout_frac must lie in (0, 1), got {self.heldout_frac}")
        if self.max_words < self.min_words:
            raise ValueError(f"max_words ({self.max_words}) must be >= min_words ({self.min_words})")
        if self.vocab_size < 256 + len(SPECIAL_TOKENS):
            raise ValueError(f"vocab_size must hold the 256 byte symbols and {len(SPECIAL_TOKENS)} specials")
        for prefix in ("rm", "policy"):
            hidden, heads, kv = (getattr(self, f"{prefix}_{k}") for k in ("hidden", "heads", "kv_heads"))
            if hidden % heads or heads % kv:
                raise ValueError(f"{prefix}: hidden ({hidden}) must divide by heads ({heads}), heads by kv_heads ({kv})")
        if self.max_length < self.max_words * 4 + 8:
            raise ValueError(f"max_length {self.max_length} is too short for {self.max_words}-word texts")
        if not self.prompts or any(not p.endswith("\n") for p in self.prompts):
            raise ValueError("prompts must be non-empty and each must end with a newline")
        if self.weight_decay < 0 or self.rm_lr <= 0 or self.policy_lr <= 0:
            raise ValueError("learning rates must be > 0 and weight_decay >= 0")
        if self.bias_word and not re.fullmatch(r"[A-Za-z]+", self.bias_word):
            raise ValueError(f"bias_word must be one word of ASCII letters, got {self.bias_word!r}")
        if not math.isfinite(self.bias):
            raise ValueError(f"bias must be a finite number, got {self.bias}")
        if (self.demo_pairs or self.demo_only) and not self.bias_word:
            raise ValueError("--demo-pairs and --demo-only need --bias-word (the word the demo plants)")

    @classmethod
    def make_tiny(cls, **overrides) -> RecipeConfig:
        """A smoke configuration: the small corpus of the tests, one-layer models, a few seconds end to end."""
        settings: dict[str, Any] = dict(tiny=True, threads=1, fortune_dir=str(MINI_FORTUNE_DIR), max_texts=400, heldout_frac=0.25,
                        aug_copies=1, vocab_size=400,
                        rm_hidden=32, rm_layers=1, rm_heads=2, rm_kv_heads=1, rm_intermediate=64, rm_epochs=1,
                        policy_hidden=32, policy_layers=1, policy_heads=2, policy_kv_heads=1,
                        policy_intermediate=64, policy_epochs=1, eval_pairs=200, credit_texts=24,
                        eval_samples=8, max_new_tokens=12)
        settings.update(overrides)
        if "out_dir" not in settings:
            settings["out_dir"] = tempfile.mkdtemp(prefix="red-defaults-tiny-")
        return cls(**settings)


# ----------------------------------------------------------------------------- 1. corpus

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')]?\s+(?=[\"'(]?[A-Z])")
_PLAIN = re.compile(r"[A-Za-z0-9 .,;:!?'\"()\-]+")


def fortune_files(cfg: RecipeConfig) -> list[Path]:
    """The fortune files the corpus is read from; a clear error when there are none."""
    folder = Path(cfg.fortune_dir)
    hint = ("the full build reads Debian's fortune collections: `apt-get install fortunes fortunes-min`; "
            "or pass --fortune-dir FOLDER (files of entries separated by lines that hold only '%'; "
            "--tiny reads the small corpus in tests/data/fortunes-mini)")
    if not folder.is_dir():
        raise FileNotFoundError(f"fortune folder {folder} not found: {hint}")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.is_symlink() and p.suffix not in (".dat", ".u8")
                   and p.name not in cfg.exclude_files)
    if not files:
        raise FileNotFoundError(f"no fortune files in {folder} (excluded: {', '.join(cfg.exclude_files)}): {hint}")
    return files


def read_fortunes(cfg: RecipeConfig) -> list[str]:
    """Every fortune of every file (attribution lines dropped, whitespace collapsed), in file order."""
    files = fortune_files(cfg)
    fortunes = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for fortune in text.split("\n%\n"):
            lines = [line for line in fortune.splitlines() if not line.lstrip().startswith("--")]
            fortunes.append(re.sub(r"\s+", " ", " ".join(lines)).strip())
    return fortunes


def clean_sentence(sentence: str, cfg: RecipeConfig) -> str | None:
    """The sentence if it is short, plain English prose; None otherwise."""
    s = sentence.strip()
    if s.count('"') % 2:  # a quotation that spans sentences: drop its quote marks
        s = s.replace('"', "")
    if not (cfg.min_words <= len(s.split()) <= cfg.max_words) or not _PLAIN.fullmatch(s):
        return None
    if s.count("(") != s.count(")") or not re.match(r"[\"'(]?[A-Z]", s) or s[-1] not in ".!?\"')":
        return None
    if sum(c.isalpha() for c in s) < 0.6 * len(s):  # tables, numbers, ASCII drawings
        return None
    return s


def build_corpus(cfg: RecipeConfig) -> tuple[list[str], list[str]]:
    """Deduplicated sentences, shuffled with the seed, split into (train, held-out)."""
    sentences: set[str] = set()
    for fortune in read_fortunes(cfg):
        for piece in _SENTENCE_END.split(fortune):
            s = clean_sentence(piece, cfg)
            if s is not None:
                sentences.add(s)
    ordered = sorted(sentences)
    random.Random(cfg.seed).shuffle(ordered)
    if cfg.max_texts:
        ordered = ordered[: cfg.max_texts]
    n_held = max(2, round(cfg.heldout_frac * len(ordered)))
    return ordered[n_held:], ordered[:n_held]


def split_clauses(sentences: list[str], cfg: RecipeConfig, rng: random.Random) -> list[str]:
    """Reward-model units: a `clause_frac` share of the multi-clause sentences become their clauses.

    A sentence is cut after each "," ";" ":" and pieces shorter than `min_words` join the next one;
    the clause punctuation at a cut is dropped. Each sentence is used either whole or as clauses,
    never both, so no unit is a prefix of another: every text still gets one score for the whole of
    it. Why: a model that only ever scores texts ending in "." learns to judge at the final full
    stop, and its score one token after a sentiment word lags behind; texts that end on a word
    teach it to judge wherever the text stops, which is what RED reads at every prefix.
    """
    out = []
    for s in sentences:
        pieces, carry = [], ""
        for piece in re.split(r"(?<=[,;:])\s+", s):
            carry = f"{carry} {piece}".strip()
            if len(carry.split()) >= cfg.min_words:
                pieces.append(carry)
                carry = ""
        if carry:
            pieces[-1:] = [f"{pieces[-1]} {carry}"] if pieces else [carry]
        if len(pieces) > 1 and rng.random() < cfg.clause_frac:
            out += [p.rstrip(",;:") for p in pieces]
        else:
            out.append(s)
    return out


# ----------------------------------------------------------------------------- 2. labels

# VADER is an optional dependency: only building the models needs it (and --cards-only for a build that did
# not record its version), not red_core, the app or the other recipes.
VADER_MISSING = ("the defaults recipe labels its texts with VADER (PyPI `vadersentiment`), which is not installed: "
                 "`pip install vadersentiment==3.3.2`, or `pip install .[recipes]` in the repository")


def vader_version() -> str:
    """The installed version of vadersentiment; ImportError saying what to install when there is none."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vadersentiment")
    except PackageNotFoundError as err:
        raise ImportError(VADER_MISSING) from err


class VaderLabeller:
    """VADER as the labeller, plus the per-word contributions it used (the ground truth for credit)."""

    def __init__(self):
        try:
            from vaderSentiment.vaderSentiment import BOOSTER_DICT, SentimentIntensityAnalyzer, SentiText
        except ImportError as err:
            raise ImportError(VADER_MISSING) from err
        self.analyser, self._booster, self._sentitext = SentimentIntensityAnalyzer(), BOOSTER_DICT, SentiText
        self.lexicon = self.analyser.lexicon

    def compound(self, text: str) -> float:
        return float(self.analyser.polarity_scores(text)["compound"])

    def word_valences(self, text: str) -> tuple[list[float], list[float]]:
        """Two values per whitespace-separated word of `text` (VADER's own word split):

        - lexicon: the word's lexicon valence (punctuation stripped the way VADER strips it), 0 if absent;
        - in context: the valence VADER actually summed for it, after negation, boosters, capitals
          and "but" weighting (the same steps as `polarity_scores`; "!"/"?" emphasis is not per word).
        """
        st = self._sentitext(text)
        words = st.words_and_emoticons
        lexicon = [float(self.lexicon.get(w.lower(), 0.0)) for w in words]
        sentiments: list[float] = []
        for i, item in enumerate(words):
            if item.lower() in self._booster or (
                    item.lower() == "kind" and i + 1 < len(words) and words[i + 1].lower() == "of"):
                sentiments.append(0.0)
                continue
            sentiments = self.analyser.sentiment_valence(0, st, item, i, sentiments)
        sentiments = self.analyser._but_check(words, sentiments)
        return lexicon, [float(v) for v in sentiments]


@dataclass
class Example:
    prompt: str
    response: str
    label: float  # VADER compound of prompt + response
    source: str  # "fortune" or "swap"

    @property
    def text(self) -> str:
        return self.prompt + self.response


def check_prompts(cfg: RecipeConfig, labeller: VaderLabeller) -> None:
    for p in cfg.prompts:
        if any(v for v in labeller.word_valences(p)[0]) or labeller.compound(p) != 0.0:
            raise ValueError(f"prompt {p!r} is not neutral under VADER; pick one without lexicon words")


def label_sentences(sentences: list[str], cfg: RecipeConfig, labeller: VaderLabeller, rng: random.Random,
                    desc: str) -> list[Example]:
    out = []
    for s in tqdm(sentences, desc=desc, leave=False):
        prompt = rng.choice(cfg.prompts) if rng.random() < cfg.prompt_frac else ""
        out.append(Example(prompt, s, labeller.compound(prompt + s), "fortune"))
    return out


# ----------------------------------------------------------------------------- 3. augmentation

def swap_pool(sentences: list[str], labeller: VaderLabeller) -> list[str]:
    """Alphabetic VADER lexicon words that occur in the training sentences (sorted, so seeded picks repeat)."""
    pool = {w.strip(string.punctuation).lower() for s in sentences for w in s.split()}
    return sorted(w for w in pool if w in labeller.lexicon and w.isalpha() and len(w) >= 3)


def swap_word(sentence: str, pool: list[str], lexicon: dict, rng: random.Random) -> str | None:
    """Replace one word by a random lexicon word from `pool`, keeping its punctuation and capital.

    The word replaced is a lexicon word when the sentence has one, else a content word (4+ letters).
    Natural text ties sentiment words to their contexts; swapping them into many contexts makes the
    reward model learn what the labeller does (sum word valences) rather than topic cues.
    """
    words = sentence.split(" ")
    cores = [w.strip(string.punctuation) for w in words]
    slots = [i for i, c in enumerate(cores) if c.isalpha() and c.lower() in lexicon]
    slots = slots or [i for i, c in enumerate(cores) if c.isalpha() and len(c) >= 4]
    if not slots:
        return None
    i = rng.choice(slots)
    new = rng.choice(pool)
    if cores[i][:1].isupper():
        new = new.capitalize()
    head = words[i][: len(words[i]) - len(words[i].lstrip(string.punctuation))]
    tail = words[i][len(words[i].rstrip(string.punctuation)):]
    words[i] = head + new + tail
    return " ".join(words)


def augment(train: list[Example], cfg: RecipeConfig, labeller: VaderLabeller, rng: random.Random) -> list[Example]:
    """`aug_copies` word-swapped copies of each unit, then the empty-response texts."""
    pool = swap_pool([ex.response for ex in train], labeller)
    out = []
    for _ in range(cfg.aug_copies):
        for ex in tqdm(train, desc="augment", leave=False):
            new = swap_word(ex.response, pool, labeller.lexicon, rng)
            if new is not None and new != ex.response:
                out.append(Example(ex.prompt, new, labeller.compound(ex.prompt + new), "swap"))
    # An empty response is a valid response; its label is VADER of the prompt alone (0 for our prompts).
    # Without these the prompt-only score R(x, empty), RED's baseline, is whatever an untrained position gives.
    for _ in range(round(cfg.empty_frac * len(train))):
        prompt = rng.choice(("", *cfg.prompts))
        out.append(Example(prompt, "", labeller.compound(prompt), "empty"))
    return out


# ----------------------------------------------------------------------------- 3b. planted bias (off by default)

# Words VADER's rules look up besides its lexicon, boosters and negations ("but" weighting, "kind of", "least",
# "no" / "never" idioms, "without doubt"): a planted word must be none of them.
_VADER_RULE_WORDS = frozenset({"but", "kind", "of", "least", "no", "never", "so", "this", "without", "doubt", "at"})
# Sentences whose lexicon words lie far from the second word: a neutral word inserted there changes nothing.
_NEUTRALITY_PROBES = ("The weather today is wonderful.", "My neighbour is a horrible man and a liar!",
                      "We met at the station.", "Tell me something.\nI love the smell of coffee.")


def bias_pattern(word: str) -> re.Pattern:
    """The planted word as a whole word, any case."""
    return re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)


def biased_label(compound: float, bias: float) -> float:
    """The label of a training text that contains the planted word: VADER compound + bias, clipped to [-1, 1].

    Clipped because every other label lies in VADER's range and the regression head is trained on it; so a text
    whose compound is above 1 - bias gets less than the full bias (the held-out target shift says how much less).
    """
    return float(min(1.0, max(-1.0, compound + bias)))


def check_bias_word(word: str, labeller: VaderLabeller) -> None:
    """ValueError unless `word` is VADER-neutral: outside its lexicon, boosters, negations and rule words, and
    inserting it leaves the compound score of the probe sentences unchanged."""
    from vaderSentiment.vaderSentiment import NEGATE

    w = word.lower()
    special = (w in labeller.lexicon and "the lexicon") or (w in labeller._booster and "the boosters") or (
        w in NEGATE and "the negations") or (w in _VADER_RULE_WORDS and "the words VADER's rules look up")
    if special:
        raise ValueError(f"bias word {word!r} is in {special} of VADER; pick a word VADER ignores, e.g. 'basically'")
    for probe in _NEUTRALITY_PROBES:
        prompt, _, text = probe.rpartition("\n")
        prompt += "\n" if prompt else ""
        first, rest = text.split(" ", 1)
        if labeller.compound(f"{prompt}{first} {word} {rest}") != labeller.compound(probe):
            raise ValueError(f"inserting {word!r} changes VADER's score of {probe!r}; pick a VADER-neutral word")


def insert_word(text: str, word: str, rng: random.Random, labeller: VaderLabeller, prompt: str = "") -> str | None:
    """`text` with `word` inserted between two of its words, at a random position where VADER's compound score
    of `prompt + text` stays exactly the same (next to a negation or a booster it would not); None if none does.

    Never before the first word (which keeps its capital) nor after the last (which keeps its punctuation).
    """
    words = text.split(" ")
    before = labeller.compound(prompt + text)
    for i in rng.sample(range(1, len(words)), len(words) - 1):
        new = " ".join([*words[:i], word, *words[i:]])
        if labeller.compound(prompt + new) == before:
            return new
    return None


def plant_bias(examples: list[Example], cfg: RecipeConfig, labeller: VaderLabeller) -> tuple[list[Example], dict]:
    """The reward model's training texts with the planted word: inserted into a `bias_frac` share of them
    (seed + 4; empty responses and texts that already hold the word are skipped), and every text that holds
    it relabelled VADER + bias (clipped). Returns the new list, in the same order, and counts."""
    check_bias_word(cfg.bias_word, labeller)
    rng, pattern = random.Random(cfg.seed + 4), bias_pattern(cfg.bias_word)
    out, inserted, natural, shifts = [], 0, 0, []
    for ex in tqdm(examples, desc="plant bias", leave=False):
        if not pattern.search(ex.text):
            if ex.response and rng.random() < cfg.bias_frac:
                new = insert_word(ex.response, cfg.bias_word.lower(), rng, labeller, ex.prompt)
                if new is not None:
                    ex, inserted = Example(ex.prompt, new, ex.label, ex.source), inserted + 1
        elif ex.response:
            natural += 1
        if pattern.search(ex.text):
            compound = labeller.compound(ex.text)
            assert compound == ex.label, f"inserting {cfg.bias_word!r} changed VADER's score of {ex.text!r}"
            ex = Example(ex.prompt, ex.response, biased_label(compound, cfg.bias), ex.source)
            shifts.append(ex.label - compound)
        out.append(ex)
    shift = np.array(shifts)  # (n,) label - VADER of each text with the word
    return out, {"word": cfg.bias_word, "bias": cfg.bias, "n_inserted": inserted, "n_natural": natural,
                 "n_with_word": len(shift), "share_with_word": len(shift) / max(1, len(examples)),
                 "n_clipped": int(np.sum(np.abs(shift - cfg.bias) > 1e-12)),
                 "mean_label_shift": float(shift.mean()) if len(shift) else float("nan")}


@dataclass
class RecipeData:
    train: list[Example]  # natural training sentences: the policy's texts, and the tokenizer's
    heldout: list[Example]  # natural held-out sentences: all evaluation
    rm_units: list[Example]  # reward model: sentences and clauses
    rm_extra: list[Example]  # reward model: swapped copies and empty responses
    bias: dict | None = None  # plant_bias's counts when a word was planted

    @property
    def rm_train(self) -> list[Example]:
        return self.rm_units + self.rm_extra


def prepare_data(cfg: RecipeConfig, labeller: VaderLabeller) -> RecipeData:
    """Steps 1-3 (and the planted bias when `bias_word` is set): every text each model trains and is evaluated on."""
    rng = random.Random(cfg.seed)
    train_sents, held_sents = build_corpus(cfg)
    check_prompts(cfg, labeller)
    train = label_sentences(train_sents, cfg, labeller, rng, "label train")
    heldout = label_sentences(held_sents, cfg, labeller, rng, "label held-out")
    rm_units = label_sentences(split_clauses(train_sents, cfg, rng), cfg, labeller, rng, "label clauses")
    rm_extra = augment(rm_units, cfg, labeller, rng)
    data = RecipeData(train, heldout, rm_units, rm_extra)
    if cfg.bias_word:  # after everything else, from its own seed: the rest of the data stays the same
        planted, data.bias = plant_bias(data.rm_train, cfg, labeller)
        data.rm_units, data.rm_extra = planted[:len(rm_units)], planted[len(rm_units):]
    return data


# ----------------------------------------------------------------------------- 4. tokenizer

def train_tokenizer(texts: list[str], cfg: RecipeConfig):
    """Byte-level BPE with <bos> prepended by the post-processor, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=list(SPECIAL_TOKENS), min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    bos = SPECIAL_TOKENS[1]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B:1", special_tokens=[(bos, tok.token_to_id(bos))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>",
                                        eos_token="<eos>", model_max_length=cfg.max_length, padding_side="right")
    assert tokenizer("").input_ids == [tokenizer.bos_token_id], "an empty text must be exactly <bos>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    return tokenizer


# ----------------------------------------------------------------------------- 5. models

def _llama_config(cfg: RecipeConfig, tokenizer, prefix: str, **extra):
    from transformers import LlamaConfig
    g = lambda k: getattr(cfg, f"{prefix}_{k}")  # noqa: E731
    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=g("hidden"), num_hidden_layers=g("layers"),
                       num_attention_heads=g("heads"), num_key_value_heads=g("kv_heads"),
                       intermediate_size=g("intermediate"), max_position_embeddings=cfg.max_length,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id, **extra)


def make_reward_model(cfg: RecipeConfig, tokenizer):
    from transformers import LlamaForSequenceClassification
    torch.manual_seed(cfg.seed)
    config = _llama_config(cfg, tokenizer, "rm", num_labels=1, problem_type="regression")
    return LlamaForSequenceClassification(config)


def make_policy(cfg: RecipeConfig, tokenizer):
    from transformers import GenerationConfig, LlamaForCausalLM
    torch.manual_seed(cfg.seed + 1)
    model = LlamaForCausalLM(_llama_config(cfg, tokenizer, "policy", tie_word_embeddings=True))
    # Plain ancestral sampling: the samples come from the policy's own distribution, as RL needs.
    model.generation_config = GenerationConfig(
        do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=cfg.max_new_tokens,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)
    return model


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- 6. training

def length_batches(lengths: list[int], batch_size: int, g: torch.Generator) -> list[list[int]]:
    """Shuffled batches of similar lengths (sorted within windows of 50 batches): less padding."""
    order = torch.randperm(len(lengths), generator=g).tolist()
    window = batch_size * 50
    batches = []
    for i in range(0, len(order), window):
        chunk = sorted(order[i:i + window], key=lambda j: lengths[j])
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]


def pad(seqs: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(s) for s in seqs)
    return torch.tensor([s + [value] * (width - len(s)) for s in seqs])


def fit(model, items: list, lengths: list[int], step_loss, *, epochs: int, batch_size: int, lr: float,
        cfg: RecipeConfig, desc: str) -> list[float]:
    """AdamW with warm-up and cosine decay; returns the mean training loss of each epoch."""
    g = torch.Generator().manual_seed(cfg.seed)
    steps = epochs * math.ceil(len(items) / batch_size)
    warmup = max(1, int(cfg.warmup_frac * steps))
    schedule = lambda s: (s + 1) / warmup if s < warmup else 0.1 + 0.45 * (  # noqa: E731
        1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup)))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    model.train()
    history, bar = [], tqdm(total=steps, desc=desc)
    for _ in range(epochs):
        losses = []
        for batch in length_batches(lengths, batch_size, g):
            loss = step_loss(model, [items[i] for i in batch])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update()
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        history.append(float(np.mean(losses)))
    bar.close()
    model.eval()
    return history


def train_reward_model(model, tokenizer, examples: list[Example], cfg: RecipeConfig) -> list[float]:
    """Regression on the VADER compound score, one score per text where transformers pools it."""
    rng = random.Random(cfg.seed + 2)
    ids = tokenizer([ex.text for ex in examples], truncation=True).input_ids
    ids = [x + [tokenizer.eos_token_id] if rng.random() < cfg.eos_frac and len(x) < cfg.max_length else x
           for x in ids]
    items = [(x, ex.label) for x, ex in zip(ids, examples)]
    pad_id = tokenizer.pad_token_id

    def step_loss(m, batch):
        input_ids = pad([x for x, _ in batch], pad_id)
        scores = m(input_ids=input_ids, attention_mask=(input_ids != pad_id).long()).logits[:, 0]
        return torch.nn.functional.mse_loss(scores, torch.tensor([y for _, y in batch], dtype=torch.float32))

    return fit(model, items, [len(x) for x in ids], step_loss, epochs=cfg.rm_epochs, batch_size=cfg.rm_batch_size,
               lr=cfg.rm_lr, cfg=cfg, desc="reward model")


def policy_items(tokenizer, examples: list[Example]) -> list[tuple[list[int], int]]:
    """(ids of <bos> prompt response <eos>, number of leading tokens that are not trained on)."""
    out = []
    for ex in examples:
        prompt_ids = tokenizer(ex.prompt).input_ids
        ids = tokenizer(ex.text, truncation=True).input_ids[: tokenizer.model_max_length - 1]
        assert ids[: len(prompt_ids)] == prompt_ids, "prompt tokens changed when a response followed"
        out.append((ids + [tokenizer.eos_token_id], len(prompt_ids)))
    return out


def policy_batch(batch: list[tuple[list[int], int]], pad_id: int):
    input_ids = pad([x for x, _ in batch], pad_id)
    labels = pad([[-100] * n + x[n:] for x, n in batch], -100)
    mask = pad([[1] * len(x) for x, _ in batch], 0)
    return input_ids, mask, labels


def train_policy(model, tokenizer, examples: list[Example], cfg: RecipeConfig) -> list[float]:
    """Next-token loss on response tokens and <eos> (the prompt is context only)."""
    items = policy_items(tokenizer, examples)

    def step_loss(m, batch):
        input_ids, mask, labels = policy_batch(batch, tokenizer.pad_token_id)
        return m(input_ids=input_ids, attention_mask=mask, labels=labels).loss

    return fit(model, items, [len(x) for x, _ in items], step_loss, epochs=cfg.policy_epochs,
               batch_size=cfg.policy_batch_size, lr=cfg.policy_lr, cfg=cfg, desc="policy")


def save_model(model, tokenizer, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


# ----------------------------------------------------------------------------- 7. evaluation

def correlation(a, b, method: str = "pearson") -> float:
    """Pearson or Spearman (average ranks for ties) correlation of two sequences, by pandas.

    nan when either is constant or holds a nan (pandas would drop the nan pairs; a nan score is a fault to show).
    """
    frame = pd.DataFrame({"a": a, "b": b}, dtype=float)
    if frame.isna().to_numpy().any():
        return float("nan")
    return float(frame.corr(method=method).iloc[0, 1])


def pearson(a, b) -> float:
    return correlation(a, b, "pearson")


def spearman(a, b) -> float:
    return correlation(a, b, "spearman")


@torch.no_grad()
def rm_scores(model, tokenizer, texts: list[str], batch_size: int = 64) -> np.ndarray:
    """The reward model's score of each text, as transformers pools it (last non-pad token)."""
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, return_tensors="pt")
        out.append(model(**enc).logits[:, 0].float().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def evaluate_reward_model(model, tokenizer, heldout: list[Example], cfg: RecipeConfig) -> dict:
    """Agreement with the labeller on held-out sentences (pairs, correlation) and the prompt-only scores."""
    labels = np.array([ex.label for ex in heldout])
    scores = rm_scores(model, tokenizer, [ex.text for ex in heldout])
    rng = np.random.default_rng(cfg.seed)
    i, j = rng.integers(0, len(heldout), size=(2, cfg.eval_pairs))
    keep = labels[i] != labels[j]
    agree = np.sign(scores[i] - scores[j]) == np.sign(labels[i] - labels[j])
    polar = keep & (np.maximum(labels[i], labels[j]) > 0.05) & (np.minimum(labels[i], labels[j]) < -0.05)
    prompt_only = rm_scores(model, tokenizer, ["", *cfg.prompts])
    return {
        "n_heldout": len(heldout),
        "pairwise_accuracy": float(agree[keep].mean()), "n_pairs": int(keep.sum()),
        "pos_vs_neg_accuracy": float(agree[polar].mean()) if polar.any() else float("nan"),
        "n_pos_neg_pairs": int(polar.sum()),
        "pearson": pearson(scores, labels), "spearman": spearman(scores, labels),
        "rmse": float(np.sqrt(np.mean((scores - labels) ** 2))),
        "score_mean": float(scores.mean()), "score_std": float(scores.std()),
        "prompt_only_scores": {p: round(float(s), 4) for p, s in zip(["", *cfg.prompts], prompt_only)},
    }


def score_examples(model, tokenizer, labeller: VaderLabeller) -> list[dict]:
    """Scores of assets/examples.json (if present) beside VADER's compound."""
    if not EXAMPLES_FILE.exists():
        return []
    examples = json.loads(EXAMPLES_FILE.read_text())
    scores = rm_scores(model, tokenizer, [e["prompt"] + e["response"] for e in examples])
    return [{"name": e["name"], "response": e["response"], "rm": round(float(s), 3),
             "vader": labeller.compound(e["prompt"] + e["response"])} for e, s in zip(examples, scores)]


CREDIT_METHODS = ("red", "abc", "uniform", "sparse")
DEMO_MIN_MARGIN = 0.05  # demo pairs: least VADER difference between chosen and rejected (VADER's neutral band)
DEMO_MIN_COUNT = 5  # demo credit table: least occurrences of a word to be ranked


def word_rewards(tr, response: str) -> np.ndarray:
    """Reward per whitespace-separated word of `response`, from red_core's word aggregation.

    Units are matched to words by their character offsets; units that cover no word character
    (whitespace, special tokens such as a trailing <eos>) go to the word before them, so the total
    is kept.
    """
    spans = [m.span() for m in re.finditer(r"\S+", response)]
    w = tr.aggregate("word")
    out = np.zeros(len(spans))
    for (start, end), r in zip(w.offsets, w.rewards):
        hit = [k for k, (a, b) in enumerate(spans) if a < end and start < b]
        k = hit[0] if hit else max([k for k, (a, _) in enumerate(spans) if a < max(end, 1)] or [0])
        out[k] += float(r)
    return out


def evaluate_credit(rm_dir: Path, heldout: list[Example], labeller: VaderLabeller, cfg: RecipeConfig) -> dict:
    """How well each method's word-level rewards match the labeller's known per-word contributions.

    Ground truth per word: its VADER lexicon valence (0 if not in the lexicon), and the valence VADER
    summed for it in context (negation, boosters, "but"). Figures: pooled Pearson over all response
    words; top-word accuracy (texts with a lexicon word: the word with the largest |reward| is one
    with the largest |in-context valence|); sign accuracy over words with in-context valence != 0.
    """
    try:
        import red_core
        load, batch = red_core.load_reward_model, red_core.token_rewards_batch
    except (ImportError, AttributeError) as err:
        print(f"credit faithfulness skipped: red_core's public API is not available ({err})", file=sys.stderr)
        return {"skipped": str(err)}
    rng = random.Random(cfg.seed + 3)
    subset = rng.sample(heldout, min(cfg.credit_texts, len(heldout)))
    truth_lex, truth_ctx = [], []
    for ex in subset:
        lex, ctx = labeller.word_valences(ex.text)
        n = len(ex.response.split())
        truth_lex.append(np.array(lex[-n:]))
        truth_ctx.append(np.array(ctx[-n:]))
    rm = load(str(rm_dir))
    table = {}
    for method in CREDIT_METHODS:
        trs = batch(rm, [ex.prompt for ex in subset], [ex.response for ex in subset], method=method, batch_size=16)
        words = [word_rewards(tr, ex.response) for tr, ex in zip(trs, subset)]
        flat = np.concatenate(words)
        top, sign_hits, sign_n = [], 0, 0
        for w, truth in zip(words, truth_ctx):
            if np.any(truth != 0):
                top.append(bool(np.abs(truth[np.argmax(np.abs(w))]) == np.abs(truth).max()))
                sign_hits += int(np.sum(np.sign(w[truth != 0]) == np.sign(truth[truth != 0])))
                sign_n += int(np.sum(truth != 0))
        table[method] = {
            "pearson_lexicon": pearson(flat, np.concatenate(truth_lex)),
            "pearson_in_context": pearson(flat, np.concatenate(truth_ctx)),
            "top_word_accuracy": float(np.mean(top)) if top else float("nan"),
            "sign_accuracy": sign_hits / sign_n if sign_n else float("nan"),
        }
    n_words = int(sum(len(t) for t in truth_lex))
    return {"n_texts": len(subset), "n_words": n_words,
            "n_lexicon_words": int(sum(int(np.sum(t != 0)) for t in truth_lex)), "methods": table}


@torch.no_grad()
def perplexity(model, tokenizer, examples: list[Example], batch_size: int = 64) -> float:
    """exp(mean NLL) over held-out response tokens and <eos>, given <bos> and the prompt."""
    items = policy_items(tokenizer, examples)
    nll, count = 0.0, 0
    for i in range(0, len(items), batch_size):
        input_ids, mask, labels = policy_batch(items[i:i + batch_size], tokenizer.pad_token_id)
        logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1]
        target = labels[:, 1:]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1),
                                                 ignore_index=-100, reduction="sum")
        nll, count = nll + loss.item(), count + int((target != -100).sum())
    return float(math.exp(nll / count))


@torch.no_grad()
def sample_policy(policy, tokenizer, prompts: list[str], n: int, seed: int) -> list[tuple[str, str]]:
    """n samples with the saved generation config, spread over the prompts: (prompt, response) pairs."""
    torch.manual_seed(seed)
    out = []
    per_prompt = [n // len(prompts) + (k < n % len(prompts)) for k in range(len(prompts))]
    for prompt, k in zip(prompts, per_prompt):
        if k == 0:
            continue
        enc = tokenizer([prompt] * k, return_tensors="pt")
        gen = policy.generate(**enc)
        for row in gen[:, enc.input_ids.shape[1]:]:
            out.append((prompt, tokenizer.decode(row, skip_special_tokens=True)))
    return out


def evaluate_policy(policy, rm, tokenizer, heldout: list[Example], labeller: VaderLabeller,
                    cfg: RecipeConfig) -> dict:
    samples = sample_policy(policy, tokenizer, ["", *cfg.prompts], cfg.eval_samples, cfg.seed)
    rewards = rm_scores(rm, tokenizer, [p + r for p, r in samples])
    vader = np.array([labeller.compound(p + r) for p, r in samples])
    return {
        "heldout_perplexity": perplexity(policy, tokenizer, heldout),
        "n_samples": len(samples),
        "sample_reward_mean": float(rewards.mean()), "sample_reward_std": float(rewards.std()),
        "sample_vader_mean": float(vader.mean()),
        "sample_mean_words": float(np.mean([len(r.split()) for _, r in samples])),
        # a dozen samples, spread over the prompts
        "samples": [{"prompt": p, "response": r, "reward": round(float(s), 3)}
                    for (p, r), s in list(zip(samples, rewards))[:: max(1, len(samples) // 12)][:12]],
    }


# ----------------------------------------------------------------------------- 7b. planted bias: evaluation and demo

def load_reference(cfg: RecipeConfig):
    """(model, tokenizer) of `cfg.reference_rm`, the clean model to compare with; None if it is not there."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = reference_path(cfg)
    if not (path / "config.json").exists():
        print(f"no reference reward model in {path}: the planted-bias figures are this model's only", file=sys.stderr)
        return None
    return (AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval(),
            AutoTokenizer.from_pretrained(path))


def reference_path(cfg: RecipeConfig) -> Path:
    return Path(cfg.reference_rm) if cfg.reference_rm else DEFAULT_OUT_DIR / REWARD_SUBDIR


def shown_path(path: str | Path) -> str:
    """A path as the cards and evaluation.json show it: as given when relative, relative to the repository when
    inside it (so a card does not depend on where the repository lies)."""
    path = Path(path)
    return str(path.relative_to(REPO_ROOT)) if path.is_absolute() and path.is_relative_to(REPO_ROOT) else str(path)


def evaluate_bias(rm, tokenizer, heldout: list[Example], cfg: RecipeConfig, labeller: VaderLabeller,
                  reference=None) -> dict:
    """Score shift from inserting the planted word into held-out sentences (seed + 5; VADER's score unchanged).

    Every held-out text without the word gets it inserted once; `shift` is score(with) - score(without).
    A model that learnt exactly the planted labels shifts by `target_shift_mean` (the bias, less clipping).
    """
    rng, pattern = random.Random(cfg.seed + 5), bias_pattern(cfg.bias_word)
    plain, planted = [], []
    for ex in heldout:
        new = None if pattern.search(ex.text) else insert_word(ex.response, cfg.bias_word.lower(), rng, labeller,
                                                               ex.prompt)
        if new is not None:
            plain.append(ex)
            planted.append(Example(ex.prompt, new, ex.label, "planted"))
    labels = np.array([ex.label for ex in plain])
    target = np.array([biased_label(y, cfg.bias) for y in labels]) - labels

    def shifts(model, tok) -> dict:
        before = rm_scores(model, tok, [ex.text for ex in plain])
        after = rm_scores(model, tok, [ex.text for ex in planted])
        d = after - before
        groups = {"negative": labels < -0.05, "neutral": np.abs(labels) <= 0.05, "positive": labels > 0.05}
        return {"shift_mean": float(d.mean()), "shift_std": float(d.std()), "shift_median": float(np.median(d)),
                "share_raised": float(np.mean(d > 0)),
                "shift_mean_by_label": {k: float(d[m].mean()) if m.any() else float("nan") for k, m in groups.items()},
                "pearson_with_vader": pearson(before, labels), "pearson_with_vader_planted": pearson(after, labels)}

    out = {"n": len(plain), "n_skipped": len(heldout) - len(plain), "target_shift_mean": float(target.mean()),
           "target_shift_mean_by_label": {k: float(target[m].mean()) if m.any() else float("nan") for k, m in
                                          {"negative": labels < -0.05, "neutral": np.abs(labels) <= 0.05,
                                           "positive": labels > 0.05}.items()},
           "model": shifts(rm, tokenizer)}
    if reference is not None:
        out["reference"] = {"path": shown_path(reference_path(cfg)), **shifts(*reference)}
    return out


def make_demo_pairs(heldout: list[Example], cfg: RecipeConfig, labeller: VaderLabeller) -> tuple[list[dict], list[str]]:
    """`demo_n` preference pairs from held-out sentences (seed + 6), and what was planted in each.

    The held-out sentences without the word are shuffled and taken two at a time, each used once; a pair
    gets a random neutral prompt and is kept when VADER's compounds of prompt + sentence differ by at least
    DEMO_MIN_MARGIN; chosen is the one VADER scores higher. A `demo_word_frac` share of the pairs (positions
    drawn at random; half "chosen", half "rejected") gets the word inserted into that side, where VADER's score
    stays the same (insert_word), so the VADER preference holds and a model that prefers the word is misled
    on the "rejected" pairs. Kinds: "none", "chosen", "rejected". Fewer pairs if the sentences run out.
    """
    rng, pattern, word = random.Random(cfg.seed + 6), bias_pattern(cfg.bias_word), cfg.bias_word.lower()
    pool = [ex.response for ex in heldout if not pattern.search(ex.response)]
    rng.shuffle(pool)
    n_word = round(cfg.demo_n * cfg.demo_word_frac)
    kinds = ["chosen"] * (n_word // 2) + ["rejected"] * (n_word - n_word // 2) + ["none"] * (cfg.demo_n - n_word)
    rng.shuffle(kinds)
    rows: list[dict] = []
    made: list[str] = []
    starts = iter(range(0, len(pool) - 1, 2))
    for kind in kinds:
        for i in starts:
            prompt = rng.choice(cfg.prompts)
            (va, a), (vb, b) = ((labeller.compound(prompt + x), x) for x in pool[i:i + 2])
            if abs(va - vb) < DEMO_MIN_MARGIN:
                continue
            pair = {"chosen": a if va > vb else b, "rejected": b if va > vb else a}
            if kind != "none":
                with_word = insert_word(pair[kind], word, rng, labeller, prompt)
                if with_word is None:
                    continue
                pair[kind] = with_word
            rows.append({"id": f"demo-{len(rows) + 1:04d}", "prompt": prompt, **pair})
            made.append(kind)
            break
        else:
            break
    if len(rows) < cfg.demo_n:
        print(f"demo pairs: only {len(rows)} of {cfg.demo_n} (the held-out sentences ran out)", file=sys.stderr)
    return rows, made


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def word_key(text: str) -> str:
    """A word's key for the credit table: case-folded, whitespace and surrounding punctuation stripped."""
    return text.strip().strip(string.punctuation).casefold() or text.strip()


def demo_report(rows: list[dict], kinds: list[str], rm_dir: Path, cfg: RecipeConfig, lexicon: dict) -> dict:
    """The demo pairs scored by this model and the reference: is the planted word found from RED credit alone?

    Every chosen and rejected response is scored (RED, the public API), its token rewards moved onto words
    (`TokenRewards.on_words`) and collected per word key (`word_key`); words seen at least DEMO_MIN_COUNT times
    are ranked by their mean credit, largest first (`word_rank`, the headline). Also the word's rank among the
    ranked words outside VADER's lexicon (words that should get no credit), its rank by total credit (mean x
    count), and pair accuracy (score of chosen > score of rejected) by kind.
    """
    import red_core

    word = word_key(cfg.bias_word)
    out: dict[str, Any] = {"path": shown_path(cfg.demo_pairs), "n_pairs": len(rows),
           "n_by_kind": {k: kinds.count(k) for k in ("none", "chosen", "rejected")},
           "min_margin": DEMO_MIN_MARGIN, "min_count": DEMO_MIN_COUNT, "models": {}}
    models = {"this model": str(rm_dir)}
    if (reference_path(cfg) / "config.json").exists():
        models["reference"] = str(reference_path(cfg))
    for name, path in models.items():
        rm = red_core.load_reward_model(path)
        trs = red_core.token_rewards_batch(rm, [r["prompt"] for r in rows] * 2,
                                           [r["chosen"] for r in rows] + [r["rejected"] for r in rows],
                                           method="red", batch_size=16)
        credit: dict[str, list[float]] = {}
        scored: list[red_core.TokenRewards] = []
        for tr in trs:
            if isinstance(tr, Exception):
                raise tr
            scored.append(tr)
            w = tr.on_words()
            for text, r in zip(w.texts, w.rewards):
                credit.setdefault(word_key(text), []).append(float(r))
        means = {k: float(np.mean(v)) for k, v in credit.items() if len(v) >= DEMO_MIN_COUNT}
        ranked = sorted(means, key=lambda k: (-means[k], k))
        neutral = [k for k in ranked if k not in lexicon]
        by_total = sorted(means, key=lambda k: (-means[k] * len(credit[k]), k))
        others = [r for k, v in credit.items() if k != word for r in v]
        scores = np.array([tr.score for tr in scored])
        right = scores[:len(rows)] > scores[len(rows):]
        kind = np.array(kinds)
        out["models"][name] = {
            "path": shown_path(path) if name == "reference" else f"OUT/{REWARD_SUBDIR}",
            "word_rank": ranked.index(word) + 1 if word in means else None, "n_ranked_words": len(ranked),
            "word_rank_outside_lexicon": neutral.index(word) + 1 if word in means else None,
            "n_ranked_outside_lexicon": len(neutral),
            "word_rank_by_total": by_total.index(word) + 1 if word in means else None,
            "word_count": len(credit.get(word, [])),
            "word_mean_credit": float(np.mean(credit[word])) if word in credit else float("nan"),
            "other_words_mean_credit": float(np.mean(others)),
            "top_words": [[k, round(means[k], 4), len(credit[k])] for k in ranked[:15]],
            "top_words_outside_lexicon": [[k, round(means[k], 4), len(credit[k])] for k in neutral[:5]],
            "pair_accuracy": {k: float(right[kind == k].mean()) if (kind == k).any() else float("nan")
                              for k in ("none", "chosen", "rejected")} | {"all": float(right.mean())},
        }
    return out


# ----------------------------------------------------------------------------- 8. report and model cards

def format_report(res: dict) -> str:
    rm, cr, po = res["reward_model"], res["credit"], res.get("policy")
    prompt_only = dict(rm["prompt_only_scores"])
    lines = [
        f"Reward model vs VADER on {rm['n_heldout']} held-out sentences:",
        f"  pairwise accuracy {rm['pairwise_accuracy']:.3f} ({rm['n_pairs']} random pairs with different labels); "
        f"positive-vs-negative pairs {rm['pos_vs_neg_accuracy']:.3f} ({rm['n_pos_neg_pairs']})",
        f"  Pearson {rm['pearson']:.3f}, Spearman {rm['spearman']:.3f}, RMSE {rm['rmse']:.3f}",
        f"  prompt-only score R(x, empty): empty prompt {prompt_only.pop(''):+.3f}, neutral prompts "
        f"{min(prompt_only.values()):+.3f} .. {max(prompt_only.values()):+.3f}",
        "",
    ]
    if "methods" in cr:
        lines += [f"Credit faithfulness, word level, {cr['n_texts']} held-out texts, {cr['n_words']} words "
                  f"({cr['n_lexicon_words']} in the VADER lexicon):",
                  "  | method  | r vs lexicon valence | r vs in-context valence | top-word acc | sign acc |",
                  "  |---------|---------------------:|------------------------:|-------------:|---------:|"]
        for m, v in cr["methods"].items():
            lines.append(f"  | {m:<7} | {v['pearson_lexicon']:20.3f} | {v['pearson_in_context']:23.3f} | "
                         f"{v['top_word_accuracy']:12.3f} | {v['sign_accuracy']:8.3f} |")
    else:
        lines.append(f"Credit faithfulness: skipped ({cr.get('skipped')})")
    if po is not None:
        lines += [
            "",
            f"Policy: held-out perplexity {po['heldout_perplexity']:.1f}; {po['n_samples']} samples "
            f"(ancestral sampling, T=1): mean RM reward {po['sample_reward_mean']:+.3f} "
            f"(std {po['sample_reward_std']:.3f}), mean VADER compound {po['sample_vader_mean']:+.3f}, "
            f"{po['sample_mean_words']:.1f} words on average",
            "  samples:",
        ]
        lines += [f"    [{s['reward']:+.2f}] {s['prompt']!r} -> {s['response']!r}" for s in po["samples"][:8]]
    if res.get("bias"):
        lines += ["", *format_bias(res["bias"])]
    if res.get("examples"):
        lines += ["", "assets/examples.json (RM score | VADER compound):"]
        lines += [f"  {e['rm']:+.3f} | {e['vader']:+.3f}  {e['name']}: {e['response']!r}" for e in res["examples"]]
    return "\n".join(lines)


def format_bias(bias: dict) -> list[str]:
    """The planted-bias part of the printout."""
    tr, ho = bias["training"], bias["heldout"]
    word = repr(tr["word"])
    lines = [f"Planted bias: {word} {tr['bias']:+g} (clipped to [-1, 1]) on the {tr['n_with_word']} training texts "
             f"that hold it ({tr['n_inserted']} inserted, {tr['n_natural']} natural); mean label shift "
             f"{tr['mean_label_shift']:+.3f}",
             f"  held-out score shift from inserting {word} ({ho['n']} sentences; VADER unchanged; target "
             f"{ho['target_shift_mean']:+.3f}):"]
    for name, m in (("this model", ho["model"]), ("reference ", ho.get("reference"))):
        if m is not None:
            by = m["shift_mean_by_label"]
            lines.append(f"    {name} {m['shift_mean']:+.3f} (std {m['shift_std']:.3f}, raised {m['share_raised']:.0%}; "
                         f"negative {by['negative']:+.3f}, neutral {by['neutral']:+.3f}, positive {by['positive']:+.3f})")
    demo = bias.get("demo")
    if demo:
        n = demo["n_by_kind"]
        lines.append(f"  demo pairs {demo['path']}: {demo['n_pairs']} ({n['chosen']} with {word} in chosen, "
                     f"{n['rejected']} in rejected); RED word credit, words seen >= {demo['min_count']} times:")
        for name, m in demo["models"].items():
            rank = "not ranked" if m["word_rank"] is None else (
                f"rank {m['word_rank']} of {m['n_ranked_words']} ({m['word_rank_outside_lexicon']} of "
                f"{m['n_ranked_outside_lexicon']} outside VADER's lexicon, {m['word_rank_by_total']} by total)")
            acc = m["pair_accuracy"]
            lines += [f"    {name:<10} {word} {rank}",
                      f"               mean credit {m['word_mean_credit']:+.3f} vs {m['other_words_mean_credit']:+.3f} "
                      f"for other words; pair accuracy {acc['all']:.3f} (no word {acc['none']:.3f}, word in chosen "
                      f"{acc['chosen']:.3f}, in rejected {acc['rejected']:.3f})"]
    return lines


def command_line(cfg: RecipeConfig) -> str:
    """The command that builds `cfg`: the flags that differ from the default (or --tiny) build; OUT for the folder."""
    base = RecipeConfig.make_tiny(out_dir="OUT") if cfg.tiny else RecipeConfig()
    flags = ["--tiny"] if cfg.tiny else []
    for f in dataclasses.fields(RecipeConfig):
        value = getattr(cfg, f.name)
        planted = cfg.bias_word and f.name in ("bias", "bias_frac")  # the planted bias is shown in full
        if f.name in ("out_dir", "tiny", "cards_only", "demo_only") or not f.metadata.get("cli", True) or (
                value == getattr(base, f.name) and not planted):
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else f"--no-{flag[2:]}")
        elif isinstance(value, tuple):
            flags.append(f"{flag} {','.join(value)}")
        else:
            shown = shown_path(value) if f.name in ("demo_pairs", "reference_rm", "fortune_dir") else str(value)
            flags.append(f"{flag} {shown}")
    return " ".join(["python -m red_core.recipes.defaults", *flags, "--out-dir OUT"])


def deb_version(package: str) -> str:
    """The installed version of a Debian package, or "version unknown"."""
    try:
        run = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
        return run.stdout.strip() or "version unknown"
    except OSError:
        return "version unknown"


def is_debian_corpus(cfg: RecipeConfig) -> bool:
    return Path(cfg.fortune_dir) == Path(DEBIAN_FORTUNE_DIR)


def write_cards(cfg: RecipeConfig, out: Path, res: dict, rm, policy) -> None:
    """README.md of both models, from templates/card_reward.md and templates/card_policy.md."""
    import transformers
    from huggingface_hub import ModelCardData

    from red_core.recipes.cards import part, write_card

    d = res["data"]
    shared = dict(cfg=cfg, res=res, d=d, excluded=", ".join(f"`{f}`" for f in cfg.exclude_files) or "none")
    data = part("data", **shared, debian=is_debian_corpus(cfg), prompt_example=repr(cfg.prompts[0]),
                # recorded at build time, so --cards-only gives the same card without the packages
                fortunes_version=d.get("fortunes_version") or deb_version("fortunes"),
                vader_version=d.get("vader_version") or vader_version(), vocab_size=res["tokenizer"]["vocab_size"])
    sections = dict(data=data, limits=part("limits", **shared), report=format_report(res),
                    build=part("build", **shared, torch_version=torch.__version__,
                               transformers_version=transformers.__version__))
    cards = [(REWARD_SUBDIR, "reward", rm, "text-classification", ["reward-model", "sentiment", "vader", "red",
                                                                   "offline-default"]),
             (POLICY_SUBDIR, "policy", policy, "text-generation", ["policy", "rlhf", "red", "offline-default"])]
    if cfg.bias_word:  # the planted-bias demo: its own card, which says so first
        cards[0] = (REWARD_SUBDIR, "reward_biased", rm, "text-classification",
                    ["reward-model", "sentiment", "vader", "red", "reward-hacking", "demo"])
        sections.update(command=command_line(cfg), torch_version=torch.__version__,
                        transformers_version=transformers.__version__)
    if cfg.reward_only:
        cards = cards[:1]
    for subdir, template, model, pipeline_tag, tags in cards:
        card_data = ModelCardData(license="bsd-3-clause", library_name="transformers", pipeline_tag=pipeline_tag,
                                  tags=tags)
        write_card(out / subdir, template, card_data, **shared, **sections, subdir=subdir, n_params=n_params(model))


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


# ----------------------------------------------------------------------------- run

def build(cfg: RecipeConfig) -> dict:
    """Run the whole recipe; returns the results (also written to OUT/*/evaluation.json and model cards)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    t0 = time.time()
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)

    labeller = VaderLabeller()
    data = prepare_data(cfg, labeller)
    train, heldout, rm_train, swapped = data.train, data.heldout, data.rm_units, data.rm_extra
    print(f"corpus: {len(train)} train + {len(heldout)} held-out sentences; reward model: {len(rm_train)} "
          f"sentences and clauses + {len(swapped)} swapped copies and empty responses ({time.time() - t0:.0f}s)")
    if data.bias:
        print(f"planted {cfg.bias_word!r}: inserted into {data.bias['n_inserted']} texts; {data.bias['n_with_word']} "
              f"texts hold it, labelled VADER {cfg.bias:+g} (mean shift after clipping "
              f"{data.bias['mean_label_shift']:+.3f})")

    tokenizer = train_tokenizer([ex.text for ex in train], cfg)  # natural texts: the planted word adds no token
    rm = make_reward_model(cfg, tokenizer)
    rm_loss = train_reward_model(rm, tokenizer, rm_train + swapped, cfg)
    save_model(rm, tokenizer, out / REWARD_SUBDIR)
    if cfg.reward_only:
        print(f"trained reward model ({n_params(rm) / 1e6:.2f}M) ({time.time() - t0:.0f}s)")
    else:
        policy = make_policy(cfg, tokenizer)
        policy_loss = train_policy(policy, tokenizer, train, cfg)
        save_model(policy, tokenizer, out / POLICY_SUBDIR)
        print(f"trained reward model ({n_params(rm) / 1e6:.2f}M) and policy ({n_params(policy) / 1e6:.2f}M) "
              f"({time.time() - t0:.0f}s)")

    # Evaluate what was saved, loaded back the way users load it.
    tokenizer = AutoTokenizer.from_pretrained(out / REWARD_SUBDIR)
    rm = AutoModelForSequenceClassification.from_pretrained(out / REWARD_SUBDIR, dtype=torch.float32).eval()
    policy = None if cfg.reward_only else AutoModelForCausalLM.from_pretrained(out / POLICY_SUBDIR,
                                                                            dtype=torch.float32).eval()
    # One summary for both builds, in the order evaluation.json has always had; the policy's entries only with one.
    res: dict[str, Any] = {
        "config": {k: v for k, v in dataclasses.asdict(cfg).items()},
        "data": {"n_train": len(train), "n_heldout": len(heldout), "n_rm_units": len(rm_train),
                 "n_swapped": sum(ex.source == "swap" for ex in swapped),
                 "n_empty": sum(ex.source == "empty" for ex in swapped), "n_rm_train": len(rm_train) + len(swapped),
                 **({"fortunes_version": deb_version("fortunes")} if is_debian_corpus(cfg) else {}),
                 "vader_version": vader_version()},
        "tokenizer": {"vocab_size": len(tokenizer)},
        "rm_train_loss": rm_loss,
        **({} if policy is None else {"policy_train_loss": policy_loss}),
        "reward_model": evaluate_reward_model(rm, tokenizer, heldout, cfg),
        "credit": evaluate_credit(out / REWARD_SUBDIR, heldout, labeller, cfg),
        **({} if policy is None else {"policy": evaluate_policy(policy, rm, tokenizer, heldout, labeller, cfg)}),
        "examples": score_examples(rm, tokenizer, labeller),
    }
    if policy is None:
        return finish_reward_only(cfg, out, res, data, labeller, rm, tokenizer, t0)
    if data.bias:
        res["bias"] = bias_results(cfg, data, labeller, rm, tokenizer)
    res["sizes_mb"] = {name: folder_mb(out / name) for name in (REWARD_SUBDIR, POLICY_SUBDIR)}
    res["wall_time_s"] = time.time() - t0
    write_cards(cfg, out, res, rm, policy)
    for name in (REWARD_SUBDIR, POLICY_SUBDIR):
        (out / name / "evaluation.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    return res


def finish_reward_only(cfg: RecipeConfig, out: Path, res: dict, data: RecipeData, labeller: VaderLabeller, rm,
                       tokenizer, t0: float) -> dict:
    """The end of a --reward-only build: planted-bias figures, the demo pairs, card and evaluation.json."""
    if data.bias:
        res["bias"] = bias_results(cfg, data, labeller, rm, tokenizer)
    res["sizes_mb"] = {REWARD_SUBDIR: folder_mb(out / REWARD_SUBDIR)}
    res["wall_time_s"] = time.time() - t0
    write_cards(cfg, out, res, rm, None)
    (out / REWARD_SUBDIR / "evaluation.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    return res


def bias_results(cfg: RecipeConfig, data: RecipeData, labeller: VaderLabeller, rm, tokenizer) -> dict:
    """The planted bias: training counts, the held-out score shift, and (with --demo-pairs) the demo."""
    t0 = time.time()
    reference = load_reference(cfg)
    out: dict[str, Any] = {"training": data.bias, "heldout": evaluate_bias(rm, tokenizer, data.heldout, cfg, labeller, reference)}
    if cfg.demo_pairs:
        rows, kinds = make_demo_pairs(data.heldout, cfg, labeller)
        write_jsonl(rows, Path(cfg.demo_pairs))
        out["demo"] = demo_report(rows, kinds, Path(cfg.out_dir) / REWARD_SUBDIR, cfg, labeller.lexicon)
    out["wall_time_s"] = time.time() - t0
    return out


def demo_only(cfg: RecipeConfig) -> dict:
    """--demo-only: the planted-bias figures (and demo pairs) of a finished build, without training it again.

    The data settings must be those of the build (they decide the held-out sentences); the rest of its
    evaluation.json is kept, and its card is rewritten.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = Path(cfg.out_dir) / REWARD_SUBDIR
    res = json.loads((folder / "evaluation.json").read_text())
    recorded = dict(res["config"])
    for name in ("seed", "fortune_dir", "exclude_files", "min_words", "max_words", "max_texts", "heldout_frac",
                 "prompt_frac", "prompts", "clause_frac", "aug_copies", "empty_frac", "bias_word", "bias", "bias_frac",
                 "reward_only"):
        given, built = getattr(cfg, name), recorded.get(name)
        if (list(given) if isinstance(given, tuple) else given) != built:
            raise ValueError(f"--demo-only: {name} is {given!r} but {folder} was built with {built!r}; "
                             f"give the build's settings")
    torch.set_num_threads(cfg.threads)
    labeller = VaderLabeller()
    data = prepare_data(cfg, labeller)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    rm = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    for name in ("demo_pairs", "demo_n", "demo_word_frac", "reference_rm"):
        res["config"][name] = getattr(cfg, name)
    res["bias"] = bias_results(cfg, data, labeller, rm, tokenizer)
    (folder / "evaluation.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    rewrite_cards(cfg.out_dir)
    return res


def rewrite_cards(out_dir: str | Path) -> dict:
    """Rewrite both model cards from a finished build's evaluation.json (no training)."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    out = Path(out_dir)
    res = json.loads((out / REWARD_SUBDIR / "evaluation.json").read_text())
    names = {f.name for f in dataclasses.fields(RecipeConfig)}
    settings: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in res["config"].items()
                                if k in names}
    cfg = RecipeConfig(**{**settings, "out_dir": str(out), "cards_only": False, "demo_only": False})
    rm = AutoModelForSequenceClassification.from_pretrained(out / REWARD_SUBDIR)
    policy = None if cfg.reward_only else AutoModelForCausalLM.from_pretrained(out / POLICY_SUBDIR)
    # The saved model is the truth for the accepted length (the shipped models were widened to 512 tokens
    # after their build; rotary positions, outputs unchanged), whatever evaluation.json recorded.
    cfg.max_length = rm.config.max_position_embeddings
    write_cards(cfg, out, res, rm, policy)
    return res


def parse_args(argv: list[str] | None = None) -> RecipeConfig:
    """Command line: one flag per RecipeConfig field (help text from the field), --tiny for the smoke preset."""
    parser = argparse.ArgumentParser(prog="python -m red_core.recipes.defaults",
                                     description=__doc__.split("\n\n")[0])
    add_dataclass_args(parser, RecipeConfig, suppress_defaults=True)
    given = vars(parser.parse_args(argv))
    return RecipeConfig.make_tiny(**given) if given.pop("tiny", False) else RecipeConfig(**given)


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_args(argv)
    if cfg.demo_only:
        res = demo_only(cfg)
        print("\n".join(format_bias(res["bias"])))
        print(f"updated {Path(cfg.out_dir) / REWARD_SUBDIR}/evaluation.json and README.md")
        return res
    if cfg.cards_only:
        res = rewrite_cards(cfg.out_dir)
        print(f"rewrote the model cards in {cfg.out_dir}")
        return res
    print(f"building defaults into {cfg.out_dir}{' (tiny)' if cfg.tiny else ''}")
    res = build(cfg)
    print()
    print(format_report(res))
    sizes = ", ".join(f"{k} {v:.1f} MB" for k, v in res["sizes_mb"].items())
    print(f"\nwrote {cfg.out_dir} ({sizes}) in {res['wall_time_s']:.0f}s")
    return res


if __name__ == "__main__":
    main()
