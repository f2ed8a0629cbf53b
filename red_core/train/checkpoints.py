"""The run folder of RED-PPO: checkpoints, metrics and summary on disk, and the faults they meet.

    OUT/.lock                          held (flock) by the process training into OUT
    OUT/config.json                    the settings of the latest start
    OUT/metrics.jsonl, metrics.csv     one row per step: the run's history
    OUT/checkpoints/step-NNNNNN/       policy.safetensors, critic.safetensors, optim.pt, state.json
                                       (no critic.safetensors for a critic-free algorithm: reinforce)
    OUT/checkpoints/latest             name of the newest checkpoint: a hint, never trusted alone
    OUT/policy/, OUT/summary.json      written when the run ends

Rules (issue "Training can lose a run"):
- Writes are atomic: a temporary name, fsync, rename. A checkpoint folder is complete once renamed;
  its state.json, written last, records the step, the settings, each file's size and the metrics
  row of its step (which ties the checkpoint to one history in metrics.jsonl).
- Resume takes the newest COMPLETE checkpoint by content: state.json readable with a step, the three
  other files present, of the recorded sizes, with readable headers. `latest` only breaks ties.
- A damaged checkpoint is skipped with a warning in favour of an older complete one; when none is
  left, resuming stops with an error naming each damaged file (ppo.resume has all its refusals).
- After writing step s, cleanup keeps that checkpoint and the keep-1 newest complete ones below s
  (by content step) and deletes the rest: incomplete folders, and folders whose content step is
  >= s. Those cannot belong to the current history: it is in metrics.jsonl (written before every
  checkpoint) and ends at s, and resume starts from the newest complete checkpoint, so a higher one
  is a leftover of another run or one that failed to load.
- Leftovers of a killed process (.tmp-NAME-PID / .old-NAME-PID for the names written here) go at the
  next start and save; OUT/.lock keeps a second process out, so none can be a write in progress.
- A failed write raises RunFolderError naming the file. A full disk (errno ENOSPC/EDQUOT, the
  writer's message, or < 16 MiB free right after the failure, which is how torch.save's
  "unexpected pos" shows it) is named as such, with the free space.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import shutil
import zipfile
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError

from red_core.outfile import plain_json

CHECKPOINT_DIR = "checkpoints"
FILES = ("policy.safetensors", "critic.safetensors", "optim.pt", "state.json")  # state.json last
OPTIONAL = ("critic.safetensors",)  # absent when state.json's `files` (the sizes written) does not list it
METRIC_COLUMNS = (
    "step", "reward_mean", "reward_std", "gold_mean", "gold_std", "baseline_mean", "credit_sum_mean", "return_mean",
    "kl", "kl_per_token", "kl_coef", "entropy", "response_length", "eos_fraction", "policy_loss", "value_loss",
    "clip_fraction", "approx_kl", "explained_variance", "value_mean", "time_rollout", "time_score", "time_update",
    "step_time")
LOW_SPACE = 16 * 2**20  # bytes: less than this free after a failed write means the disk filled up
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_TEXTS = ("no space left", "os error 28", "disk quota exceeded", "os error 122")
START_OVER = ("start over with --no-resume (TrainConfig(resume=False)), which deletes this run's checkpoints and "
              "metrics, or use another --out")


class RunFolderError(ValueError):
    """The run folder cannot be written or resumed as asked; the message names the file and what to do."""


class DamagedCheckpoint(RunFolderError):
    """A checkpoint file is missing, truncated or unreadable."""


# ----------------------------------------------------------------------------- writing


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _says_disk_full(err: BaseException | None) -> bool:
    seen = 0
    while err is not None and seen < 8:  # the error and what caused it
        if getattr(err, "errno", None) in DISK_FULL_ERRNOS or any(t in str(err).lower() for t in DISK_FULL_TEXTS):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _free_bytes(path: Path) -> int | None:
    """Free bytes on the disk of `path`; None when unknown or not a disk (/sys, /proc report 0 of 0)."""
    try:
        usage = shutil.disk_usage(_existing(path))
    except OSError:
        return None
    return usage.free if usage.total else None


def _size(n: int | None) -> str:
    if n is None:
        return "an unknown amount"
    if n < 1024:
        return f"{n} bytes"
    exponent = min(3, int(math.log(n, 1024)))
    return f"{n / 1024 ** exponent:.1f} {('KiB', 'MiB', 'GiB')[exponent - 1]}"


def write_error(path: Path, err: BaseException) -> RunFolderError:
    """A clear error for a failed write of `path` (call it before removing any partial file)."""
    folder = _existing(Path(path).parent)
    free = _free_bytes(folder)
    reason = err.strerror if isinstance(err, OSError) and err.strerror else _first_line(err)
    other_errno = getattr(err, "errno", None) not in (None, *DISK_FULL_ERRNOS)  # e.g. EACCES: trust it
    if _says_disk_full(err) or (not other_errno and free is not None and free < LOW_SPACE):
        return RunFolderError(f"the disk is full: cannot write {path} ({reason}); {_size(free)} free on the disk that "
                              f"holds {folder}. Free some space (or choose another --out), then run the same command "
                              "again: training continues from the last checkpoint.")
    return RunFolderError(f"cannot write {path}: {reason}. Check that {folder} is a writable folder, or choose "
                          "another --out.")


@contextmanager
def writing(path: Path):
    """Turn a failed write of `path` into a RunFolderError that says why (a full disk first)."""
    try:
        yield
    except RunFolderError:
        raise
    except (OSError, RuntimeError, SafetensorError) as err:
        raise write_error(path, err) from err


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not supported here (e.g. Windows): the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file: readers see the old or the new content, never a part."""
    path = Path(path)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    try:
        with writing(path):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)  # durable before what comes next (metrics before their checkpoint)
    finally:
        tmp.unlink(missing_ok=True)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


RUN_FILES = ("metrics.jsonl", "metrics.csv", "config.json", "summary.json", "policy")  # written into OUT
CHECKPOINT_FILES = ("step-*", "latest")  # written into OUT/checkpoints


def remove_leftovers(folder: Path, names: tuple[str, ...]) -> None:
    """Delete .tmp-NAME-PID / .old-NAME-PID entries of a killed or failed write (only names this module
    writes: OUT may be a folder that holds other files)."""
    if folder.is_dir():
        for name in names:
            for p in [*folder.glob(f".tmp-{name}-*"), *folder.glob(f".old-{name}-*")]:
                _remove(p)


def write_folder(folder: Path, fill) -> Path:
    """Write a folder atomically: fill(tmp) writes a temporary sibling, which then replaces `folder`."""
    folder = Path(folder)
    tmp = folder.with_name(f".tmp-{folder.name}-{os.getpid()}")
    old = folder.with_name(f".old-{folder.name}-{os.getpid()}")
    _remove(tmp)
    _remove(old)
    try:
        with writing(folder):
            tmp.mkdir(parents=True)
            fill(tmp)
            for f in tmp.rglob("*"):
                if f.is_file():
                    _fsync(f)
            if folder.exists():  # replacing: move the old one aside for the instant of the swap
                os.rename(folder, old)
            os.rename(tmp, folder)
            _fsync_dir(folder.parent)
    except BaseException:
        _remove(tmp)
        raise
    _remove(old)
    return folder


def strict_json(obj, indent: int | None = None) -> str:
    """Standard JSON (no NaN / Infinity literals: they become null); other objects as str."""
    return json.dumps(plain_json(obj), indent=indent, allow_nan=False, default=str)


# ----------------------------------------------------------------------------- the run folder


def _make_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"the output path {out} is a file, not a folder; pass a folder as --out (it is created "
                             "when missing).")
    above = _existing(out)
    if not above.is_dir():
        raise RunFolderError(f"cannot create the output folder {out}: {above} is a file; choose another --out.")
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
    checkpoints = out / CHECKPOINT_DIR
    if checkpoints.exists() and not checkpoints.is_dir():
        raise RunFolderError(f"{checkpoints} is a file, not a folder of checkpoints; move it away or choose another "
                             "--out.")


def _lock(handle, out: Path) -> None:
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a second process is not detected
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunFolderError(f"another process is training into {out} (it holds {out / '.lock'}); wait for it to end, "
                             "or choose another --out.") from None
    except OSError:
        pass  # a file system without locks: go on unlocked


@contextmanager
def run_folder(out: Path):
    """Create OUT when missing, hold OUT/.lock while training into it, remove a killed run's leftovers."""
    out = Path(out)
    _make_folder(out)
    with writing(out / ".lock"):
        handle = open(out / ".lock", "a")
    try:
        _lock(handle, out)
        remove_leftovers(out, RUN_FILES)
        remove_leftovers(out / CHECKPOINT_DIR, CHECKPOINT_FILES)
        yield out
    finally:
        handle.close()


def start_over(out: Path) -> None:
    """--no-resume: forget the old run's checkpoints, metrics and summary (OUT/policy stays until replaced)."""
    with writing(out):
        if (out / CHECKPOINT_DIR).exists():
            shutil.rmtree(out / CHECKPOINT_DIR)
        for name in ("metrics.jsonl", "metrics.csv", "summary.json"):
            (out / name).unlink(missing_ok=True)


# ----------------------------------------------------------------------------- checkpoints: reading


def read_state(folder: Path) -> dict:
    """state.json of a checkpoint: {"step", "config", "files", "metrics"}; DamagedCheckpoint if unusable."""
    path = Path(folder) / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedCheckpoint(f"{path} is missing") from None
    except (OSError, ValueError) as err:
        raise DamagedCheckpoint(f"{path} is not valid JSON ({_first_line(err)})") from None
    if not isinstance(state, dict) or type(state.get("step")) is not int or state["step"] < 0 \
            or not isinstance(state.get("config"), dict):
        raise DamagedCheckpoint(f"{path} lacks the step number or the settings")
    return state


def _check_file(path: Path, size: int | None) -> None:
    """DamagedCheckpoint unless `path` is there, of the recorded size, with a readable header."""
    from safetensors import safe_open

    try:
        actual = path.stat().st_size
        if size is not None and actual != size:
            raise DamagedCheckpoint(f"{path} has {actual} bytes but {size} were written: it is truncated or changed")
        if path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt"):
                pass
        else:
            zipfile.ZipFile(path).close()  # reads the zip directory at the end: catches truncation and garbage
    except FileNotFoundError:
        raise DamagedCheckpoint(f"{path} is missing") from None
    except DamagedCheckpoint:
        raise
    except Exception as err:  # noqa: BLE001 - any reader error means a damaged file
        raise DamagedCheckpoint(f"{path} is not a readable {path.suffix[1:]} file ({_first_line(err)})") from None


def inspect_checkpoint(folder: Path) -> tuple[dict | None, str | None]:
    """(state, None) for a complete checkpoint, else (None, what is wrong: which file, why)."""
    try:
        state = read_state(folder)
        files = state.get("files")
        sizes: dict = files if isinstance(files, dict) else {}
        for name in FILES[:3]:
            if name in OPTIONAL and isinstance(files, dict) and name not in sizes:
                continue  # not written (no critic); checkpoints without `files` are from before: all three
            _check_file(Path(folder) / name, sizes.get(name))
    except DamagedCheckpoint as err:
        return None, str(err)
    return state, None


def _step_folders(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.glob("step-*") if p.is_dir())
    except OSError:
        return []


def _pointer(root: Path) -> str | None:
    try:
        return (root / "latest").read_text(encoding="utf-8").strip() or None
    except (OSError, ValueError):
        return None


def find_checkpoints(out: str | Path) -> tuple[list[Path], list[str]]:
    """(complete checkpoints, newest first by content step; problems of the damaged ones)."""
    root = Path(out) / CHECKPOINT_DIR
    hint = _pointer(root)
    complete, damaged = [], []
    for folder in _step_folders(root):
        state, problem = inspect_checkpoint(folder)
        if state is None:
            damaged.append(problem or f"{folder} is damaged")
        else:
            complete.append((state["step"], folder.name == hint, folder.name, folder))
    complete.sort(reverse=True)  # highest step; among equal steps the one `latest` names
    return [c[-1] for c in complete], damaged


def latest_checkpoint(out: str | Path) -> Path | None:
    """The newest complete checkpoint in OUT/checkpoints (by the step in its state.json), or None."""
    complete, _ = find_checkpoints(out)
    return complete[0] if complete else None


def _loaded(path: Path, load):
    try:
        return load(path)
    except Exception as err:  # noqa: BLE001 - a reader error means a damaged (or foreign) file
        raise DamagedCheckpoint(f"{path} cannot be loaded ({_first_line(err)})") from None


def load_weights(folder: Path, policy, critic, device) -> dict:
    """Load the models in place (critic None: none); returns the optimiser states ({"actor", "critic", "scaler"})."""
    from safetensors.torch import load_model

    folder = Path(folder)
    optim = _loaded(folder / "optim.pt", lambda p: torch.load(p, map_location=device, weights_only=True))
    if not isinstance(optim, dict) or not {"actor", "scaler", *(["critic"] if critic is not None else [])} <= set(optim):
        raise DamagedCheckpoint(f"{folder / 'optim.pt'} does not hold the optimiser states")
    _loaded(folder / "policy.safetensors", lambda p: load_model(policy, str(p), device=str(device)))
    if critic is not None:
        _loaded(folder / "critic.safetensors", lambda p: load_model(critic, str(p), device=str(device)))
    return optim


# ----------------------------------------------------------------------------- checkpoints: writing


def save_checkpoint(out: str | Path, step: int, policy, critic, optim: dict, state: dict, keep: int = 1) -> Path:
    """Write OUT/checkpoints/step-NNNNNN atomically, point `latest` at it, prune the others (module doc)."""
    from safetensors.torch import save_model

    root = Path(out) / CHECKPOINT_DIR
    with writing(root):
        root.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root, CHECKPOINT_FILES)

    def fill(tmp: Path) -> None:
        save_model(policy, str(tmp / "policy.safetensors"))
        if critic is not None:  # critic None: a critic-free algorithm, no critic file
            save_model(critic, str(tmp / "critic.safetensors"))
        with open(tmp / "optim.pt", "wb") as f:  # a Python file: a full disk raises OSError(ENOSPC) more often
            torch.save(optim, f)
        sizes = {name: (tmp / name).stat().st_size for name in FILES[:3] if critic is not None or name not in OPTIONAL}
        (tmp / "state.json").write_text(strict_json({**state, "step": step, "files": sizes}, indent=1) + "\n")
        _, problem = inspect_checkpoint(tmp)  # never publish a checkpoint that resume would reject
        if problem:
            raise OSError(f"the checkpoint just written does not read back: {problem}")  # no errno: a full disk?

    final = write_folder(root / f"step-{step:06d}", fill)
    _atomic_write(root / "latest", final.name + "\n")
    prune_checkpoints(root, final, step, keep)
    return final


def prune_checkpoints(root: Path, kept: Path, step: int, keep: int) -> None:
    """Keep `kept` (step `step`) and the keep-1 newest complete checkpoints below it; delete the others."""
    older = []
    for folder in _step_folders(root):
        if folder == kept:
            continue
        state, _ = inspect_checkpoint(folder)
        if state is None or state["step"] >= step:  # damaged, or not of this history (module doc)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            older.append((state["step"], folder.name, folder))
    for *_, folder in sorted(older, reverse=True)[max(keep - 1, 0):]:
        shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- metrics


def write_metrics(out: str | Path, rows: list[dict]) -> None:
    """OUT/metrics.jsonl and OUT/metrics.csv, each rewritten atomically (one row per step)."""
    out = Path(out)
    _atomic_write(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(METRIC_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write(out / "metrics.csv", buf.getvalue())


def read_metrics(out: str | Path) -> list[dict]:
    """The rows of OUT/metrics.jsonl ([] when there is none); RunFolderError if the file is damaged."""
    path = Path(out) / "metrics.jsonl"
    if not path.exists():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as err:
        raise RunFolderError(f"cannot read {path} ({_first_line(err)}); put back a good copy, or {START_OVER}.") from None
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict) or type(row.get("step")) is not int:
            raise RunFolderError(f"{path} line {i} is not a metrics row (a JSON object with a step): the file is "
                                 f"damaged. Put back a good copy, or {START_OVER}.")
        rows.append(row)
    return rows


def same_row(a: dict | None, b: dict | None) -> bool:
    """Whether two metrics rows record the same step of the same run: the trainer's own columns are
    equal (as strict JSON, so NaN equals NaN); keys a callback added are not compared."""
    if a is None or b is None:
        return a is b

    def own(row: dict) -> str:
        return strict_json({k: row.get(k) for k in METRIC_COLUMNS})

    return own(a) == own(b)
