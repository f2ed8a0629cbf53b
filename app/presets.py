"""Presets: one Explore view as plain values, read from a shared link or taken from a lesson.

    parse_query(params, hosting)  a link's query parameters, each one checked; bad ones listed, never applied
    preset_values(preset)         the values of the Explore inputs (FIELDS order), defaults for missing keys
    query_string(values, ...)     the "?prompt=...&..." part of a "Copy link to this view" link

A link can set nothing that typing the same values into the page could not: texts within the
named limits (app/limits.py), options from the same fixed lists, numbers within the sliders'
ranges, and a reward model from what this deployment offers. In public mode that is the bundled
models and app/allowlist.json (app/hosting.py); in local mode also any hub id, but never a
folder: a link someone sends you does not open folders on your disk.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlencode

import red_core
from app import limits

GRANULARITIES = ("token", "word", "sentence")
SCALES = {"text": "this text", "fixed": "fixed ±X", "session": "shared across this session"}
DEFAULTS = {"prompt": "", "response": "", "method": "red", "granularity": "token", "beta_c": 1.0, "beta": 0.5,
            "baseline": True, "special": True, "scale": "text", "scale_max": 1.0}
FIELDS = tuple(DEFAULTS)  # the order of the Explore inputs that preset_values fills
MAX_SCALE = 1e6  # largest "fixed ±X" a link may ask for
MAX_MODEL_NAME = 200  # characters in a model name from a link
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _text(key: str, value: str, cap: int, limit: str) -> str:
    if len(value) > cap:
        raise ValueError(f"the {key} is {len(value):,} characters; the limit is {cap:,} ({limit})")
    return value


def _number(key: str, value: str, lo: float, hi: float, lo_open: bool = False) -> float:
    try:
        x = float(value)
    except ValueError:
        raise ValueError(f"{key}={value[:20]!r} is not a number") from None
    if not math.isfinite(x) or x > hi or x < lo or (lo_open and x == lo):
        bounds = f"above {lo:g} and at most {hi:g}" if lo_open else f"between {lo:g} and {hi:g}"
        raise ValueError(f"{key} must be {bounds}, not {value[:20]}")
    return x


def _flag(key: str, value: str) -> bool:
    v = value.strip().lower()
    if v in TRUE or v in FALSE:
        return v in TRUE
    raise ValueError(f"{key}={value[:20]!r} should be 1 or 0 (true or false)")


def _choice(key: str, value: str, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{key}={value[:30]!r} is not one of: {', '.join(allowed)}")
    return value


def offered_models(hosting) -> list[str]:
    """Reward-model names this deployment lists in its picker (bundled first, then the allowlist)."""
    return [name for _, name in hosting.choices("reward")] if hosting is not None else []


def check_model(name: str, hosting=None) -> str:
    """A reward-model name from a link: a listed model, or (local mode only) a hub id; never a folder."""
    name = name.strip()
    if not name or len(name) > MAX_MODEL_NAME:
        raise ValueError(f"the model name is empty or longer than {MAX_MODEL_NAME} characters")
    if name in offered_models(hosting):
        return name
    if hosting is not None and hosting.public:
        raise ValueError(str(hosting.refusal("reward")))
    if not HUB_ID.match(name) or ".." in name:
        raise ValueError("a link may name a listed reward model or a hub id (owner/name), not a folder; "
                         "load a folder with the model picker instead")
    return name


def parse_query(params: Mapping, hosting=None) -> dict:
    """Validated values from a link's query parameters (unknown keys ignored).

    Returns {key: value} for the good values and "problems": [message, ...] for the bad ones, which are
    left out (so the view keeps its default there). `hosting` (app/hosting.py) decides which models
    are allowed; without it a model must look like a hub id.
    """
    out: dict = {"problems": []}
    checks = {
        "prompt": lambda v: _text("prompt", v, limits.MAX_PROMPT_CHARS, "MAX_PROMPT_CHARS"),
        "response": lambda v: _text("response", v, limits.MAX_RESPONSE_CHARS, "MAX_RESPONSE_CHARS"),
        "model": lambda v: check_model(v, hosting),
        "method": lambda v: _choice("method", v, red_core.list_methods()),
        "granularity": lambda v: _choice("granularity", v, GRANULARITIES),
        "beta_c": lambda v: _number("beta_c", v, 0.0, 1.0),
        "beta": lambda v: _number("beta", v, 0.0, 1.0),
        "baseline": lambda v: _flag("baseline", v),
        "special": lambda v: _flag("special", v),
        "scale": lambda v: _choice("scale", v, tuple(SCALES)),
        "scale_max": lambda v: _number("scale_max", v, 0.0, MAX_SCALE, lo_open=True),
    }
    for key, check in checks.items():
        if key not in params:
            continue
        value = params[key]
        if isinstance(value, (list, tuple)):  # a multi-valued parameter: the last one counts, as in a form
            value = value[-1] if value else ""
        try:
            out[key] = check(str(value))
        except ValueError as err:
            out["problems"].append(str(err))
    return out


def preset_values(preset: Mapping) -> tuple:
    """The Explore inputs (prompt, response, method, granularity, beta_c, beta, baseline, special, scale, scale_max)
    for a preset: a parsed link or a lesson's preset. Keys it lacks get the defaults, so a preset always gives
    the same view whatever was on the page before."""
    return tuple(preset.get(key, DEFAULTS[key]) for key in FIELDS)


def query_string(values: Mapping, model: str | None = None, default_model: str | None = None) -> str:
    """"?prompt=...&..." for the values that differ from the defaults (a short link), model only if not the default."""
    query = {}
    for key in FIELDS:
        v = values.get(key, DEFAULTS[key])
        if key in ("scale_max",) and values.get("scale", DEFAULTS["scale"]) != "fixed":
            continue
        if isinstance(DEFAULTS[key], bool):
            v = bool(v)
        elif isinstance(DEFAULTS[key], float):
            v = float(v)
        if v != DEFAULTS[key] or key == "response":
            query[key] = ("1" if v else "0") if isinstance(v, bool) else (f"{v:g}" if isinstance(v, float) else v)
    if model and model != default_model:
        query["model"] = model
    return "?" + urlencode(query)
