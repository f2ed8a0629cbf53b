"""Command line: `python -m app [--reward-model M] [--policy P] [--host H] [--port N] [--share] [--offline] [--public]`.

Local mode (the default) lets the page load any folder or hub id; public mode (`--public`, on by
itself when SPACE_ID is set, as on a Hugging Face Space; `--no-public` turns it off) offers only the
bundled models and app/allowlist.json (see app/hosting.py).

Starts the app on the bundled default models (assets/models/) with no network. The default reward
model loads in a background thread while the server starts, so the page is up sooner and the first
Score waits only for what is left of the load; if it cannot be loaded, the app still serves and
says why (pick another model in the page).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m app", description="RED token rewards: the Gradio app.")
    p.add_argument("--reward-model", default=None,
                   help="reward model folder or hub id sessions start with (default: assets/models/reward)")
    p.add_argument("--policy", default=None, help="policy folder or hub id for the Policies tab "
                                                  "(default: assets/models/policy-base if present)")
    p.add_argument("--host", default=None, help="interface to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default: $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--offline", action="store_true", help="never contact the Hugging Face Hub (sets HF_HUB_OFFLINE=1)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per process (default: CPU cores / CONCURRENCY_LIMIT, at least 1)")
    p.add_argument("--no-preload", action="store_true", help="load the reward model on first use, not at start")
    p.add_argument("--public", action=argparse.BooleanOptionalAction, default=None,
                   help="public mode for strangers: visitors may load only the bundled models and the hub ids in "
                        "app/allowlist.json (default: on when SPACE_ID is set, i.e. on a Hugging Face Space)")
    return p.parse_args(argv)


def public_mode(args: argparse.Namespace) -> bool:
    """--public / --no-public if given, else on exactly when running on a Hugging Face Space (SPACE_ID set)."""
    return args.public if args.public is not None else bool(os.environ.get("SPACE_ID"))


def default_threads() -> int:
    """Each of the CONCURRENCY_LIMIT events that may run at once gets its share of the cores.

    On 2 shared cores, 2 torch threads per event made a small model 50x slower than 1 (threads
    spin-waiting on each other), so sharing out the cores beats giving each event all of them.
    """
    from app.limits import CONCURRENCY_LIMIT

    return max(1, (os.cpu_count() or 1) // CONCURRENCY_LIMIT)


def preload(ctx) -> None:
    """Load the default reward model into the cache; a failure is printed, and the page says it again."""
    t0 = time.perf_counter()
    try:
        ctx.reward_models.get(ctx.default_rm)
        print(f"reward model {ctx.default_rm.name} loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    except Exception as err:  # noqa: BLE001 - the app serves anyway; a Score shows the message
        print(f"warning: could not load the reward model: {err}", file=sys.stderr, flush=True)


def create(args: argparse.Namespace):
    """(context, demo) for parsed arguments; the default reward model starts loading unless --no-preload."""
    from app.context import AppContext
    from app.ui import build_app
    from red_core.models import set_threads

    set_threads(args.threads or default_threads())

    ctx = AppContext.create(args.reward_model, args.policy, public=public_mode(args))
    if not args.no_preload:  # in the background: the page is served while the weights load
        threading.Thread(target=preload, args=(ctx,), name="preload-reward-model", daemon=True).start()
    return ctx, build_app(ctx)


def _stop(signum, frame):
    """SIGTERM (docker stop, systemd) stops the server like Ctrl-C: gradio then closes itself and deletes its
    cached copies of download files; the app's own download folder goes at exit (atexit)."""
    raise KeyboardInterrupt


def main(argv=None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if args.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    from app.ui import launch_kwargs

    signal.signal(signal.SIGTERM, _stop)
    _, demo = create(args)
    demo.launch(**launch_kwargs(args.host, args.port, args.share))


if __name__ == "__main__":
    main()
