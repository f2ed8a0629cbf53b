"""RED vs sparse credit against a gold reward: the reward-KL frontier, critic-free training, steps to reach.

    python bench/bench_frontier.py all                # every run, then the report (~1.5 h on 2 CPU cores)
    python bench/bench_frontier.py runs --algos ppo   # only some: ppo, reinforce, ppo-fresh-critic
    python bench/bench_frontier.py report             # figures (HTML + PNG), bench/results/frontier.json, a table
    python bench/bench_frontier.py all --quick        # smoke run: 2 β, 1 seed, 6 steps (a minute or two)

Every run is `python -m red_core train` with the settings of the shipped runs (red_core.recipes.policy_red.BUDGET:
60 steps of 64 rollouts from assets/models/policy-base, RM assets/models/reward) and `--gold vader`, so each step
logs the proxy RM reward and the gold reward (VADER's compound score, which the RM was trained to imitate;
red_core/gold.py) of its own rollouts. Runs are resumable: rerunning `runs` skips finished runs and resumes the
others from their newest checkpoint. `--jobs 2` trains two runs at once (one torch thread each).

Definitions (fixed before looking at the numbers):
- smoothed value at step s: mean of steps s-W+1..s (W = 5); KL is Σ_t log π_old − log π_ref per response;
- a run's end point: its smoothed KL, RM reward and gold reward at the last step;
- matched KL: along each run's smoothed trajectory, gold (and proxy) reward interpolated linearly at the first
  time the smoothed KL reaches k; the frontier of a method and seed at k is the best of its β runs there
  (None when none of them reached k); RED − sparse is taken per seed, reported as mean and 95% t-interval;
- steps to reach: first step whose smoothed gold reward ≥ GOLD_TARGET while the smoothed KL ≤ KL_BUDGET, per
  run; per (algo, β) the median over seeds and how many seeds reached it (also for a lower target, see GOALS).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_train import rel, screenshot, smooth  # noqa: E402  (one smoothing and one screenshot for both benches)

from red_core.recipes import policy_red  # noqa: E402

RESULTS = policy_red.RESULTS_DIR
ALGOS = ("ppo", "reinforce", "ppo-fresh-critic")  # the last: PPO with a fresh value head (the critic ablation)
ALGO_TITLES = {"ppo": "PPO", "reinforce": "REINFORCE++", "ppo-fresh-critic": "PPO, fresh critic"}
METHODS = ("red", "sparse")
BETAS = (0.02, 0.05, 0.15, 0.5)
ABLATION_BETAS = (policy_red.BUDGET["kl_coef"],)  # the fresh-critic ablation: at the shipped β (0.05) only
SEEDS = (0, 1, 2)
WINDOW = 5
KL_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)  # nats per response
GOLD_TARGET = 0.25  # mean VADER compound of the rollouts (policy-base starts near 0.0)
KL_BUDGET = 3.0  # nats per response
# (gold target, KL budget) pairs for steps-to-reach: the first was fixed before the runs; the second was added after
# seeing that few runs reach 0.25 within 3 nats, so that the table says something about speed as well.
GOALS = ((GOLD_TARGET, KL_BUDGET), (0.10, KL_BUDGET))
T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776}  # two-sided 95% Student t quantiles by degrees of freedom
QUICK = dict(betas=(0.05, 0.5), seeds=(0,), steps=6, batch_size=16, minibatch_size=8)


def run_name(algo: str, method: str, beta: float, seed: int) -> str:
    return f"{algo}-{method}-b{beta:g}-s{seed}"


def run_config(out: Path, algo: str, method: str, beta: float, seed: int, quick: bool, progress: bool):
    budget = {k: QUICK[k] for k in ("steps", "batch_size", "minibatch_size")} if quick else {}
    algo_field = {"ppo": {}, "reinforce": {"algo": "reinforce"}, "ppo-fresh-critic": {"critic_init": "policy"}}[algo]
    return policy_red.run_config(method, seed, out / run_name(algo, method, beta, seed), kl_coef=beta, gold="vader",
                                 progress=progress, **algo_field, **budget)


def grid(args) -> list[tuple[str, str, float, int]]:
    """(algo, method, β, seed) of every run asked for; the critic ablation runs at the shipped β only."""
    seeds = QUICK["seeds"] if args.quick else tuple(args.seeds or SEEDS)

    def betas(algo: str) -> tuple:
        if args.quick:
            return QUICK["betas"]
        return tuple(args.betas or (ABLATION_BETAS if algo == "ppo-fresh-critic" else BETAS))

    return [(a, m, b, s) for a in args.algos for b in betas(a) for s in seeds for m in METHODS]


def runs_root(args) -> Path:
    return policy_red.RUNS_DIR / ("frontier-quick" if args.quick else "frontier")


def results_name(args) -> str:
    return "frontier-quick" if args.quick else "frontier"


# ----------------------------------------------------------------------------- runs


def _train_one(job) -> str:
    from red_core.train import train

    out, algo, method, beta, seed, quick, progress = job
    cfg = run_config(out, algo, method, beta, seed, quick, progress)
    if policy_red.finished(cfg.out):
        return f"{run_name(algo, method, beta, seed)}: done before"
    t0 = time.time()
    f = train(cfg)["final"]
    return (f"{run_name(algo, method, beta, seed)}: {time.time() - t0:.0f}s, RM {f['reward_mean']:+.3f}, gold "
            f"{f['gold_mean']:+.3f}, KL {f['kl']:.2f}")


def do_runs(args) -> None:
    root = runs_root(args)
    policy_red.make_runs_dir(policy_red.RUNS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    jobs = [(root, *g, args.quick, not args.quiet and args.jobs == 1) for g in grid(args)]
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, line in enumerate(pool.map(_train_one, jobs), 1):
            print(f"[{i}/{len(jobs)} {time.time() - t0:.0f}s] {line}", flush=True)
    print(f"{len(jobs)} runs in {time.time() - t0:.0f}s with {args.jobs} job(s)")


# ----------------------------------------------------------------------------- analysis


def load(args) -> dict:
    from red_core.train import read_metrics

    curves = {}
    for key in grid(args):
        rows = read_metrics(runs_root(args) / run_name(*key))
        if rows:
            curves[key] = {k: np.array([r[k] for r in rows], float) for k in ("reward_mean", "gold_mean", "kl")}
    return curves


def at_kl(kl: np.ndarray, y: np.ndarray, k: float) -> float | None:
    """y interpolated at the first point where the (smoothed) KL trajectory reaches k; None if it never does."""
    ok = np.isfinite(kl) & np.isfinite(y)
    kl, y = kl[ok], y[ok]
    hit = np.nonzero(kl >= k)[0]
    if not len(hit):
        return None
    i = int(hit[0])
    if i == 0:
        return float(y[0]) if kl[0] == k else None  # starts above k: the crossing is not observed
    f = (k - kl[i - 1]) / (kl[i] - kl[i - 1])
    return float(y[i - 1] + f * (y[i] - y[i - 1]))


def steps_to_reach(gold: np.ndarray, kl: np.ndarray, target: float = GOLD_TARGET, budget: float = KL_BUDGET):
    """First step (1-based) with smoothed gold >= target and smoothed KL <= budget; None if never."""
    g, k = smooth(gold, WINDOW), smooth(kl, WINDOW)
    hit = np.nonzero(np.nan_to_num(g, nan=-np.inf) >= target)[0]
    hit = [i for i in hit if k[i] <= budget]
    return int(hit[0]) + 1 if hit else None


def interval(diffs: list[float]) -> dict:
    """Mean and two-sided 95% t-interval over seeds (None when fewer than 2)."""
    d = np.asarray(diffs, float)
    out: dict = {"n": len(d), "mean": float(d.mean()) if len(d) else None, "per_seed": d.tolist()}
    if len(d) >= 2:
        half = T_975.get(len(d) - 1, 1.96) * d.std(ddof=1) / np.sqrt(len(d))
        out["ci95"] = [float(d.mean() - half), float(d.mean() + half)]
    return out


def analyse(curves: dict, args) -> dict:
    ends = []
    for (algo, method, beta, seed), c in curves.items():
        s = {k: smooth(v, WINDOW) for k, v in c.items()}
        ends.append({"algo": algo, "method": method, "beta": beta, "seed": seed, "steps": len(c["kl"]),
                     "kl": float(s["kl"][-1]), "reward": float(s["reward_mean"][-1]), "gold": float(s["gold_mean"][-1]),
                     "gold_start": float(c["gold_mean"][0]), "reward_start": float(c["reward_mean"][0]),
                     "steps_to_reach": {f"{t:g}@{b:g}": steps_to_reach(c["gold_mean"], c["kl"], t, b) for t, b in GOALS}})
    algos = sorted({e["algo"] for e in ends}, key=ALGOS.index)
    seeds = sorted({e["seed"] for e in ends})
    matched: dict = {}
    for algo in algos:
        for what, key in (("gold", "gold_mean"), ("reward", "reward_mean")):
            rows = []
            for k in KL_GRID:
                best = {}
                for method in METHODS:
                    for seed in seeds:
                        vals = [at_kl(smooth(c["kl"], WINDOW), smooth(c[key], WINDOW), k)
                                for (a, m, _, s), c in curves.items() if (a, m, s) == (algo, method, seed)]
                        vals = [v for v in vals if v is not None]
                        best[(method, seed)] = max(vals) if vals else None
                both = [s for s in seeds if best[("red", s)] is not None and best[("sparse", s)] is not None]
                rows.append({"kl": k, "red": [best[("red", s)] for s in seeds], "sparse": [best[("sparse", s)] for s in seeds],
                             "red_minus_sparse": interval([best[("red", s)] - best[("sparse", s)] for s in both])})
            matched[f"{algo}:{what}"] = rows
    reach = []
    for target, budget in GOALS:
        goal = f"{target:g}@{budget:g}"
        for algo in algos:
            for beta in sorted({e["beta"] for e in ends}):
                for method in METHODS:
                    st = [e["steps_to_reach"][goal] for e in ends
                          if (e["algo"], e["beta"], e["method"]) == (algo, beta, method)]
                    got = [s for s in st if s is not None]
                    reach.append({"goal": goal, "gold_target": target, "kl_budget": budget, "algo": algo, "beta": beta,
                                  "method": method, "per_seed": st, "reached": len(got),
                                  "median": float(np.median(got)) if got else None})
    return {"window": WINDOW, "kl_grid": list(KL_GRID), "goals": [f"{t:g}@{b:g}" for t, b in GOALS],
            "budget": {**policy_red.BUDGET, **({k: QUICK[k] for k in ("steps", "batch_size")} if args.quick else {})},
            "betas": sorted({e["beta"] for e in ends}), "seeds": seeds, "algos": algos, "ends": ends,
            "matched_kl": matched, "steps_to_reach": reach}


# ----------------------------------------------------------------------------- figures and report


def figure(curves: dict, res: dict):
    """Per algorithm: proxy RM reward vs KL and gold reward vs KL; one trajectory per run (seed mean per β)."""
    from plotly.subplots import make_subplots

    from red_core.viz import METHOD_COLOURS

    algos = res["algos"]
    titles = [f"{ALGO_TITLES[a]}: {w} reward vs KL" for a in algos
              for w in ("proxy (RM)", "gold (VADER)")]
    fig = make_subplots(rows=len(algos), cols=2, subplot_titles=titles, vertical_spacing=0.14)
    dash = {b: d for b, d in zip(res["betas"], ("solid", "dash", "dot", "dashdot", "longdash"))}
    for r, algo in enumerate(algos, 1):
        for col, key in ((1, "reward_mean"), (2, "gold_mean")):
            for method in METHODS:
                for beta in res["betas"]:
                    runs = [c for (a, m, b, _), c in curves.items() if (a, m, b) == (algo, method, beta)]
                    if not runs:
                        continue
                    n = min(len(c["kl"]) for c in runs)
                    kl = np.mean([smooth(c["kl"][:n], WINDOW) for c in runs], axis=0)
                    y = np.mean([smooth(c[key][:n], WINDOW) for c in runs], axis=0)
                    fig.add_scatter(x=kl, y=y, mode="lines+markers", marker={"size": 3},
                                    line={"color": METHOD_COLOURS[method], "dash": dash[beta], "width": 2},
                                    name=f"{'RED' if method == 'red' else 'sparse'} β={beta:g}",
                                    legendgroup=f"{method}{beta}", showlegend=(r, col) == (1, 1), row=r, col=col)
            fig.update_xaxes(title_text="KL to policy-base (nats per response)", row=r, col=col, gridcolor="#eee")
            fig.update_yaxes(title_text="mean RM reward" if col == 1 else "mean VADER compound", row=r, col=col,
                             gridcolor="#eee")
    fig.update_layout(height=420 * len(algos), width=1150, plot_bgcolor="#fff", legend={"x": 1.02, "y": 1},
                      margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      title={"text": f"Reward–KL frontier from policy-base: β sweep, mean of {len(res['seeds'])} seed(s), "
                                     f"smoothed over {WINDOW} steps (line style = β)", "y": 0.995})
    return fig


def do_report(args) -> dict:
    curves = load(args)
    if not curves:
        raise SystemExit(f"no runs in {rel(runs_root(args))}; run `python bench/bench_frontier.py runs` first")
    res = analyse(curves, args)
    name = results_name(args)
    fig = figure(curves, res)
    html = RESULTS / f"{name}.html"
    fig.write_html(html, include_plotlyjs="directory", full_html=True)
    bare = RESULTS / f".tmp-{name}.html"
    fig.write_html(bare, include_plotlyjs=True, full_html=True, config={"displayModeBar": False, "staticPlot": True})
    if screenshot(bare, RESULTS / f"{name}.png", size=(1160, 420 * len(res["algos"]) + 10)):
        res["figure_png"] = rel(RESULTS / f"{name}.png")
    bare.unlink()
    res["figure_html"] = rel(html)
    (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1) + "\n")
    print_report(res)
    return res


def _f(v, fmt="+.3f") -> str:
    return "—" if v is None else format(v, fmt)


def print_report(res: dict) -> None:
    print(f"end points (smoothed over the last {res['window']} steps), mean over seeds:")
    goals = " | ".join(f"steps to gold ≥ {g.replace('@', ' at KL ≤ ')}" for g in res["goals"])
    print(f"  algo      | method | β     | KL     | RM reward | gold   | {goals}")
    for algo in res["algos"]:
        for beta in res["betas"]:
            for method in METHODS:
                es = [e for e in res["ends"] if (e["algo"], e["beta"], e["method"]) == (algo, beta, method)]
                if not es:
                    continue
                st = [next(r for r in res["steps_to_reach"] if (r["goal"], r["algo"], r["beta"], r["method"]) ==
                           (g, algo, beta, method)) for g in res["goals"]]
                print(f"  {algo:9} | {method:6} | {beta:<5g} | {np.mean([e['kl'] for e in es]):6.2f} | "
                      f"{np.mean([e['reward'] for e in es]):+9.3f} | {np.mean([e['gold'] for e in es]):+.3f} | " +
                      " | ".join(f"median {_f(r['median'], 'g')} ({r['reached']}/{len(es)} seeds)" for r in st))
    for key, rows in res["matched_kl"].items():
        print(f"{key} at matched KL: best over β per seed, RED − sparse (mean, 95% t-interval over seeds)")
        for row in rows:
            d = row["red_minus_sparse"]
            ci = d.get("ci95")
            print(f"  KL {row['kl']:<4g}: RED {[_f(v) for v in row['red']]} sparse {[_f(v) for v in row['sparse']]} "
                  f"diff {_f(d['mean'])}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "") + f" (n={d['n']})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("runs", "report", "all"))
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 β, 1 seed, 6 short steps, own folders")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS,
                        help="ppo and reinforce at every β; ppo-fresh-critic (the critic ablation) at β = 0.05")
    parser.add_argument("--betas", nargs="+", type=float, help=f"KL coefficients (default: {BETAS})")
    parser.add_argument("--seeds", nargs="+", type=int, help=f"seeds (default: {SEEDS})")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (one torch thread each)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    for stage in ("runs", "report") if args.stage == "all" else (args.stage,):
        {"runs": do_runs, "report": do_report}[stage](args)


if __name__ == "__main__":
    main()
