"""Benchmark the app: Explore handler latency (server side) and start-up time to the first served page.

    python bench/bench_app.py                       # default RM (assets/models/reward), writes bench/results/
    python bench/bench_app.py --reward-model DIR    # another reward model
    python bench/bench_app.py --screenshots         # also save screenshots of every tab (needs chromium)

Latency: `app.handlers.explore` called directly (scoring, heatmap, figure, numbers, table, three
download files) for a response of --tokens tokens, median over --runs runs after --warmup runs,
with the torch thread count the app itself uses. The gradio_client round trip is reported beside
it for reference. Start-up: `python -m app` in a fresh process until GET / answers 200, median of
--starts starts. Targets from the issue: < 150 ms and < 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "Tell me about your day.\n"
SENTENCES = ["It was a wonderful day and I am very happy.", "The train was late, which was annoying.",
             "Lunch with friends was great fun.", "Then it rained and the evening was dull.",
             "Still, I feel good about tomorrow."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def response_of(rm, n_tokens: int) -> str:
    """A response of at least n_tokens tokens for this RM's tokenizer (sentences repeated)."""
    text, i = "", 0
    while len(rm.tokenizer(text, add_special_tokens=False)["input_ids"]) < n_tokens:
        text += ("" if not text else " ") + SENTENCES[i % len(SENTENCES)]
        i += 1
    return text


def quiet(*a, **k):
    pass


def bench_handler(args) -> dict:
    import torch

    import red_core
    from app import handlers
    from app.__main__ import default_threads
    from app.context import AppContext

    torch.set_num_threads(args.threads or default_threads())
    ctx = AppContext.create(args.reward_model)
    rm = ctx.reward_models.get(ctx.default_rm)
    response = response_of(rm, args.tokens)
    tr = red_core.token_rewards(rm, PROMPT, response)
    asked = len(rm.tokenizer(response, add_special_tokens=False)["input_ids"])
    for _ in range(args.warmup):
        handlers.explore(ctx, ctx.default_rm, PROMPT, response, progress=quiet)
    times, core = [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        red_core.token_rewards(rm, PROMPT, response)
        t1 = time.perf_counter()
        handlers.explore(ctx, ctx.default_rm, PROMPT, response, progress=quiet)
        t2 = time.perf_counter()
        core.append(t1 - t0)
        times.append(t2 - t1)
    out = {"model": str(ctx.default_rm.name), "model_kind": rm.kind, "model_max_length": rm.max_length,
           "response_chars": len(response), "tokens_requested": args.tokens, "tokens_scored": len(tr),
           "truncated": any("cut" in w for w in tr.warnings), "torch_threads": torch.get_num_threads(),
           "runs": args.runs, "explore_handler_ms_median": 1000 * statistics.median(times),
           "explore_handler_ms_min": 1000 * min(times), "token_rewards_ms_median": 1000 * statistics.median(core)}
    if asked != len(tr):
        out["note"] = (f"the response is {asked} tokens; the model takes {rm.max_length} positions in all, so the app "
                       f"scores the first {len(tr)} and says so (a warning in the numbers panel)")
    # the same request through the server, for reference (includes queue, JSON, HTTP, client)
    from gradio_client import Client

    from app.ui import build_app, launch_kwargs

    demo = build_app(ctx)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs("127.0.0.1", free_port()))
    try:
        with tempfile.TemporaryDirectory() as downloads:
            client = Client(demo.local_url, verbose=False, download_files=downloads, analytics_enabled=False)
            rt = []
            for i in range(args.warmup + args.runs):
                t0 = time.perf_counter()
                client.predict(PROMPT, response, api_name="/token_rewards")
                if i >= args.warmup:
                    rt.append(time.perf_counter() - t0)
        out["client_round_trip_ms_median"] = 1000 * statistics.median(rt)
    finally:
        demo.close()
    return out


def bench_startup(args) -> dict:
    times = []
    for _ in range(args.starts):
        port = free_port()
        cmd = [sys.executable, "-m", "app", "--port", str(port), "--host", "127.0.0.1"]
        if args.reward_model:
            cmd += ["--reward-model", str(args.reward_model)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"`{' '.join(cmd)}` exited with {proc.returncode}")
                if time.perf_counter() - t0 > 120:
                    raise RuntimeError("the app did not answer within 120 s")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                        if r.status == 200 and b"gradio" in r.read().lower():
                            break
                except OSError:
                    time.sleep(0.05)
            times.append(time.perf_counter() - t0)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"starts": args.starts, "startup_s_median": statistics.median(times), "startup_s_all": times}


def screenshots(args, folder: Path) -> list[str]:
    """Explore after scoring an example, the step-through, and the three Compare views."""
    from playwright.sync_api import sync_playwright

    from app.context import AppContext
    from app.ui import build_app, launch_kwargs

    ctx = AppContext.create(args.reward_model)
    demo = build_app(ctx)
    demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs("127.0.0.1", free_port()))
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--no-first-run"]
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=flags)
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.goto(demo.local_url, wait_until="load")
            pg.wait_for_selector("#score-btn")

            def shot(name):
                pg.wait_for_timeout(600)
                pg.screenshot(path=str(folder / name), full_page=True)
                saved.append(name)

            pg.fill("#prompt textarea", "What do you think?\n")
            pg.fill("#response textarea", "The food was bad, but the music was great.")
            pg.click("#score-btn")
            pg.wait_for_selector("#heatmap .red-heatmap .tok")
            pg.wait_for_selector("#rewards-plot .js-plotly-plot")
            for k in range(2, 7):
                pg.click("#step-next")
                pg.wait_for_function("k => document.querySelector('#step-view').innerText.includes(`token ${k} of`)", arg=k)
            shot("app-explore.png")
            pg.get_by_role("tab", name="Compare").click()
            pg.click("#cmp-prompt textarea")
            pg.fill("#cmp-prompt textarea", "What do you think?\n")
            pg.fill("#cmp-response textarea", "The food was bad, but the music was great.")
            pg.click("#cmp-methods-btn")
            pg.wait_for_selector("#methods-view .red-panel")
            shot("app-compare-methods.png")
            pg.get_by_role("tab", name="Chosen vs rejected").click()
            pg.fill("#pair-prompt textarea", "What do you think?\n")
            pg.fill("#chosen textarea", "The food was bad, but the music was great.")
            pg.fill("#rejected textarea", "The music was great, but the food was bad.")
            pg.click("#pair-btn")
            pg.wait_for_selector("#pair-view .red-align")
            shot("app-compare-pair.png")
            browser.close()
    finally:
        demo.close()
    return saved


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reward-model", default=None, help="folder or hub id (default: assets/models/reward)")
    p.add_argument("--tokens", type=int, default=200, help="response length in tokens")
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--starts", type=int, default=3, help="fresh processes for the start-up time")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: as the app)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_app.json"))
    p.add_argument("--screenshots", action="store_true", help="save screenshots to bench/results/")
    p.add_argument("--skip-startup", action="store_true")
    args = p.parse_args(argv)
    if args.reward_model is None:
        from red_core.models import DEFAULT_REWARD_MODEL

        if not (DEFAULT_REWARD_MODEL / "config.json").exists():
            print(f"no default reward model in {DEFAULT_REWARD_MODEL}; build it (python -m red_core.recipes.defaults) "
                  f"or pass --reward-model", file=sys.stderr)
            return 2
    result = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    result["handler"] = bench_handler(args)
    print(json.dumps(result["handler"], indent=1), flush=True)
    if not args.skip_startup:
        result["startup"] = bench_startup(args)
        print(json.dumps(result["startup"], indent=1), flush=True)
    if args.screenshots:
        result["screenshots"] = screenshots(args, Path(args.out).parent)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    h = result["handler"]
    print(f"Explore handler: {h['explore_handler_ms_median']:.1f} ms median for {h['tokens_scored']} scored tokens "
          f"(target < 150 ms)" + (f"; start-up {result['startup']['startup_s_median']:.1f} s (target < 10 s)"
                                  if "startup" in result else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
