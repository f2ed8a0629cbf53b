"""Lessons: short guided views of the app, each a preset plus what to look at, checked on the bundled models.

    LESSONS            the lessons, in teaching order (a Lesson: key, title, notice, preset)
    validate(preset)   a preset uses only the known keys, each with a valid value (ValueError otherwise)
    pair_examples()    the curated chosen / rejected pairs of assets/pairs.json, each with its labelling criterion

A preset says which tab to open ("explore", "pair", "models", "policies") and what to put in it: the
keys of PRESET_KEYS. The app (app/ui.py) applies a preset and shows the notice beside it. Every claim a
notice makes about the bundled models (assets/models/reward, reward-biased, policy-base, policy-red) is
checked by tests/test_lessons.py, so a rebuilt model that no longer shows it fails a test instead of
teaching something false.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import red_core
from red_core.models import REPO_ROOT

PAIRS_FILE = REPO_ROOT / "assets" / "pairs.json"
REWARD = "assets/models/reward"
BIASED = "assets/models/reward-biased"
TABS = ("explore", "pair", "models", "policies")
GRANULARITIES = ("token", "word", "sentence")
SCALES = ("text", "fixed", "session")
TEXT_KEYS = ("prompt", "response", "chosen", "rejected", "model", "model_b")
PRESET_KEYS = ("tab", *TEXT_KEYS, "method", "beta_c", "beta", "granularity", "scale", "scale_max", "baseline",
               "special")


@dataclass
class Lesson:
    key: str  # short id, e.g. "negation" (for links and tests)
    title: str  # one line
    notice: str  # 2-4 sentences: what to look at, and why
    preset: dict = field(default_factory=dict)  # what the app sets (PRESET_KEYS); checked by validate()


def validate(preset: dict) -> dict:
    """The preset itself if every key is known and every value valid; else ValueError listing the problems."""
    if not isinstance(preset, dict):
        raise ValueError(f"a preset is a dict of settings, not {type(preset).__name__}")
    problems = [f"unknown key {k!r} (known: {', '.join(PRESET_KEYS)})" for k in preset if k not in PRESET_KEYS]
    checks = {
        "tab": lambda v: v in TABS,
        "method": lambda v: v in red_core.list_methods(),
        "granularity": lambda v: v in GRANULARITIES,
        "scale": lambda v: v in SCALES,
        "beta_c": lambda v: _number(v) and 0.0 <= v <= 1.0,
        "beta": lambda v: _number(v) and 0.0 <= v <= 1.0,
        "scale_max": lambda v: _number(v) and v > 0,
        "baseline": lambda v: isinstance(v, bool),
        "special": lambda v: isinstance(v, bool),
        **{k: (lambda v: isinstance(v, str)) for k in TEXT_KEYS},
    }
    problems += [f"{k}={v!r} is not valid" for k, v in preset.items() if k in checks and not checks[k](v)]
    if "tab" not in preset:
        problems.append("a preset names its tab (one of: " + ", ".join(TABS) + ")")
    if "scale_max" in preset and preset.get("scale") != "fixed":
        problems.append("scale_max applies only with scale='fixed'")
    if problems:
        raise ValueError("bad preset: " + "; ".join(problems))
    return preset


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pair_examples(path: str | Path = PAIRS_FILE) -> list[dict]:
    """The curated pairs: [{name, prompt, chosen, rejected, criterion, rule}], [] if the file is missing."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    keys = ("name", "prompt", "chosen", "rejected", "criterion", "rule")
    return [{k: str(d.get(k, "")) for k in keys} for d in data if isinstance(d, dict) and d.get("chosen")
            and d.get("rejected")]


def _pair(name: str) -> dict:
    return next((p for p in pair_examples() if p["name"] == name), {"prompt": "", "chosen": "", "rejected": ""})


ONE_WORD = _pair("one word apart")
EXPLORE = {"tab": "explore", "model": REWARD, "method": "red", "granularity": "word", "beta_c": 1.0,
           "baseline": True, "scale": "text"}

LESSONS = [
    Lesson("sentiment-word", "Credit lands on the sentiment word",
           "The reward model scores the whole text about +0.55, and RED splits that score over the words: "
           "nearly all of it goes to “wonderful” (blue), while the words around it get close to 0. Each word's "
           "reward is how far the score moved when that word was added, R(x, y≤t) − R(x, y≤t−1). Open “What if?” "
           "and replace “wonderful” with “terrible” to see the same place turn red.",
           {**EXPLORE, "prompt": "Tell me about your day.\n", "response": "It was a wonderful day."}),
    Lesson("negation", "Negation: “not good”",
           "“not” on its own earns almost nothing: a text that stops at “not” is not yet negative. The negative "
           "reward lands on “good.”, where the model's judgement turns: in this context adding “good” lowers the "
           "score. RED credits the word at which the score changes, not the word a person would blame; press "
           "“Leave one out” in “What if?” to see that deleting “not” would raise the score by about 0.8.",
           {**EXPLORE, "prompt": "What do you think?\n", "response": "The movie was not good."}),
    Lesson("but", "“but”: which clause counts?",
           "VADER, which labelled the training data, weighs the clause after “but” 1.5 times and rates this text "
           "clearly positive (+0.66). The reward model never learnt that rule: “bad,” and “great.” get rewards of "
           "opposite sign and similar size, “but” gets almost none, and R(x, y) ends near where it started. "
           "Token rewards show which of the labeller's rules a reward model learnt and which it missed.",
           {**EXPLORE, "prompt": "Tell me about dinner.\n", "response": "The food was bad, but the music was great."}),
    Lesson("baseline", "The prompt-only baseline, and why the sum telescopes",
           "RED starts from the score of the prompt alone, R(x, ∅): here about −0.6, because the prompt is "
           "negative. Each reward is a difference of neighbouring prefix scores, so the sum telescopes to "
           "R(x, y) − R(x, ∅) (see the check under the heatmap). Untick “Prompt baseline R(x, ∅)”: the first "
           "word, “It”, then carries the prompt's −0.6, a penalty for text the response did not write.",
           {**EXPLORE, "prompt": "I hate Mondays.\n", "response": "It was a wonderful day."}),
    Lesson("beta-c", "β_c: RED mixed with the sparse reward",
           "β_c mixes RED with the sparse reward of ordinary RLHF: each word keeps β_c times its RED reward, and "
           "the last word also gets (1 − β_c) · R(x, y), the whole score at the end. At β_c = 0.5, “wonderful” keeps "
           "half its credit and “day.” gets half the score, so the sum is β_c · (R(x, y) − R(x, ∅)) + "
           "(1 − β_c) · R(x, y). Slide β_c to 0 for the purely sparse reward: every word but the last gets 0.",
           {**EXPLORE, "prompt": "Tell me about your day.\n", "response": "It was a wonderful day.", "beta_c": 0.5}),
    Lesson("pair", "Chosen vs rejected: where the margin comes from",
           "A preference pair from assets/pairs.json, labelled by VADER (chosen = the response VADER rates more "
           "positive); the reward model agrees by a wide margin. The aligned table shows where it comes from: the "
           "row with “good” beside “bad” holds nearly all of R(chosen) − R(rejected), and the words before it get "
           "exactly the same rewards in both, because the model reads left to right.",
           {"tab": "pair", "model": REWARD, "granularity": "word", "prompt": ONE_WORD["prompt"],
            "chosen": ONE_WORD["chosen"], "rejected": ONE_WORD["rejected"]}),
    Lesson("two-models", "Two reward models that disagree",
           "Model B is the default model retrained with a planted +0.3 for the word “basically”, a stand-in for a "
           "bias a real reward model picks up from its data. B scores this text about 0.2 higher than A, and RED "
           "shows where: B gives “basically” about +0.25, A about 0, while both credit “fine.”. Credit maps can "
           "reveal such a preference before a policy learns to exploit it.",
           {"tab": "models", "model": REWARD, "model_b": BIASED, "prompt": "", "response": "The movie was basically fine."}),
    Lesson("reward-hacking", "A policy before and after RED training: reward hacking",
           "policy-red is policy-base after 60 steps of RED-PPO against the default reward model. Its samples score "
           "far higher (mean R(x, y) about +0.54 against −0.05) but lie about 7.7 nats of KL from where it "
           "started, and they shrink to a few positive words (“best best.”): it learnt what the reward model pays "
           "for, not better writing. Press Generate and compare; where the app ships a policy stopped at a KL "
           "budget (policy-red-kl), pick it as “after” to see healthier optimisation.",
           {"tab": "policies", "model": REWARD}),
]

__all__ = ["LESSONS", "Lesson", "PAIRS_FILE", "PRESET_KEYS", "pair_examples", "validate"]
