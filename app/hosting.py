"""Hosting: which models a web visitor may load, their size caps, public names, and ZeroGPU.

Local mode (`python -m app`, the default) keeps the freedom of one's own laptop: any folder or hub id.
Public mode (`--public`; on by itself when the SPACE_ID environment variable is set, as on a
Hugging Face Space; `--no-public` turns it off) is for strangers:
- a visitor may choose only the bundled models and the hub ids listed in app/allowlist.json;
- no local path is opened because a visitor typed it, and every refusal reads the same, so the
  page never tells which server paths exist;
- `trust_remote_code` and pickle weights are never reachable from the browser (in either mode:
  the app never passes them);
- a hub model's size is checked from its safetensors metadata before anything is downloaded.
Names that reach the page or the API are public names: repo-relative for bundled models
("assets/models/reward"), the hub id otherwise; never an absolute server path (`scrub` removes
the install path from any message as a last line of defence).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from app import limits
from app.cache import hub_parameter_count
from red_core.models import REPO_ROOT, RewardModelError, resolve_device

ALLOWLIST_FILE = Path(__file__).resolve().parent / "allowlist.json"
KINDS = ("reward", "policy")
SIZE_TOLERANCE = 1.25  # a hub model may be this much larger than its allowlist entry says


@dataclass(frozen=True)
class Offer:
    """One allowlisted hub model."""

    id: str  # hub id
    kind: str  # "reward" or "policy"
    params: int  # parameter count the allowlist promises (checked before download)
    gpu: bool = False  # offered only where a CUDA GPU is visible
    note: str = ""


def load_allowlist(path: str | Path = ALLOWLIST_FILE) -> dict[str, list[Offer]]:
    """{"reward": [Offer, ...], "policy": [...]} from the allowlist file; a broken file is a start-up error."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out: dict[str, list[Offer]] = {k: [] for k in KINDS}
    for kind, key in (("reward", "reward_models"), ("policy", "policies")):
        for e in data.get(key, []):
            out[kind].append(Offer(id=str(e["id"]), kind=kind, params=int(e["params"]), gpu=bool(e.get("gpu", False)),
                                   note=str(e.get("note", ""))))
    return out


def public_name(path_or_id: str | os.PathLike) -> str:
    """Repo-relative for folders inside the repository, the folder's own name for other folders, else as given."""
    text = str(path_or_id)
    path = Path(os.path.expanduser(text))
    if not path.is_absolute() and not text.startswith((".", "~")):
        return text  # a hub id, or already a public name
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except (ValueError, OSError):
        return path.name or text


def scrub(message: str) -> str:
    """A message without the server's install path or home folder in it."""
    for path, shown in ((str(REPO_ROOT), "."), (os.path.expanduser("~"), "~")):
        if len(path) > 1:
            message = message.replace(path + os.sep, shown + "/").replace(path, shown)
    return message


def _cuda() -> bool:
    return resolve_device("auto") == "cuda"


@dataclass
class Hosting:
    """What this process lets visitors load. `bundled[kind]`: public name -> server path (defaults, host's choices)."""

    public: bool = False
    bundled: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    offers: dict[str, list[Offer]] = field(default_factory=lambda: {k: [] for k in KINDS})

    @classmethod
    def create(cls, public: bool, reward_models: list, policies: list) -> Hosting:
        bundled = {kind: {public_name(m): str(m) for m in models if m is not None}
                   for kind, models in (("reward", reward_models), ("policy", policies))}
        return cls(public=public, bundled=bundled, offers=load_allowlist() if public else {k: [] for k in KINDS})

    def offered(self, kind: str) -> list[Offer]:
        return [o for o in self.offers.get(kind, []) if not o.gpu or _cuda()]

    def refusal(self, kind: str) -> RewardModelError:
        names = list(self.bundled[kind]) + [o.id for o in self.offered(kind)]
        what = "reward models" if kind == "reward" else "policies"
        return RewardModelError(
            f"This public app loads only these {what}: {', '.join(names)}. To load any folder or hub id, run the "
            f"app on your own machine (python -m app); to offer another hub model here, add it to app/allowlist.json.")

    def resolve(self, name: str, kind: str) -> str:
        """What to load for a visitor's `name`: a server path for bundled names, else a hub id or (local mode) a path.

        Public mode refuses everything else with one message, whatever the name is, and checks the
        model's size on the hub before anything is downloaded.
        """
        name = (name or "").strip()
        if name in self.bundled[kind]:
            return self.bundled[kind][name]
        if not self.public:
            check_size(name, limits.MAX_MODEL_PARAMS)
            return name
        offer = next((o for o in self.offers.get(kind, []) if o.id == name), None)
        if offer is None:
            raise self.refusal(kind)
        if offer.gpu and not _cuda():
            raise RewardModelError(f"{offer.id} is offered only on a GPU machine ({offer.note}); this one has no "
                                   f"GPU. Pick a smaller model.")
        cap = int(offer.params * SIZE_TOLERANCE)
        check_size(offer.id, cap if offer.gpu else min(cap, limits.MAX_MODEL_PARAMS))
        return offer.id

    def choices(self, kind: str) -> list[tuple[str, str]]:
        """(label, public name) pairs for a model picker: bundled first, then the allowlist."""
        return [(n, n) for n in self.bundled[kind]] + [(f"{o.id} (hub)", o.id) for o in self.offered(kind)]


def check_size(name: str, max_params: int) -> None:
    """Refuse a hub model over `max_params` parameters before downloading it (unknown sizes pass)."""
    n = hub_parameter_count(name)
    if n is not None and n > max_params:
        raise RewardModelError(f"{name!r} has {n / 1e9:.1f} B parameters; this app loads at most {max_params / 1e9:.1f} B "
                               f"(MAX_MODEL_PARAMS). Pick a smaller model, e.g. Skywork/Skywork-Reward-V2-Qwen3-0.6B.")


# ----------------------------------------------------------------------------- ZeroGPU


def gpu(fn, duration: int = limits.GPU_DURATION_SECONDS):
    """`spaces.GPU(duration=...)(fn)` when the `spaces` package is importable (a ZeroGPU Space), else fn itself.

    On ZeroGPU a GPU is attached only while such a function runs; scoring and generation are
    wrapped with it. Without `spaces` nothing changes.
    """
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)
