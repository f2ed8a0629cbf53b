"""What `python -m red_core score` and `python -m red_core scan` share: the model and method flags, their checks,
SIGTERM handled like Ctrl-C, and scoring that retries a failed batch row by row.

Each command adds its own flags (input, output, shards...) and calls these for the rest, so a flag means
the same in both and is checked the same way, before anything is written.
"""

from __future__ import annotations

import argparse
import contextlib
import signal

from red_core.rows import UsageError

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130  # both commands' exit status


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--reward-model and how to load it (device, dtype, output index, input format, the two opt-ins)."""
    p.add_argument("--reward-model", default=None, help="hub id or local folder (default: assets/models/reward)")
    p.add_argument("--device", default=None, help="cpu, cuda, or auto (default)")
    p.add_argument("--dtype", default=None, help="float32 (CPU default), bfloat16, float16, auto")
    p.add_argument("--label-index", type=int, default=None, help="which output is the reward, for RMs with several")
    p.add_argument("--input-format", default="auto", choices=["auto", "concat", "pair"],
                   help="auto: chat template if the RM has one, else prompt+response; pair: tokenizer text pairs")
    p.add_argument("--no-chat-template", action="store_true", help="same as --input-format concat")
    p.add_argument("--allow-pickle", action="store_true", help="allow .bin (pickle) weights; only for trusted sources")
    p.add_argument("--trust-remote-code", action="store_true", help="run the model repository's own code; only if trusted")


def add_method_args(p: argparse.ArgumentParser, batch_help: str = "rows per forward batch") -> None:
    """The credit method and its parameters, the unit, and the batch size."""
    p.add_argument("--method", default="red", help="credit method: red, sparse, uniform, abc, ig, gxi, occlusion "
                   "(ig, gxi, occlusion: gradient/occlusion baselines that need the model)")
    p.add_argument("--beta-c", type=float, default=1.0, help="RED mixing weight beta_c (Eq. 7); 1 = pure RED")
    p.add_argument("--beta", type=float, default=0.5, help="ABC mixing weight beta")
    p.add_argument("--steps", type=int, default=None, help="ig: integration steps (Gauss-Legendre nodes; default 32)")
    p.add_argument("--no-prompt-baseline", action="store_true", help="paper's w/o-DI variant: R(x, ∅) taken as 0")
    p.add_argument("--granularity", default="token", help="token, word, sentence, or an integer k (chunks of k tokens)")
    p.add_argument("--batch-size", type=int, default=8, help=batch_help)


def parse_granularity(text: str):
    from red_core.align import LEVELS

    if text in LEVELS:
        return text
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise UsageError(f"--granularity must be token, word, sentence or a positive integer k (chunks of k tokens), "
                     f"got {text!r}")


def method_options(args) -> dict:
    """Keyword arguments of token_rewards_batch from the method flags, or a UsageError saying what to fix."""
    from red_core import methods

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be a positive integer (rows per batch), got {args.batch_size}")
    for flag, value in (("--beta-c", args.beta_c), ("--beta", args.beta)):
        if not 0.0 <= value <= 1.0:  # also catches nan
            raise UsageError(f"{flag} must be between 0 and 1, got {value}")
    params = {"beta_c": args.beta_c, "prompt_baseline": not args.no_prompt_baseline, "beta": args.beta,
              "steps": getattr(args, "steps", None)}
    try:
        params = methods.resolve_params(args.method, params)
    except ValueError as err:
        raise UsageError(f"--method: {err}") from err
    return {"method": args.method, "batch_size": args.batch_size, "granularity": parse_granularity(args.granularity),
            **params}


def model_options(args) -> dict:
    """Keyword arguments of load_reward_model from the model flags (also what the Ray actors receive)."""
    return {"name_or_path": args.reward_model, "device": args.device, "dtype": args.dtype,
            "label_index": args.label_index, "allow_pickle": args.allow_pickle,
            "trust_remote_code": args.trust_remote_code,
            "input_format": "concat" if args.no_chat_template else args.input_format}


def load_model(model_opts: dict):
    import red_core

    try:
        return red_core.load_reward_model(**model_opts)
    except ValueError as err:  # RewardModelError is a ValueError
        raise UsageError(str(err)) from err


def score_pairs(rm, prompts: list[str], responses: list[str], opts: dict) -> list:
    """TokenRewards or the exception, per (prompt, response). A batch that fails as a whole (out of memory, say)
    is scored again one by one, so one bad row cannot sink the others."""
    import red_core

    try:
        return red_core.token_rewards_batch(rm, prompts, responses, on_error="return", **opts)
    except Exception as err:  # noqa: BLE001 - reported per row
        if len(prompts) == 1:
            return [err]
        return [score_pairs(rm, [p], [r], opts)[0] for p, r in zip(prompts, responses)]


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (kill, job schedulers) stops the run like Ctrl-C, so the clean-up runs."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
