"""Which files does Python code read? Record it during the tests, check it at the end.

An audit hook (`sys.addaudithook`) records the path of every `open` for reading and every directory
listing (`os.listdir`, `os.scandir`), with the label of the test that was running. A hook cannot be
removed and runs on every audited event of the process, so it only does a set lookup and a dict
insert; everything else happens once, at the end (`outside_reads`).

What it sees: reads by Python code (builtins.open, io.open_code, os.open, pathlib, glob, imports).
What it does not see: reads in C or Rust code (safetensors, the `tokenizers` file loader, dlopen of
shared libraries) and processes that are not Python (chromium, playwright's node driver). Python child
processes are covered when they inherit PYTHONPATH: tests/conftest.py prepends this folder, whose
`sitecustomize.py` starts a recorder that writes its reads to $RED_READ_AUDIT_DIR when it exits.
"""

from __future__ import annotations

import json
import mimetypes
import os
import sys
import sysconfig
import tempfile

ENV_DIR = "RED_READ_AUDIT_DIR"  # where child processes write their reads (set by tests/conftest.py)
ENV_TEST = "RED_READ_AUDIT_TEST"  # the test that is running, inherited by the processes it starts
_EVENTS = frozenset(("open", "os.listdir", "os.scandir"))

# Outside the repository, the virtual environment, the base interpreter's standard library and the temp
# folder, only these may be read: what Python, torch, transformers, gradio and playwright read on any
# machine (kernel interfaces, system configuration, shared libraries, time zones), and what .ci/run
# installs (Debian's chromium). Not /usr/share as a whole: that is where data packages such as Debian's
# fortunes (/usr/share/games/fortunes) live. Not the home folder: caches and tokens there are one
# machine's state. Symbolic links in these folders may point anywhere (/etc/localtime, /etc/ssl/certs).
SYSTEM_ALLOWED = (
    "/proc", "/sys", "/dev",  # kernel interfaces: CPU count and cgroup quota, mounts, /dev/null, /dev/shm
    "/etc",  # system configuration: mime.types, ssl certificates, localtime, passwd, hosts, os-release
    "/usr/local/etc/ipython",  # IPython's other system config folder: the notebook test's kernel looks for startup/
    "/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib",  # shared libraries, locales, chromium's files
    "/usr/share/zoneinfo",  # time zones (zoneinfo, pandas)
    "/usr/share/locale",  # message catalogues: gettext (argparse) looks there under a non-English locale
    "/usr/bin/chromium",  # the browser test's Debian chromium (.ci/run installs it)
    # font folders matplotlib lists when it starts (the PNG heatmap, captum's ig method); a machine without them
    # works the same (matplotlib ships its own fonts and the PNG uses them), so these reads are not a dependency
    "/usr/share/fonts", "/usr/local/share/fonts", "/usr/X11/lib/X11/fonts", "/usr/X11R6/lib/X11/fonts",
    "/usr/lib/openoffice/share/fonts",
    *mimetypes.knownfiles,  # the mime.types files the standard library reads (gradio serves files)
)


class Recorder:
    """`sys.addaudithook(recorder.event)`; then `recorder.reads` maps each absolute path read to a label."""

    def __init__(self, label: str = "<start>"):
        self.reads: dict[str, str] = {}
        self.label = label
        self.on = True

    def event(self, event: str, args: tuple) -> None:
        if event not in _EVENTS or not self.on:
            return
        try:  # an exception here would surface in the code that opened the file: never raise
            path = args[0]
            if event == "open" and isinstance(args[2], int) and args[2] & os.O_ACCMODE == os.O_WRONLY:
                return  # written, not read
            if path is None:
                path = "."
            elif isinstance(path, bytes):
                path = os.fsdecode(path)
            elif not isinstance(path, str):
                return  # a file descriptor: its path was recorded when it was opened
            if not os.path.isabs(path):
                path = os.path.join(os.getcwd(), path)
            if path not in self.reads:
                self.reads[path] = self.label
        except Exception:
            pass

    def start(self) -> Recorder:
        sys.addaudithook(self.event)
        return self


def allowed_roots(repo: str | os.PathLike, extra=()) -> list[str]:
    """Folders (and files) whose files may be read: the repository, the interpreter, the temp folder,
    `extra`, and SYSTEM_ALLOWED."""
    roots = [repo, sys.prefix, sys.exec_prefix, tempfile.gettempdir(), *extra, *SYSTEM_ALLOWED,
             # the base interpreter: its standard library (and the zip of it that the import system
             # looks for), and the executable that a virtual environment's python links to
             sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"), os.path.realpath(sys.executable),
             os.path.join(sys.base_prefix, "lib", f"python{sys.version_info[0]}{sys.version_info[1]}.zip")]
    out = set()
    for r in roots:
        out.update((os.path.normpath(os.fspath(r)), os.path.realpath(r)))
    return sorted(out)


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def outside_reads(reads: dict[str, str], roots: list[str]) -> list[tuple[str, str]]:
    """(label, path) of each read outside `roots`, sorted. Symbolic links are followed, except in the system
    folders: a link in the repository that points outside it is a read outside it."""
    out = []
    for path, label in reads.items():
        norm = os.path.normpath(path)
        if not _under(norm, roots):
            out.append((label, norm))
        elif not _under(norm, SYSTEM_ALLOWED):
            real = os.path.realpath(norm)
            if not _under(real, roots):
                out.append((label, f"{norm} -> {real}"))
    return sorted(out)


def format_report(offending: list[tuple[str, str]], limit: int = 20) -> list[str]:
    """One block per test: which test read which paths (at most `limit` paths each)."""
    by_test: dict[str, list[str]] = {}
    for label, path in offending:
        by_test.setdefault(label, []).append(path)
    lines = []
    for label, paths in by_test.items():
        lines.append(f"{label} read {len(paths)} path(s) outside the allowed folders:")
        lines += [f"    {p}" for p in paths[:limit]]
        if len(paths) > limit:
            lines.append(f"    ... and {len(paths) - limit} more")
    return lines


# ----------------------------------------------------------------------------- child processes

def start_child() -> None:
    """In a Python child process of the tests (from sitecustomize): record, and write the reads at exit."""
    import atexit

    folder = os.environ.get(ENV_DIR)
    if not folder or not os.path.isdir(folder):
        return
    rec = Recorder().start()

    def write():
        rec.on = False
        command = " ".join(sys.argv)[:120]  # complete only now (`-m module` is resolved after start-up)
        label = f"{os.environ.get(ENV_TEST, '<no test>')} (child process {os.getpid()}: {command})"
        try:
            with open(os.path.join(folder, f"{os.getpid()}.json"), "w") as f:
                json.dump(dict.fromkeys(rec.reads, label), f)
        except OSError:
            pass

    atexit.register(write)


def child_reads(folder: str | os.PathLike) -> dict[str, str]:
    """The reads that child processes wrote to `folder`."""
    reads: dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        try:
            with open(os.path.join(folder, name)) as f:
                for path, label in json.load(f).items():
                    reads.setdefault(path, label)
        except (OSError, ValueError):
            pass
    return reads
