"""Scoring benchmark: RED's cost against plain scoring, measured in one process, medians of several runs.

    python bench/bench_scoring.py [--quick] [--out bench/results/scoring.json]

Causal RM (Llama-style, 6 layers, width 512, random weights; speed does not depend on the weights)
and a 512-token response:
  red / plain      RED (`token_rewards`, one pass + self-check + bookkeeping) vs one `model(...)` call
                   on the same ids. Target <= 1.10 (the limit is 1.0).
  naive / red      one model call per prefix vs RED. Target >= 100.
Encoder RM (BERT-style, 6 layers, width 512) and a 128-token response:
  batched prefix scoring vs a sequential per-prefix loop, and peak resident memory for two
  `max_batch_tokens` bounds (each measured in a fresh child process, since peak RSS only grows).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import red_core  # noqa: E402
from red_core import scoring, testing  # noqa: E402
from red_core.models import encode  # noqa: E402

WORDS = "the film was not bad at all and the actors were wonderful but the ending felt slow".split()


def text_of_tokens(rm, n_tokens: int) -> str:
    """A response of about n_tokens tokens under rm's tokenizer."""
    words, text = [], ""
    i = 0
    while len(rm.tokenizer(text, add_special_tokens=False)["input_ids"]) < n_tokens:
        words.append(WORDS[i % len(WORDS)])
        i += 1
        text = " ".join(words)
    ids = rm.tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
    return rm.tokenizer.decode(ids)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_causal(folder: str, n_tokens: int, repeats: int, naive: bool) -> dict:
    rm = red_core.load_reward_model(folder)
    prompt = "Write a short review of the film you saw last night. "
    response = text_of_tokens(rm, n_tokens)
    enc = encode(rm, prompt, response)
    ids = torch.tensor([enc.ids])

    def plain():
        with torch.no_grad():
            return rm.model(input_ids=ids).logits

    def red():
        red_core.token_rewards(rm, prompt, response)

    # Interleave the two so drifts in machine load hit both alike.
    t_plain, t_red = [], []
    plain()  # warm-up
    red()
    for _ in range(repeats):
        t_plain.append(timed(plain))
        t_red.append(timed(red))
    out = {"tokens_scored": enc.stop - enc.start, "input_tokens": len(enc.ids),
           "plain_s": statistics.median(t_plain), "red_s": statistics.median(t_red),
           # median of the ratios of back-to-back pairs: robust to load that drifts during the run
           "red_over_plain": statistics.median(r / p for r, p in zip(t_red, t_plain))}
    if naive:
        t0 = time.perf_counter()
        scoring.score_prefixes_loop(rm, enc)
        out["naive_s"] = time.perf_counter() - t0
        out["naive_over_red"] = out["naive_s"] / out["red_s"]
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _encoder_child(folder: str, n_tokens: int, max_batch_tokens: int, queue) -> None:
    """Score in a fresh process while a thread samples resident memory every 2 ms."""
    import threading

    torch.set_num_threads(2)
    rm = red_core.load_reward_model(folder)
    response = text_of_tokens(rm, n_tokens)
    enc = encode(rm, "Question: how was it? ", response)
    scoring.score_encodings(rm, [enc], max_batch_tokens=256)  # warm-up with small batches
    before, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    scoring.score_encodings(rm, [enc], max_batch_tokens=max_batch_tokens)
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    queue.put({"seconds": seconds, "rss_before_mb": before, "peak_growth_mb": peak[0] - before})


def _in_child(*args) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_encoder_child, args=(*args, q))
    p.start()
    res = q.get()
    p.join()
    return res


def bench_encoder(folder: str, n_tokens: int) -> dict:
    rm = red_core.load_reward_model(folder)
    response = text_of_tokens(rm, n_tokens)
    enc = encode(rm, "Question: how was it? ", response)
    t0 = time.perf_counter()
    scoring.score_encodings(rm, [enc])
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    scoring.score_prefixes_loop(rm, enc)
    loop = time.perf_counter() - t0
    return {"prefixes": enc.stop - enc.start + 1, "batched_s": batched, "loop_s": loop, "loop_over_batched": loop / batched,
            "memory": {str(b): _in_child(folder, n_tokens, b) for b in (2048, 65536)}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scoring.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    width, layers = (128, 2) if args.quick else (512, 6)
    n_causal, n_enc = (64, 32) if args.quick else (512, 128)
    with tempfile.TemporaryDirectory() as d:
        tok = testing.byte_bpe_tokenizer(vocab_size=2000)
        causal = str(testing.tiny_reward_model("llama", f"{d}/causal", layers=layers, width=width, tokenizer=tok))
        enc = str(testing.tiny_reward_model("bert", f"{d}/enc", layers=layers, width=width))
        res = {"machine": {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "torch": torch.__version__},
               "config": {"layers": layers, "width": width, "causal_tokens": n_causal, "encoder_tokens": n_enc},
               "causal": bench_causal(causal, n_causal, args.repeats, naive=True),
               "encoder": bench_encoder(enc, n_enc)}
    c, e = res["causal"], res["encoder"]
    print(f"causal RM ({layers} layers, width {width}), {c['tokens_scored']} response tokens, {c['input_tokens']} input tokens")
    print(f"  plain model call      {c['plain_s'] * 1000:8.1f} ms (median of {args.repeats})")
    print(f"  RED token_rewards     {c['red_s'] * 1000:8.1f} ms   red/plain = {c['red_over_plain']:.3f}  (target <= 1.10)")
    print(f"  naive per-prefix loop {c['naive_s'] * 1000:8.1f} ms   naive/red = {c['naive_over_red']:.0f}x (target >= 100)")
    print(f"encoder RM ({layers} layers, width {width}), {e['prefixes']} prefixes")
    print(f"  batched {e['batched_s'] * 1000:.0f} ms, sequential loop {e['loop_s'] * 1000:.0f} ms, loop/batched = {e['loop_over_batched']:.1f}x")
    for b, m in e["memory"].items():
        print(f"  max_batch_tokens={b:>6}: {m['seconds'] * 1000:.0f} ms, peak memory +{m['peak_growth_mb']:.0f} MB "
              f"while scoring (over {m['rss_before_mb']:.0f} MB resident)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(f"written to {args.out}")
    return res


if __name__ == "__main__":
    main()
