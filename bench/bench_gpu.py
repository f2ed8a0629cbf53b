"""RED's own overhead on a real model shape: RED / (tokenise + forward), measured in one process.

    python bench/bench_gpu.py            # Qwen3-0.6B-shaped RM, random weights, bf16, on a GPU
    python bench/bench_gpu.py --small    # a tiny model of the same family on CPU (a smoke run)

The reward model is built from a config (random weights: speed does not depend on the weights) with
the house tokenizer (red_core.testing), saved and loaded through `red_core.load_reward_model`. For
each case the same texts are scored two ways:

  plain   tokenise the texts (one batched tokenizer call), one forward pass, read the logits
  red     `red_core.token_rewards_batch`: encode, one pass with the head read at every position,
          the self-check, credit, one TokenRewards per row

Cases: one response of 512, 2k and 8k tokens, and a batch of 32 x 512. Each figure is the median of
paired runs (plain and red alternate), after a warm-up. The ratio red / plain is the overhead
(target <= 1.05); `(red - plain) / tokens` is the per-token cost of RED's own Python work.
Results go to bench/results/gpu.json (or gpu-small.json).
"""

from __future__ import annotations

import argparse
import json
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
from red_core import testing  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
WORDS = ("the film was not bad at all and the actors were wonderful but the ending felt slow "
         "I love sunny mornings and fresh coffee this is a terrible awful day").split()
QWEN3_0_6B = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                  num_key_value_heads=8, head_dim=128, vocab_size=151_936, max_position_embeddings=40_960)
SMALL = dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, head_dim=32, vocab_size=4096, max_position_embeddings=16_384)


def build_model(folder: Path, shape: dict) -> Path:
    """A Qwen3ForSequenceClassification with random weights and the house byte-level tokenizer, saved."""
    from transformers import Qwen3Config, Qwen3ForSequenceClassification

    tok = testing.byte_bpe_tokenizer(vocab_size=1000)
    tok.model_max_length = shape["max_position_embeddings"]
    cfg = Qwen3Config(**shape, num_labels=1, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = Qwen3ForSequenceClassification(cfg).to(torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    return testing.save_model(model, tok, folder)


def texts_of(rm, n_tokens: int, count: int) -> list[str]:
    """`count` different responses of exactly about n_tokens tokens each."""
    out = []
    for k in range(count):
        words = [WORDS[(k * 7 + i) % len(WORDS)] for i in range(n_tokens)]  # byte BPE: at least a token per word
        ids = rm.tokenizer(" ".join(words), add_special_tokens=False)["input_ids"][:n_tokens]
        out.append(rm.tokenizer.decode(ids))
    return out


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def plain(rm, prompts: list[str], responses: list[str]) -> None:
    """What scoring costs without RED: tokenise, one forward, read the logits."""
    batch = rm.tokenizer([p + r for p, r in zip(prompts, responses)], padding=True, return_tensors="pt").to(rm.device)
    with torch.no_grad():
        rm.model(**batch).logits.float().cpu()  # (B, 1)
    sync()


def red(rm, prompts: list[str], responses: list[str]) -> None:
    out = red_core.token_rewards_batch(rm, prompts, responses, batch_size=len(prompts))
    assert all(isinstance(tr, red_core.TokenRewards) for tr in out)
    sync()


def paired(rm, prompts, responses, repeats: int) -> dict:
    for _ in range(2):  # warm-up: kernels, allocator, tokenizer caches
        plain(rm, prompts, responses)
        red(rm, prompts, responses)
    times = {"plain": [], "red": []}
    for _ in range(repeats):
        for name, fn in (("plain", plain), ("red", red)):
            t0 = time.perf_counter()
            fn(rm, prompts, responses)
            times[name].append(time.perf_counter() - t0)
    p, r = statistics.median(times["plain"]), statistics.median(times["red"])
    tokens = sum(len(rm.tokenizer(x, add_special_tokens=False)["input_ids"]) for x in responses)
    return {"plain_s": p, "red_s": r, "ratio": r / p, "tokens": tokens,
            "overhead_us_per_token": 1e6 * (r - p) / tokens, "repeats": repeats}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="a tiny model on CPU instead of Qwen3-0.6B shapes")
    ap.add_argument("--repeats", type=int, default=None, help="paired runs per case (default 9, --small 5)")
    ap.add_argument("--out", default=None, help="results JSON (default bench/results/gpu.json or gpu-small.json)")
    args = ap.parse_args(argv)
    repeats = args.repeats or (5 if args.small else 9)
    cases = [("1 x 512", 1, 512), ("1 x 2048", 1, 2048), ("1 x 8192", 1, 8192), ("32 x 512", 32, 512)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_model(Path(tmp) / "rm", SMALL if args.small else QWEN3_0_6B)
        rm = red_core.load_reward_model(folder)
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({torch.get_num_threads()} threads)"
        print(f"model: Qwen3-shaped RM, {sum(p.numel() for p in rm.model.parameters()) / 1e6:.1f} M parameters, "
              f"{next(rm.model.parameters()).dtype}, {device}; path checked: causal={rm.kind == 'causal'}")
        results = {"device": device, "small": args.small, "cases": {}}
        print(f"{'case':>10} {'plain':>10} {'red':>10} {'red/plain':>10} {'overhead µs/token':>18}")
        for name, count, n in cases:
            prompts = ["Write a short review of the film you saw last night. "] * count
            res = paired(rm, prompts, texts_of(rm, n, count), repeats)
            results["cases"][name] = res
            print(f"{name:>10} {res['plain_s'] * 1e3:9.1f}ms {res['red_s'] * 1e3:9.1f}ms {res['ratio']:10.3f} "
                  f"{res['overhead_us_per_token']:18.2f}")
    out = Path(args.out) if args.out else RESULTS / ("gpu-small.json" if args.small else "gpu.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
