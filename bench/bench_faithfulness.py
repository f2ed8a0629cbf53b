"""Faithfulness of word credit for every method, on the bundled offline models (a benchmark, not a test).

    python bench/bench_faithfulness.py [--quick] [--lexicon-texts 200] [--planted-texts 100]
                                       [--deletion-texts 100] [--ig-steps 32]

Texts: the "chosen" and "rejected" responses of assets/data/demo-pairs.jsonl, with their prompts.

  lexicon    default RM (assets/models/reward, trained to imitate VADER), texts WITHOUT "basically":
             Pearson r between a word's credit and its VADER lexicon valence, pooled over all words of all
             texts, (a) over words with a lexicon entry only and (b) over all words with valence 0 for words
             without an entry; top-word accuracy: the word with the largest |credit| has the largest
             |valence| (ties count as hits), among texts with at least one lexicon word.
  planted    biased RM (assets/models/reward-biased, planted +0.3 for the VADER-neutral "basically"), texts
             WITH "basically": top-1 hit rate (the largest positive credit is on "basically") and its mean
             rank (1 = top) in the credit order.
  deletion   default RM, the first --deletion-texts lexicon texts: AOPC over k = 1..5 deleted words
             (red_core.faithfulness.deletion_curve), a random baseline (10 seeded random orders per text) and,
             for texts of <= 10 words, the exhaustive best k-subset (the upper bound).
  time       median seconds per text of each method (meta["seconds"]: its share of the batched RED pass
             plus its own time).

All methods are asked for word-level results (granularity="word": occlusion deletes whole words; the others
are computed per token and summed per word). Intervals: percentile bootstrap over texts (1000 resamples);
RED vs each method: sign-flip permutation test on per-text differences (AOPC, hits, ranks) or a paired
bootstrap over texts (r); p < 0.05 decides win/lose, otherwise tie. Results: bench/results/faithfulness.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import red_core  # noqa: E402
from red_core import faithfulness as F  # noqa: E402
from red_core.corpus import word_key  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DATA = ROOT / "assets" / "data" / "demo-pairs.jsonl"
METHODS = ("red", "ig", "gxi", "occlusion", "abc", "uniform", "sparse")
PLANT = "basically"
_HAS_PLANT = re.compile(rf"\b{PLANT}\b", re.IGNORECASE)


def load_texts():
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    pairs = [(r["prompt"], r[k]) for r in rows for k in ("chosen", "rejected")]
    clean = [p for p in pairs if not _HAS_PLANT.search(p[1])]
    planted = [p for p in pairs if _HAS_PLANT.search(p[1])]
    return clean, planted


def credits(rm, pairs, method, ig_steps):
    """(list of (W,) word credit arrays, list of per-text seconds)."""
    params = {"steps": ig_steps} if method == "ig" else {}
    trs = red_core.token_rewards_batch(rm, [p for p, _ in pairs], [r for _, r in pairs], method=method,
                                       granularity="word", batch_size=16, **params)
    return [F.word_credit(tr) for tr in trs], [float(tr.meta["seconds"]) for tr in trs]


def pearson(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


# ----------------------------------------------------------------------------- lexicon


def lexicon_stats(pairs, word_credits, lexicon, n_boot=1000, seed=0):
    """Per-text word data, pooled r (lexicon words / all words), top-word hits; bootstrap over texts."""
    per_text = []  # (credit, valence, in_lexicon) per text
    for (_, resp), c in zip(pairs, word_credits):
        keys = [word_key(resp[s:e]) for s, e in F.word_spans(resp)]
        val = np.array([lexicon.get(k, 0.0) for k in keys])
        has = np.array([k in lexicon for k in keys])
        per_text.append((np.asarray(c, float), val, has))

    def pooled(idx):
        c = np.concatenate([per_text[i][0] for i in idx])
        v = np.concatenate([per_text[i][1] for i in idx])
        h = np.concatenate([per_text[i][2] for i in idx])
        return pearson(c[h], v[h]), pearson(c, v)

    hits = []
    for c, v, h in per_text:
        if h.any():
            hits.append(float(abs(v[int(np.argmax(np.abs(c)))]) == np.abs(v).max()))
    idx = np.arange(len(per_text))
    r_lex, r_all = pooled(idx)
    rng = np.random.default_rng(seed)
    boots = np.array([pooled(rng.integers(0, len(idx), len(idx))) for _ in range(n_boot)])  # (n_boot, 2)
    return {"r_lexicon_words": r_lex, "r_lexicon_words_ci": np.nanquantile(boots[:, 0], [0.025, 0.975]).tolist(),
            "r_all_words": r_all, "r_all_words_ci": np.nanquantile(boots[:, 1], [0.025, 0.975]).tolist(),
            "top_word_acc": F.bootstrap_ci(hits), "top_word_hits": hits, "boot_r": boots,
            "n_words_lexicon": int(sum(t[2].sum() for t in per_text)),
            "n_words": int(sum(len(t[0]) for t in per_text))}


# ----------------------------------------------------------------------------- planted word


def planted_stats(pairs, word_credits):
    hits, ranks = [], []
    for (_, resp), c in zip(pairs, word_credits):
        keys = [word_key(resp[s:e]) for s, e in F.word_spans(resp)]
        order = F.credit_order(c)
        rank = min(order.index(i) for i, k in enumerate(keys) if k == PLANT) + 1
        ranks.append(float(rank))
        hits.append(float(rank == 1 and c[order[0]] > 0))
    return {"top1": F.bootstrap_ci(hits), "mean_rank": F.bootstrap_ci(ranks), "hits": hits, "ranks": ranks}


# ----------------------------------------------------------------------------- report helpers


def verdict(p: float, diff: float, higher_better: bool = True) -> str:
    if not np.isfinite(p) or p >= 0.05:
        return "tie"
    return "win" if (diff > 0) == higher_better else "lose"


def fmt(ci) -> str:
    m, lo, hi = ci
    return f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20/15/15 texts, 3 random orders")
    ap.add_argument("--lexicon-texts", type=int, default=200)
    ap.add_argument("--planted-texts", type=int, default=100)
    ap.add_argument("--deletion-texts", type=int, default=100)
    ap.add_argument("--random-orders", type=int, default=10)
    ap.add_argument("--ig-steps", type=int, default=32)
    ap.add_argument("--k-max", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "faithfulness.json"))
    args = ap.parse_args(argv)
    if args.quick:
        args.lexicon_texts, args.planted_texts, args.deletion_texts, args.random_orders = 20, 15, 15, 3
        if args.out == str(RESULTS / "faithfulness.json"):
            args.out = str(RESULTS / "faithfulness-quick.json")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    t_start = time.perf_counter()
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    lexicon = SentimentIntensityAnalyzer().lexicon
    clean, planted = load_texts()
    lex_pairs = clean[:args.lexicon_texts]
    plant_pairs = planted[:args.planted_texts]
    del_pairs = lex_pairs[:args.deletion_texts]
    rm = red_core.load_reward_model(str(ROOT / "assets" / "models" / "reward"))
    rm_biased = red_core.load_reward_model(str(ROOT / "assets" / "models" / "reward-biased"))
    print(f"texts: lexicon {len(lex_pairs)} (of {len(clean)} without '{PLANT}'), planted {len(plant_pairs)} "
          f"(of {len(planted)}), deletion {len(del_pairs)}; ig steps {args.ig_steps}; k = 1..{args.k_max}")

    out: dict = {"config": {k: v for k, v in vars(args).items()}, "methods": {}, "lexicon_vocab_size": len(lexicon)}
    per: dict = {}
    for m in METHODS:
        t0 = time.perf_counter()
        lex_c, lex_sec = credits(rm, lex_pairs, m, args.ig_steps)
        pl_c, _ = credits(rm_biased, plant_pairs, m, args.ig_steps)
        lex = lexicon_stats(lex_pairs, lex_c, lexicon)
        pl = planted_stats(plant_pairs, pl_c)
        aopcs = [F.deletion_curve(rm, p, r, c, k_max=args.k_max)["aopc"] for (p, r), c in zip(del_pairs, lex_c)]
        ins = [F.insertion_curve(rm, p, r, c, k_max=args.k_max)["aopc"] for (p, r), c in zip(del_pairs, lex_c)]
        per[m] = {"lex": lex, "planted": pl, "aopc": aopcs, "insertion": ins, "credit": lex_c}
        out["methods"][m] = {
            "r_lexicon_words": lex["r_lexicon_words"], "r_lexicon_words_ci": lex["r_lexicon_words_ci"],
            "r_all_words": lex["r_all_words"], "r_all_words_ci": lex["r_all_words_ci"],
            "top_word_acc": lex["top_word_acc"], "planted_top1": pl["top1"], "planted_mean_rank": pl["mean_rank"],
            "aopc": F.bootstrap_ci(aopcs), "insertion_aopc": F.bootstrap_ci(ins),
            "median_seconds_per_text": statistics.median(lex_sec)}
        print(f"  {m:<9} done in {time.perf_counter() - t0:.1f}s")

    # random baseline and the exhaustive best, per deletion text
    rand = [F.random_baseline(rm, p, r, k_max=args.k_max, n=args.random_orders, seed=i)["aopc"]
            for i, (p, r) in enumerate(del_pairs)]
    rng = np.random.default_rng(0)  # insertion in random word orders: the floor for the insertion AOPC
    rand_ins = [float(np.mean([F.insertion_curve(rm, p, r, rng.standard_normal(len(F.word_spans(r))),
                                                 k_max=args.k_max)["aopc"] for _ in range(args.random_orders)]))
                for p, r in del_pairs]
    out["random_insertion_aopc"] = F.bootstrap_ci(rand_ins)
    short = [i for i, (_, r) in enumerate(del_pairs) if len(F.word_spans(r)) <= 10]
    best = [F.best_deletion(rm, *del_pairs[i], k_max=args.k_max)["aopc"] for i in short]
    out["random_aopc"] = F.bootstrap_ci(rand)
    out["short_texts"] = len(short)
    out["best_aopc_short"] = F.bootstrap_ci(best)
    out["random_aopc_short"] = F.bootstrap_ci([rand[i] for i in short])
    for m in METHODS:
        a = per[m]["aopc"]
        out["methods"][m]["aopc_short"] = F.bootstrap_ci([a[i] for i in short])
        out["methods"][m]["aopc_short_vs_best"] = float(np.mean([a[i] for i in short]) / np.mean(best)) if best else None
        out["methods"][m]["aopc_vs_random"] = F.paired_test(a, rand)

    # RED vs each method
    comps: dict = {}
    red = per["red"]
    for m in METHODS[1:]:
        o = per[m]
        d_boot = red["lex"]["boot_r"] - o["lex"]["boot_r"]  # same resamples (seed 0): a paired bootstrap
        dr = [red["lex"]["r_lexicon_words"] - o["lex"]["r_lexicon_words"],
              red["lex"]["r_all_words"] - o["lex"]["r_all_words"]]
        p_r = [float(min(1.0, 2 * min(np.nanmean(d_boot[:, j] <= 0), np.nanmean(d_boot[:, j] >= 0)))) for j in (0, 1)]
        c = {"r_lexicon_words": {"diff": dr[0], "p": p_r[0]}, "r_all_words": {"diff": dr[1], "p": p_r[1]},
             "top_word_acc": F.paired_test(red["lex"]["top_word_hits"], o["lex"]["top_word_hits"]),
             "planted_top1": F.paired_test(red["planted"]["hits"], o["planted"]["hits"]),
             "planted_mean_rank": F.paired_test(red["planted"]["ranks"], o["planted"]["ranks"]),
             "aopc": F.paired_test(red["aopc"], o["aopc"]),
             "insertion_aopc": F.paired_test(red["insertion"], o["insertion"])}
        for key, cc in c.items():
            diff = cc["diff"] if "diff" in cc else cc["mean_diff"]
            cc["red"] = verdict(cc["p"], diff, higher_better=key != "planted_mean_rank")
        comps[m] = c
    out["red_vs"] = comps
    out["total_seconds"] = time.perf_counter() - t_start

    # ---------------------------------------------------------------- report
    M = out["methods"]
    print("\nFaithfulness (95% bootstrap intervals over texts)")
    print(f"{'method':<10}{'r lex words':>22}{'r all words':>22}{'top-word acc':>26}{'planted top-1':>26}"
          f"{'planted rank':>26}{'deletion AOPC':>26}{'s/text':>9}")
    for m in METHODS:
        x = M[m]
        r1 = f"{x['r_lexicon_words']:+.3f} [{x['r_lexicon_words_ci'][0]:+.2f},{x['r_lexicon_words_ci'][1]:+.2f}]"
        r2 = f"{x['r_all_words']:+.3f} [{x['r_all_words_ci'][0]:+.2f},{x['r_all_words_ci'][1]:+.2f}]"
        print(f"{m:<10}{r1:>22}{r2:>22}{fmt(x['top_word_acc']):>26}{fmt(x['planted_top1']):>26}"
              f"{fmt(x['planted_mean_rank']):>26}{fmt(x['aopc']):>26}{x['median_seconds_per_text']:>9.4f}")
    print(f"{'random':<10}{'':>22}{'':>22}{'':>26}{'':>26}{'':>26}{fmt(out['random_aopc']):>26}")
    print("\nInsertion AOPC (from R(x, ∅), the top-k credited words put back in text order, k = 1..5):")
    for m in METHODS:
        print(f"  {m:<10} {fmt(M[m]['insertion_aopc'])}")
    print(f"  {'random':<10} {fmt(out['random_insertion_aopc'])}")
    print(f"\nDeletion on the {len(short)} texts of <= 10 words: exhaustive best AOPC {fmt(out['best_aopc_short'])}, "
          f"random {fmt(out['random_aopc_short'])}")
    for m in METHODS:
        x = M[m]
        frac = x["aopc_short_vs_best"]
        print(f"  {m:<10} AOPC {fmt(x['aopc_short'])}  = {frac:.0%} of best" if frac is not None else f"  {m}")
    print("\nRED vs each method (win / tie / lose for RED; p from paired tests, p < 0.05 decides):")
    keys = ("r_lexicon_words", "r_all_words", "top_word_acc", "planted_top1", "planted_mean_rank", "aopc",
            "insertion_aopc")
    print(f"{'vs':<10}" + "".join(f"{k:>20}" for k in keys))
    for m, c in comps.items():
        print(f"{m:<10}" + "".join(f"{c[k]['red'] + ' p=' + format(c[k]['p'], '.3f'):>20}" for k in keys))
    for m, c in comps.items():
        tally = {v: [k for k in keys if c[k]["red"] == v] for v in ("win", "tie", "lose")}
        print(f"  RED vs {m:<10} wins on {', '.join(tally['win']) or 'nothing'}; ties on "
              f"{', '.join(tally['tie']) or 'nothing'}; loses on {', '.join(tally['lose']) or 'nothing'}")
    print("Deletion AOPC of each method against random word orders (paired, same texts):")
    for m in METHODS:
        t = out["methods"][m]["aopc_vs_random"]
        print(f"  {m:<10} AOPC vs random orders: {t['mean_diff']:+.3f} (p={t['p']:.3f})")
    print(f"\ntotal {out['total_seconds']:.0f}s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"wrote {args.out}")
    return out


if __name__ == "__main__":
    main()
