"""Benchmark the app as a host for many visitors: load, memory over many sessions, and disk.

    python bench/bench_hosting.py            # full run (10-25 min on 2 shared cores)
    python bench/bench_hosting.py --quick    # smoke run (about 2 min)

The app runs as a subprocess, `python -m app --host 127.0.0.1 --port N --offline`, exactly as a
user starts it, with TMPDIR and GRADIO_TEMP_DIR pointed at a fresh folder, so the server's RSS
(VmRSS in /proc/<pid>/status) and every byte it writes can be measured from outside. Traffic goes
only to 127.0.0.1 through `gradio_client`; every request has a timeout, every loop a count and a
time budget, and the server is stopped (SIGTERM, then SIGKILL) at the end, even on error.

Phases (texts: varied ~200-token English reviews with positive and negative words, seeded RNG):

1. load:   C concurrent clients x R `/token_rewards` requests each (default 32 x 20): failures,
           latency p50/p95/max, throughput, server RSS before/after/peak; each response's exact
           numbers (5th output) must carry the prompt and response that client sent, else it
           counts as a session mismatch.
2. soak-1: S sequential requests from one client (one session): RSS every 50 requests, RSS
           slope (MiB per request) over the last 200, p50/p95.
3. soak-N: S requests, each from a NEW client (a new session each): RSS slope (MiB per session)
           over the last 200 and before/after the server's session cap (app.limits.MAX_SESSIONS,
           passed to launch(state_session_capacity=...)); p50/p95.
4. cap:    the same new-session soak on a second server whose cap is lowered to --cap (app.limits
           patched before `app.__main__.main` runs, nothing else changed), 3 x cap sessions: with
           the real cap (200) a 300-session soak has too few sessions past it to see a plateau.
5. disk:   bytes under GRADIO_TEMP_DIR and under the app's download folder (TMPDIR/red-app-*)
           before and after phases 1-3 (scoring should write nothing), then per `/downloads`
           call, and what is left after the server exits.

Results: printed as tables and written to bench/results/hosting.json (--out). The client side runs
in this process and shares the CPU cores with the server, so latencies include that contention.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REQUEST_TIMEOUT_S = 180  # one request, queue wait included
START_TIMEOUT_S = 180  # the server answering GET / and the first score
MIB = 1024 * 1024
# runs app.__main__.main with app.limits.MAX_SESSIONS lowered (phase 4); argv as for `python -m app`
CAPPED_MAIN = ("import os, sys; import app.limits as L; L.MAX_SESSIONS = int(os.environ['BENCH_MAX_SESSIONS']); "
               "from app.__main__ import main; main(sys.argv[1:])")

# ----------------------------------------------------------------------------- texts

SUBJECTS = ["The film", "Our hotel", "This phone", "The service", "My new teacher", "The album", "The restaurant",
            "Her latest book", "The weekend trip", "The match", "The concert", "This laptop", "The museum",
            "The train ride", "The coffee shop", "His speech", "The garden", "The update", "The course", "The show"]
NOUNS = ["the staff", "the ending", "the price", "the music", "the food", "the view", "the design", "the battery",
         "the weather", "the plot", "the room", "the screen", "the crowd", "the lighting", "the dialogue",
         "the waiting time", "the menu", "the support team", "the sound", "the first chapter"]
GOOD = ["wonderful", "delightful", "excellent", "brilliant", "charming", "lovely", "superb", "great", "fantastic",
        "pleasant", "warm", "beautiful", "friendly", "impressive", "cheerful"]
BAD = ["awful", "terrible", "boring", "disappointing", "horrible", "dull", "miserable", "annoying", "poor",
       "dreadful", "rude", "ugly", "noisy", "broken", "sad"]
LIKE = ["loved", "enjoyed", "admired", "recommend", "appreciated", "praised"]
DISLIKE = ["hated", "regretted", "disliked", "avoided", "complained about", "could not stand"]
TEMPLATES = ["{S} was {A}, and I {V} {N}.", "Honestly, {N} felt {A} from start to finish.",
             "I {V} {N}; it was {A} in every way.", "Everyone told me {N} would be {A}, and it was.",
             "By the evening {N} seemed even more {A} than before.", "{S} had {A} moments, and I {V} {N}.",
             "What stayed with me was how {A} {N} was.", "My friends {V} {N} as well, calling it {A}.",
             "To be fair, {N} was {A} and {B} at once.", "{S} left me feeling {A}."]
PROMPTS = ["Write a short review.", "How was it?", "Tell me about your experience.", "What did you think?",
           "Describe your visit.", "Give an honest opinion."]


def sentence(rng: random.Random, positive: bool) -> str:
    adj, other, verbs = (GOOD, BAD, LIKE) if positive else (BAD, GOOD, DISLIKE)
    s = rng.choice(TEMPLATES).format(S=rng.choice(SUBJECTS), N=rng.choice(NOUNS), A=rng.choice(adj),
                                     B=rng.choice(other), V=rng.choice(verbs))
    return s[0].upper() + s[1:]


def review(rng: random.Random, words: int) -> str:
    """About `words` words of sentences, each positive with a per-text probability (so texts vary in tone)."""
    p_good, out, n = rng.random(), [], 0
    while n < words:
        s = sentence(rng, rng.random() < p_good)
        out.append(s)
        n += len(s.split())
    return " ".join(out)


class Texts:
    """Unique (prompt, response) pairs from one seeded RNG, shared by all threads."""

    def __init__(self, seed: int, words: int):
        self.rng, self.words, self.seen, self.lock = random.Random(seed), words, set(), threading.Lock()

    def next(self) -> tuple[str, str]:
        with self.lock:
            while True:
                pair = (self.rng.choice(PROMPTS), review(self.rng, self.words))
                if pair not in self.seen:
                    self.seen.add(pair)
                    return pair


# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def folder_usage(path: Path) -> dict:
    """{"bytes", "files"} of everything under `path` (0 if it does not exist)."""
    total = count = 0
    for dirpath, _, names in os.walk(path):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
                count += 1
            except OSError:
                pass  # removed while walking
    return {"bytes": total, "files": count}


class Server:
    """`python -m app` in a subprocess with its own TMPDIR and GRADIO_TEMP_DIR under `workdir`."""

    def __init__(self, workdir: Path, max_sessions: int | None = None):
        self.workdir, self.max_sessions = workdir, max_sessions
        self.tmp, self.gradio_tmp = workdir / "tmp", workdir / "gradio"
        self.port, self.proc, self.log = free_port(), None, workdir / "server.log"
        self.url = f"http://127.0.0.1:{self.port}/"

    def start(self) -> float:
        """Start and wait until GET / answers; returns the seconds it took."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.gradio_tmp.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TMPDIR": str(self.tmp), "GRADIO_TEMP_DIR": str(self.gradio_tmp),
               "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        entry = ["-m", "app"]
        if self.max_sessions is not None:
            entry, env["BENCH_MAX_SESSIONS"] = ["-c", CAPPED_MAIN], str(self.max_sessions)
        cmd = [sys.executable, *entry, "--host", "127.0.0.1", "--port", str(self.port), "--offline"]
        t0 = time.perf_counter()
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self._wait_ready(t0)
        return time.perf_counter() - t0

    def _wait_ready(self, t0: float) -> None:
        while time.perf_counter() - t0 < START_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"the app did not answer within {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def rss_mib(self) -> float:
        return self._status_kib("VmRSS") / 1024

    def peak_mib(self) -> float:
        return self._status_kib("VmHWM") / 1024

    def _status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def files_dirs(self) -> list[Path]:
        """The app's download folder(s): tempfile.mkdtemp(prefix="red-app-") under its TMPDIR."""
        return sorted(self.tmp.glob("red-app-*"))

    def disk(self) -> dict:
        app_files = [folder_usage(p) for p in self.files_dirs()]
        return {"gradio_temp": folder_usage(self.gradio_tmp),
                "app_files": {"bytes": sum(u["bytes"] for u in app_files), "files": sum(u["files"] for u in app_files),
                              "folders": len(app_files)},
                "tmpdir_total": folder_usage(self.tmp)}

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM (the app exits cleanly, running atexit), SIGKILL to the group after 20 s; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait(timeout=20)


# ----------------------------------------------------------------------------- requests


def new_client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, httpx_kwargs={"timeout": REQUEST_TIMEOUT_S})


def score(client, prompt: str, response: str) -> dict:
    """One /token_rewards request: {"s": latency, "ok", "mismatch", "tokens", "error"}."""
    t0 = time.perf_counter()
    job = client.submit(prompt, response, api_name="/token_rewards")
    try:
        out = job.result(timeout=REQUEST_TIMEOUT_S)
    except FutureTimeout:
        job.cancel()
        return {"s": time.perf_counter() - t0, "ok": False, "error": f"timeout after {REQUEST_TIMEOUT_S} s"}
    except Exception as err:  # noqa: BLE001 - every failure is counted, with its message
        return {"s": time.perf_counter() - t0, "ok": False, "error": f"{type(err).__name__}: {str(err)[:200]}"}
    elapsed = time.perf_counter() - t0
    exact = out[4] if isinstance(out, (list, tuple)) and len(out) >= 5 else None
    complete = isinstance(exact, dict) and all(k in exact for k in ("response", "tokens", "score", "baseline"))
    same = complete and exact["response"] == response and exact.get("prompt") == prompt
    return {"s": elapsed, "ok": True, "mismatch": not same, "tokens": len(exact["tokens"]) if complete else 0}


def quantile(xs: list[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1]); nan for no data."""
    if not xs:
        return float("nan")
    ys = sorted(xs)
    return ys[min(len(ys) - 1, max(0, round(q * (len(ys) - 1))))]


def latency_stats(results: list[dict]) -> dict:
    ok = [r["s"] for r in results if r["ok"]]
    errors: dict[str, int] = {}
    for r in results:
        if not r["ok"]:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    tokens = [r["tokens"] for r in results if r["ok"]]
    return {"requests": len(results), "failures": len(results) - len(ok), "errors": errors,
            "mismatches": sum(1 for r in results if r.get("mismatch")),
            "p50_s": quantile(ok, 0.5), "p95_s": quantile(ok, 0.95), "max_s": max(ok, default=float("nan")),
            "mean_tokens": sum(tokens) / len(tokens) if tokens else 0}


def slope(ys: list[float]) -> float:
    """Least-squares slope of ys against 0, 1, 2, ... (per step); nan for fewer than 2 points."""
    n = len(ys)
    if n < 2:
        return float("nan")
    mx, my = (n - 1) / 2, sum(ys) / n
    return sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sum((i - mx) ** 2 for i in range(n))


def warm_up(server: Server, texts: Texts, n: int = 3) -> None:
    """A few scores from one client: waits for the model load and compiles the first paths (one session)."""
    client = new_client(server.url)
    try:
        for _ in range(n):
            r = score(client, *texts.next())
            if not r["ok"]:
                raise RuntimeError(f"warm-up request failed: {r['error']}\n{server.log_tail()}")
    finally:
        client.close()


# ----------------------------------------------------------------------------- phases


class RssSampler(threading.Thread):
    """Samples the server's RSS every `every` seconds until stopped; keeps the maximum."""

    def __init__(self, server: Server, every: float = 1.0):
        super().__init__(daemon=True)
        self.server, self.every, self.max_mib, self.stop_event = server, every, 0.0, threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.max_mib = max(self.max_mib, self.server.rss_mib())
            except (OSError, KeyError):
                return
            self.stop_event.wait(self.every)


def phase_load(server: Server, texts: Texts, clients: int, requests: int, budget_s: float) -> dict:
    """`clients` threads, each its own Client (session), `requests` scores each, all at once."""
    conns = [new_client(server.url) for _ in range(clients)]
    deadline = time.perf_counter() + budget_s
    rss_before, sampler = server.rss_mib(), RssSampler(server)

    def worker(client) -> list[dict]:
        out = []
        for _ in range(requests):
            if time.perf_counter() > deadline:
                break
            out.append(score(client, *texts.next()))
        return out

    sampler.start()
    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(clients) as pool:
            results = [r for rs in pool.map(worker, conns) for r in rs]
    finally:
        wall = time.perf_counter() - t0
        sampler.stop_event.set()
        for c in conns:
            c.close()
    stats = latency_stats(results)
    ok = stats["requests"] - stats["failures"]
    return {"clients": clients, "requests_per_client": requests, **stats, "wall_s": wall,
            "throughput_rps": ok / wall if wall else 0.0, "stopped_early": stats["requests"] < clients * requests,
            "rss_before_mib": rss_before, "rss_after_mib": server.rss_mib(),
            "rss_max_sampled_mib": max(sampler.max_mib, rss_before)}


def rss_summary(server: Server, rss: list[float], unit: str) -> dict:
    last = rss[-200:]
    return {"rss_start_mib": rss[0] if rss else server.rss_mib(), "rss_end_mib": server.rss_mib(),
            "rss_every_50_mib": rss[::50] + ([rss[-1]] if rss and (len(rss) - 1) % 50 else []),
            f"rss_slope_last_{len(last)}_mib_per_{unit}": slope(last),
            f"rss_growth_last_{len(last)}_mib": (last[-1] - last[0]) if last else 0.0}


def phase_soak_one(server: Server, texts: Texts, n: int, budget_s: float) -> dict:
    """`n` sequential scores from one client (one session); RSS after each."""
    client, results, rss = new_client(server.url), [], [server.rss_mib()]
    deadline = time.perf_counter() + budget_s
    try:
        for _ in range(n):
            if time.perf_counter() > deadline:
                break
            results.append(score(client, *texts.next()))
            rss.append(server.rss_mib())
    finally:
        client.close()
    return {**latency_stats(results), **rss_summary(server, rss, "request"), "stopped_early": len(results) < n}


def phase_soak_new(server: Server, texts: Texts, n: int, budget_s: float, sessions_before: int,
                   cap: int) -> dict:
    """`n` scores, each from a new Client (a new session); RSS after each, slopes before/after the session cap."""
    results, rss, setup = [], [server.rss_mib()], []
    deadline = time.perf_counter() + budget_s
    for _ in range(n):
        if time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        try:
            client = new_client(server.url)
        except Exception as err:  # noqa: BLE001 - a client that cannot connect is a failure
            results.append({"s": time.perf_counter() - t0, "ok": False, "error": f"connect: {type(err).__name__}"})
            rss.append(server.rss_mib())
            continue
        setup.append(time.perf_counter() - t0)
        try:
            results.append(score(client, *texts.next()))
        finally:
            client.close()
        rss.append(server.rss_mib())
    # rss[k] is after this phase's k-th new session, i.e. sessions_before + k sessions in all
    at_cap = max(0, min(len(rss) - 1, cap - sessions_before))
    out = {**latency_stats(results), **rss_summary(server, rss, "session"), "stopped_early": len(results) < n,
           "client_setup_p50_s": quantile(setup, 0.5), "sessions_before": sessions_before,
           "sessions_after": sessions_before + len(results), "session_cap": cap,
           "cap_reached_at_session": at_cap if sessions_before + len(results) > cap else None,
           "rss_slope_before_cap_mib_per_session": slope(rss[:at_cap + 1]),
           "rss_slope_after_cap_mib_per_session": slope(rss[at_cap:]) if len(rss) - at_cap > 2 else float("nan")}
    return out


def phase_downloads(server: Server, texts: Texts, n: int) -> dict:
    """One session scores once, then asks for `n` downloads; bytes written per call."""
    before = server.disk()
    client = new_client(server.url)
    failures = 0
    try:
        first = score(client, *texts.next())
        for _ in range(n if first["ok"] else 0):
            job = client.submit(api_name="/downloads")
            try:
                job.result(timeout=REQUEST_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - counted
                failures += 1
    finally:
        client.close()
    after = server.disk()
    grad = after["gradio_temp"]["bytes"] - before["gradio_temp"]["bytes"]
    app_b = after["app_files"]["bytes"] - before["app_files"]["bytes"]
    return {"calls": n, "failures": failures, "before": before, "after": after,
            "gradio_temp_bytes_per_call": grad / n if n else 0, "app_files_bytes_per_call": app_b / n if n else 0}


# ----------------------------------------------------------------------------- report


def table(title: str, rows: list[tuple[str, object]]) -> None:
    print(f"\n{title}\n" + "-" * len(title))
    for name, value in rows:
        shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}" if isinstance(value, int) else str(value)
        print(f"  {name:<44} {shown}")


def latency_rows(d: dict) -> list[tuple[str, object]]:
    return [("requests", d["requests"]), ("failures", d["failures"]), ("session mismatches", d["mismatches"]),
            ("mean tokens scored", round(d["mean_tokens"], 1)), ("latency p50 (s)", d["p50_s"]),
            ("latency p95 (s)", d["p95_s"]), ("latency max (s)", d["max_s"])] + \
           ([("errors", d["errors"])] if d["errors"] else [])


def print_report(res: dict) -> None:
    load = res["load"]
    table(f"1. Load: {load['clients']} clients x {load['requests_per_client']} requests", latency_rows(load) + [
        ("wall (s)", load["wall_s"]), ("throughput (req/s)", load["throughput_rps"]),
        ("server RSS before / after / max (MiB)",
         f"{load['rss_before_mib']:.1f} / {load['rss_after_mib']:.1f} / {load['rss_max_sampled_mib']:.1f}")])
    for key, title, unit in (("soak_one_session", "2. Soak, one session", "request"),
                             ("soak_new_sessions", "3. Soak, a new session per request", "session"),
                             ("cap_demo", "4. New sessions past a lowered cap", "session")):
        d = res.get(key)
        if not d:
            continue
        rows = latency_rows(d) + [("RSS start / end (MiB)", f"{d['rss_start_mib']:.1f} / {d['rss_end_mib']:.1f}"),
                                  ("RSS every 50 (MiB)", " ".join(f"{x:.0f}" for x in d["rss_every_50_mib"]))]
        rows += [(k.replace("_", " "), v) for k, v in d.items() if k.startswith(("rss_slope_last", "rss_growth_last"))]
        if unit == "session":
            rows += [("sessions on the server before / after", f"{d['sessions_before']} / {d['sessions_after']}"),
                     ("session cap", d["session_cap"]), ("cap reached at this phase's session", d["cap_reached_at_session"]),
                     ("RSS slope before cap (MiB/session)", d["rss_slope_before_cap_mib_per_session"]),
                     ("RSS slope after cap (MiB/session)", d["rss_slope_after_cap_mib_per_session"]),
                     ("client setup p50 (s)", d["client_setup_p50_s"])]
        table(title, rows)
    disk = res["disk"]
    table("5. Disk (bytes)", [
        ("gradio temp before / after scoring", f"{disk['before']['gradio_temp']['bytes']:,} / "
                                               f"{disk['after_scoring']['gradio_temp']['bytes']:,}"),
        ("app files before / after scoring", f"{disk['before']['app_files']['bytes']:,} / "
                                             f"{disk['after_scoring']['app_files']['bytes']:,}"),
        ("TMPDIR total before / after scoring", f"{disk['before']['tmpdir_total']['bytes']:,} / "
                                                f"{disk['after_scoring']['tmpdir_total']['bytes']:,}"),
        ("/downloads calls", disk["downloads"]["calls"]),
        ("gradio temp bytes per /downloads call", disk["downloads"]["gradio_temp_bytes_per_call"]),
        ("app files bytes per /downloads call", disk["downloads"]["app_files_bytes_per_call"]),
        ("left after the server exited (gradio, app)", f"{disk['after_exit']['gradio_temp']['bytes']:,}, "
                                                        f"{disk['after_exit']['app_files']['bytes']:,}"),
        ("server exit code", disk["exit_code"])])


# ----------------------------------------------------------------------------- main


def settings(args) -> dict:
    if args.quick:
        return {"clients": 4, "requests": 5, "soak_one": 30, "soak_new": 30, "cap": 10 if args.cap is None else args.cap,
                "downloads": 2}
    return {"clients": args.clients, "requests": args.requests, "soak_one": args.soak, "soak_new": args.soak,
            "cap": 50 if args.cap is None else args.cap, "downloads": 5}


def run_main_server(workdir: Path, cfg: dict, args, res: dict) -> None:
    from app.limits import MAX_SESSIONS

    texts = Texts(args.seed, args.words)
    server = Server(workdir / "main")
    try:
        res["startup_s"] = server.start()
        warm_up(server, texts)
        res["disk"] = {"before": server.disk()}
        print(f"server up on {server.url} (pid {server.proc.pid}), RSS {server.rss_mib():.0f} MiB", flush=True)
        res["load"] = phase_load(server, texts, cfg["clients"], cfg["requests"], args.phase_budget)
        print(f"load done: {res['load']['failures']} failures, p50 {res['load']['p50_s']:.2f} s", flush=True)
        res["soak_one_session"] = phase_soak_one(server, texts, cfg["soak_one"], args.phase_budget)
        print("soak (one session) done", flush=True)
        before = 1 + cfg["clients"] + 1  # warm-up, load clients, the one-session soak
        res["soak_new_sessions"] = phase_soak_new(server, texts, cfg["soak_new"], args.phase_budget, before,
                                                  MAX_SESSIONS)
        print("soak (new sessions) done", flush=True)
        res["disk"]["after_scoring"] = server.disk()
        res["disk"]["downloads"] = phase_downloads(server, texts, cfg["downloads"])
        res["server_rss_peak_mib"] = server.peak_mib()
    finally:
        code = server.stop()
        res.setdefault("disk", {}).update(exit_code=code, after_exit=server.disk())


def run_cap_server(workdir: Path, cfg: dict, args, res: dict) -> None:
    texts = Texts(args.seed + 1, args.words)
    server = Server(workdir / "capped", max_sessions=cfg["cap"])
    try:
        server.start()
        warm_up(server, texts)
        res["cap_demo"] = phase_soak_new(server, texts, 3 * cfg["cap"], args.phase_budget, 1, cfg["cap"])
        print("cap demo done", flush=True)
    finally:
        server.stop()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 4 clients x 5, soaks of 30, cap demo at 10")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=20, help="requests per client in the load phase")
    p.add_argument("--soak", type=int, default=300, help="requests in each soak")
    p.add_argument("--cap", type=int, default=None,
                   help="session cap of the second server (default 50, 10 with --quick; 0: skip that phase)")
    p.add_argument("--words", type=int, default=150, help="words per response (~200 tokens of the default RM)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phase-budget", type=float, default=900, help="seconds one phase may run before it stops")
    p.add_argument("--keep", action="store_true", help="keep the servers' temp folders and logs")
    p.add_argument("--out", default=None, help="JSON results (default: bench/results/hosting.json, "
                                               "hosting-quick.json with --quick)")
    args = p.parse_args(argv)
    args.out = args.out or str(ROOT / "bench" / "results" / ("hosting-quick.json" if args.quick else "hosting.json"))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = settings(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally-blocks stop the servers
    import gradio
    import gradio_client

    res = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "settings": cfg,
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "gradio": gradio.__version__,
                       "gradio_client": gradio_client.__version__, "loadavg_start": os.getloadavg()}}
    workdir = Path(tempfile.mkdtemp(prefix="bench-hosting-"))
    t0 = time.perf_counter()
    try:
        run_main_server(workdir, cfg, args, res)
        if cfg["cap"]:
            run_cap_server(workdir, cfg, args, res)
    finally:
        res["machine"]["loadavg_end"] = os.getloadavg()
        res["total_s"] = time.perf_counter() - t0
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(res)
    print(f"\nwrote {args.out} ({res['total_s']:.0f} s in all)")
    return 0 if res["load"]["failures"] == 0 and res["load"]["mismatches"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
