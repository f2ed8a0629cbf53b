"""AppContext: what every tab needs from the process (defaults, model caches, examples, limits).

One context is built per process (`AppContext.create`) and handed to `build_app` and to every
handler; tabs written elsewhere (app/policies_tab.py) receive it in `build(ctx)`. Nothing in it
belongs to one user: per-user data lives in `gr.State` (see `ctx.rm_state`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import red_core
from app import limits
from app.cache import ModelCache, hub_parameter_count
from red_core.models import DEFAULT_POLICY, DEFAULT_REWARD_MODEL, REPO_ROOT

EXAMPLES_FILE = REPO_ROOT / "assets" / "examples.json"
INPUT_FORMATS = ("auto", "concat", "pair")


class RMChoice(NamedTuple):
    """Which reward model a session uses: the cache key, kept in the session's gr.State."""

    name: str  # hub id or folder
    label_index: int | None = None  # output of a multi-output head that is the reward
    input_format: str = "auto"  # auto (chat template if any), concat, pair


def load_rm(choice: RMChoice):
    """The cache's loader: clear messages for missing folders, refuse oversized hub models, then load."""
    name = choice.name
    path = Path(os.path.expanduser(name))
    if path == DEFAULT_REWARD_MODEL and not (path / "config.json").exists():
        name = None  # red_core then says how to build the default
    elif (path.is_absolute() or name.startswith((".", "~"))) and not path.exists():
        raise red_core.RewardModelError(f"there is no folder {name!r} on this machine. Check the path, or type a hub "
                                        f"id such as Skywork/Skywork-Reward-V2-Qwen3-0.6B.")
    n = hub_parameter_count(choice.name)
    if n is not None and n > limits.MAX_MODEL_PARAMS:
        raise red_core.RewardModelError(
            f"{choice.name!r} has {n / 1e9:.1f} B parameters; this app loads at most "
            f"{limits.MAX_MODEL_PARAMS / 1e9:.1f} B (MAX_MODEL_PARAMS). Pick a smaller reward model, "
            f"e.g. Skywork/Skywork-Reward-V2-Qwen3-0.6B.")
    return red_core.load_reward_model(name, label_index=choice.label_index, input_format=choice.input_format)


def load_examples(path: Path = EXAMPLES_FILE) -> list[dict]:
    """assets/examples.json as a list of {name, prompt, response}; [] if missing or malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return [{"name": str(d.get("name", f"example {i + 1}")), "prompt": str(d.get("prompt", "")),
                 "response": str(d["response"])} for i, d in enumerate(data) if isinstance(d, dict) and d.get("response")]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def display_name(name: str) -> str:
    """A model name for people: paths inside the repository are shown relative to it."""
    try:
        return str(Path(name).resolve().relative_to(REPO_ROOT))
    except (ValueError, OSError):
        return name


def _temporary_folder() -> Path:
    """A download folder removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="red-app-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@dataclass
class AppContext:
    """Process-level state shared by all sessions and tabs.

    default_rm: the reward model a new session starts with.
    default_policy: folder or hub id of the policy (Policies tab), or None.
    rm_choices: (label, name) pairs offered in the model pickers (free text is allowed too).
    reward_models: LRU cache RMChoice -> red_core.RewardModel (`with ctx.reward_models.use(key) as rm:`).
    policies: LRU cache name -> (model, tokenizer) from red_core.load_policy.
    examples: [{name, prompt, response}] from assets/examples.json ([] if missing).
    files_dir: where downloads are written (old ones are swept after FILE_TTL_SECONDS).
    limits: the app.limits module (named limits).
    rm_state: the gr.State holding the session's RMChoice; set by build_app before tabs are built.
    """

    default_rm: RMChoice
    default_policy: str | None
    rm_choices: list[tuple[str, str]]
    reward_models: ModelCache
    policies: ModelCache
    examples: list[dict]
    files_dir: Path
    limits: Any = limits
    rm_state: Any = None
    extra: dict = field(default_factory=dict)  # room for other tabs

    @classmethod
    def create(cls, reward_model: str | None = None, policy: str | None = None, *, examples: list[dict] | None = None,
               files_dir: str | Path | None = None) -> AppContext:
        default = str(reward_model) if reward_model else str(DEFAULT_REWARD_MODEL)
        choices = [(f"{display_name(default)}" + (" (default)" if not reward_model else ""), default)]
        if reward_model and (DEFAULT_REWARD_MODEL / "config.json").exists():
            choices.append((f"{display_name(str(DEFAULT_REWARD_MODEL))} (bundled default)", str(DEFAULT_REWARD_MODEL)))
        if policy is None and (DEFAULT_POLICY / "config.json").exists():
            policy = str(DEFAULT_POLICY)
        return cls(default_rm=RMChoice(default), default_policy=policy, rm_choices=choices,
                   reward_models=ModelCache(load_rm, limits.MODEL_CACHE_SIZE),
                   policies=ModelCache(red_core.load_policy, limits.POLICY_CACHE_SIZE),
                   examples=load_examples() if examples is None else examples,
                   files_dir=Path(files_dir) if files_dir else _temporary_folder())

    def new_download_dir(self) -> Path:
        """A fresh folder for one request's downloads; sweeps folders older than FILE_TTL_SECONDS."""
        self.files_dir.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - limits.FILE_TTL_SECONDS
        for old in self.files_dir.iterdir():
            try:
                if old.is_dir() and old.stat().st_mtime < cutoff:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        out = self.files_dir / uuid.uuid4().hex[:12]
        out.mkdir()
        return out
