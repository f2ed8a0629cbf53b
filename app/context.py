"""AppContext: what every tab needs from the process (defaults, model caches, examples, limits).

One context is built per process (`AppContext.create`) and handed to `build_app` and to every
handler; tabs written elsewhere (app/policies_tab.py) receive it in `build(ctx)`. Nothing in it
belongs to one user: per-user data lives in `gr.State` (see `ctx.rm_state`).

The bundled policies are read from a folder (`MODELS_DIR`, or `models_dir=` for tests and hosts): the
base policy `policy-base`, and every other `policy-*` folder as a trained "after" policy, each with a
one-line description from its evaluation.json or model card (`shipped_policies`).
"""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import red_core
from app import limits
from app.cache import ModelCache
from app.hosting import Hosting, public_name
from red_core.models import DEFAULT_POLICY, DEFAULT_REWARD_MODEL, REPO_ROOT
from red_core.policies import DEFAULT_AFTER

EXAMPLES_FILE = REPO_ROOT / "assets" / "examples.json"
MODELS_DIR = REPO_ROOT / "assets" / "models"  # bundled models: reward*, policy-base, policy-* ("after" policies)
BIASED_REWARD_MODEL = MODELS_DIR / "reward-biased"
BASE_POLICY = "policy-base"  # the folder every shipped "after" policy was trained from
INPUT_FORMATS = ("auto", "concat", "pair")


class RMChoice(NamedTuple):
    """Which reward model a session uses: the cache key, kept in the session's gr.State."""

    name: str  # hub id or folder
    label_index: int | None = None  # output of a multi-output head that is the reward
    input_format: str = "auto"  # auto (chat template if any), concat, pair


def load_rm(hosting: Hosting, choice: RMChoice):
    """The reward-model cache's loader: resolve the visitor's name (hosting rules, size cap), then load.

    The loaded model is named by its public name, so results and messages never show a server path.
    """
    path = hosting.resolve(choice.name, "reward")
    if Path(path) == DEFAULT_REWARD_MODEL and not (DEFAULT_REWARD_MODEL / "config.json").exists():
        path = None  # red_core then says how to build the default
    rm = red_core.load_reward_model(path, label_index=choice.label_index, input_format=choice.input_format)
    rm.name = choice.name
    return rm


def load_policy(hosting: Hosting, name: str):
    """The policy cache's loader: the same hosting rules and size cap as reward models."""
    return red_core.load_policy(hosting.resolve(name, "policy"))


@dataclass(frozen=True)
class ShippedPolicy:
    """A bundled "after" policy, for the Policies tab's picker."""

    name: str  # public name (repo-relative folder, e.g. assets/models/policy-red)
    path: str  # the folder on this server
    description: str  # one line: evaluation.json "description", else the model card's title
    numbers: dict = field(default_factory=dict)  # reward_before, reward_after, kl_to_base, win_rate (if known)


def _card_title(folder: Path) -> str:
    """The first '# ' heading of README.md (after any front matter), '' if none."""
    try:
        lines = (folder / "README.md").read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    return next((line[2:].strip() for line in lines if line.startswith("# ")), "")


def _evaluation(folder: Path) -> dict:
    try:
        data = json.loads((folder / "evaluation.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def policy_numbers(evaluation: dict) -> dict:
    """reward_before / reward_after / gold_before / gold_after / kl_to_base / win_rate of the policy's own method
    from evaluation.json (the gold numbers only where the recipe measured them)."""
    runs = evaluation.get("eval")
    if not isinstance(runs, dict) or not runs:
        return {}
    method = (evaluation.get("config") or {}).get("method")
    run = runs.get(method) if method in runs else next(iter(runs.values()))
    keys = ("reward_before", "reward_after", "gold_before", "gold_after", "kl_to_base", "win_rate")
    return {k: float(run[k]) for k in keys if isinstance(run, dict) and isinstance(run.get(k), (int, float))}


def shipped_policies(folder: str | Path = MODELS_DIR) -> list[ShippedPolicy]:
    """Every bundled "after" policy in `folder`: sub-folders named policy-* (not policy-base) with a config.json,
    sorted by name, each with a one-line description."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for sub in sorted(folder.iterdir()):
        if not (sub.name.startswith("policy-") and sub.name != BASE_POLICY and (sub / "config.json").is_file()):
            continue
        evaluation = _evaluation(sub)
        description = str(evaluation.get("description") or _card_title(sub) or "a trained policy")
        out.append(ShippedPolicy(public_name(sub), str(sub), " ".join(description.split()), policy_numbers(evaluation)))
    return out


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
    return public_name(name)


def _temporary_folder() -> Path:
    """A download folder removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="red-app-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@dataclass
class AppContext:
    """Process-level state shared by all sessions and tabs.

    default_rm: the reward model a new session starts with (its public name).
    default_policy: public name of the policy (Policies tab "before", What if? proposals), or None.
    after_policies: the bundled "after" policies (shipped_policies), offered in the Policies tab.
    rm_choices: (label, name) pairs offered in the model pickers (free text is allowed too).
    hosting: local or public mode: which names a visitor may load (app/hosting.py).
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
    hosting: Hosting = field(default_factory=Hosting)
    after_policies: list[ShippedPolicy] = field(default_factory=list)
    limits: Any = limits
    rm_state: Any = None
    extra: dict = field(default_factory=dict)  # room for other tabs

    @classmethod
    def create(cls, reward_model: str | None = None, policy: str | None = None, *, examples: list[dict] | None = None,
               files_dir: str | Path | None = None, public: bool = False,
               models_dir: str | Path | None = None) -> AppContext:
        """The context for one process. The default models (the host's choices and the bundled ones) are
        pinned in the caches; `public` restricts what visitors may load (see app/hosting.py). `models_dir`:
        where the bundled policies are (default MODELS_DIR); every policy-* folder in it is offered."""
        rms = [str(reward_model) if reward_model else str(DEFAULT_REWARD_MODEL)]
        if reward_model and (DEFAULT_REWARD_MODEL / "config.json").exists():
            rms.append(str(DEFAULT_REWARD_MODEL))
        if (BIASED_REWARD_MODEL / "config.json").exists():  # the reward-hacking demo (Dataset tab, Compare)
            rms.append(str(BIASED_REWARD_MODEL))
        base = Path(models_dir) / BASE_POLICY if models_dir else DEFAULT_POLICY
        after = shipped_policies(models_dir or MODELS_DIR)
        default_after = next((a for a in after if Path(a.path) == DEFAULT_AFTER), None)
        after = ([default_after] if default_after else []) + [a for a in after if a is not default_after]
        bundled_policies = [str(base)] if (base / "config.json").exists() else []
        bundled_policies += [a.path for a in after]
        if policy is None and bundled_policies and bundled_policies[0] == str(base):
            policy = str(base)
        policies = ([str(policy)] if policy else []) + [p for p in bundled_policies if p != str(policy)]
        hosting = Hosting.create(public, rms, policies)
        default = RMChoice(public_name(rms[0]))
        choices = [(label + (" (default)" if value == default.name else ""), value)
                   for label, value in hosting.choices("reward")]
        return cls(default_rm=default, default_policy=public_name(policy) if policy else None, rm_choices=choices,
                   reward_models=ModelCache(partial(load_rm, hosting), limits.MODEL_CACHE_SIZE, pinned={default}),
                   policies=ModelCache(partial(load_policy, hosting), limits.POLICY_CACHE_SIZE,
                                       pinned={public_name(p) for p in policies}),
                   examples=load_examples() if examples is None else examples,
                   files_dir=Path(files_dir) if files_dir else _temporary_folder(), hosting=hosting,
                   after_policies=after)

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
