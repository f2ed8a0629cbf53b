"""RED vs sparse PPO on the offline default task: curves, steps-to-reach, time overhead.

    python bench/bench_train.py runs       # 3 seeds x {red, sparse} into bench/results/runs/ (~15-20 min, 2 cores)
    python bench/bench_train.py report     # curves (HTML + PNG), steps-to-reach ratio, step-time ratio
    python bench/bench_train.py timing     # RED vs sparse time on identical rollouts (controlled overhead)
    python bench/bench_train.py all        # everything above, in order
    python bench/bench_train.py runs --critic policy; ... report --critic policy   # ablation: fresh value head

Everything goes to bench/results/: train_* (small files only: metrics CSVs, JSON, figures) and the runs
themselves in bench/results/runs/ (checkpoints; its own .gitignore keeps them out of git). The shipped
policy, assets/models/policy-red, is RED seed 0 of these runs, evaluated and written with its card by
the recipe `python -m red_core.recipes.policy_red`, which reads these results.

Definitions (fixed before looking at the numbers):
- smoothed reward at step s: mean RM reward of steps s-W+1..s (trailing window W = 5, s >= W);
- target: sparse PPO's final smoothed reward (same seed);
- steps-to-reach(run): first step whose smoothed reward >= target (None if never);
- ratio: steps-to-reach(RED) / steps-to-reach(sparse), per seed and on the seed-averaged curves;
  below 1 means RED gets there faster.
- step-time ratio: mean step time of RED runs / sparse runs, step 1 excluded (warm-up). Response
  lengths differ between runs, so `timing` also measures both methods on the same rollouts.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from red_core.recipes import policy_red  # noqa: E402  (the runs' settings: the shipped policy is one of them)

RESULTS = policy_red.RESULTS_DIR
RUNS = policy_red.RUNS_DIR
SEEDS = (0, 1, 2)
METHODS = ("red", "sparse")
WINDOW = 5
MODELS: dict = {}  # policy / reward_model overrides (--policy, --reward-model); empty = the assets/ defaults
BUDGET = dict(policy_red.BUDGET)  # --steps changes this copy


def rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def runs_dir(critic: str = "auto") -> Path:
    """Where the runs of one critic start live: the default ('auto', from the RM) or an ablation."""
    return RUNS if critic == "auto" else RUNS / f"critic-{critic}"


def suffix(critic: str = "auto") -> str:
    return "" if critic == "auto" else f"_critic-{critic}"


def config(method: str, seed: int, critic: str = "auto", **kw):
    return policy_red.run_config(method, seed, runs_dir(critic) / f"{method}-s{seed}", critic_init=critic,
                                 **{**BUDGET, **MODELS, **kw})


# ----------------------------------------------------------------------------- runs


def do_runs(args) -> None:
    from red_core.train import train

    policy_red.make_runs_dir(RUNS)
    runs_dir(args.critic).mkdir(parents=True, exist_ok=True)
    for seed in SEEDS:
        for method in METHODS:
            cfg = config(method, seed, args.critic, progress=not args.quiet)
            t0 = time.time()
            summary = train(cfg)
            f = summary["final"]
            print(f"{method} seed {seed}: {summary['steps_done']} steps in {time.time() - t0:.0f}s, final reward "
                  f"{f['reward_mean']:+.3f}, KL {f['kl']:.3f}", flush=True)


# ----------------------------------------------------------------------------- report


def load_curves(critic: str = "auto") -> dict:
    """Metrics rows of each run; from the copies in RESULTS/train_curves*/ when the run folder is gone."""
    import csv

    from red_core.train import read_metrics

    curves = {}
    for method in METHODS:
        for seed in SEEDS:
            rows = read_metrics(runs_dir(critic) / f"{method}-s{seed}")
            saved = RESULTS / f"train_curves{suffix(critic)}" / f"{method}-s{seed}.csv"
            if not rows and saved.exists():
                with saved.open(newline="") as f:
                    rows = [{k: (int(v) if k == "step" else float(v)) for k, v in r.items()} for r in csv.DictReader(f)]
            if rows:
                curves[(method, seed)] = rows
    return curves


def smooth(x: np.ndarray, w: int = WINDOW) -> np.ndarray:
    """Trailing moving average; nan for the first w-1 steps (no full window yet)."""
    x = np.asarray(x, float)
    out = np.full(len(x), np.nan)
    c = np.cumsum(np.insert(x, 0, 0.0))
    out[w - 1:] = (c[w:] - c[:-w]) / w
    return out


def steps_to_reach(rewards, target: float) -> int | None:
    """First step (1-based) whose full-window smoothed reward is >= target; None if never."""
    s = smooth(rewards)
    hit = np.nonzero(np.nan_to_num(s, nan=-np.inf) >= target)[0]
    return int(hit[0]) + 1 if len(hit) else None


def analyse(curves: dict) -> dict:
    out = {"window": WINDOW, "budget": BUDGET, "per_seed": [], "seeds": list(SEEDS)}
    for seed in SEEDS:
        if ("red", seed) not in curves or ("sparse", seed) not in curves:
            continue
        red = np.array([r["reward_mean"] for r in curves[("red", seed)]])
        sp = np.array([r["reward_mean"] for r in curves[("sparse", seed)]])
        target = float(smooth(sp)[-1])
        s_red, s_sp = steps_to_reach(red, target), steps_to_reach(sp, target)
        out["per_seed"].append({
            "seed": seed, "target_sparse_final": target, "steps_red": s_red, "steps_sparse": s_sp,
            "ratio": (s_red / s_sp) if s_red and s_sp else None,
            "final_red": float(smooth(red)[-1]), "final_sparse": target,
            "kl_final_red": float(np.mean([r["kl"] for r in curves[("red", seed)][-WINDOW:]])),
            "kl_final_sparse": float(np.mean([r["kl"] for r in curves[("sparse", seed)][-WINDOW:]])),
            "step_time_red": float(np.mean([r["step_time"] for r in curves[("red", seed)][1:]])),
            "step_time_sparse": float(np.mean([r["step_time"] for r in curves[("sparse", seed)][1:]])),
        })
    ps = out["per_seed"]
    if ps:
        mean_red = np.mean([[r["reward_mean"] for r in curves[("red", p["seed"])]] for p in ps], axis=0)
        mean_sp = np.mean([[r["reward_mean"] for r in curves[("sparse", p["seed"])]] for p in ps], axis=0)
        target = float(smooth(mean_sp)[-1])
        s_red, s_sp = steps_to_reach(mean_red, target), steps_to_reach(mean_sp, target)
        ratios = [p["ratio"] for p in ps if p["ratio"] is not None]
        out["seed_mean_curves"] = {"target": target, "steps_red": s_red, "steps_sparse": s_sp,
                                   "ratio": (s_red / s_sp) if s_red and s_sp else None}
        out["ratio_per_seed"] = [p["ratio"] for p in ps]
        out["ratio_mean"] = float(np.mean(ratios)) if ratios else None
        out["ratio_median"] = float(np.median(ratios)) if ratios else None
        out["step_time_ratio"] = float(np.mean([p["step_time_red"] for p in ps]) /
                                       np.mean([p["step_time_sparse"] for p in ps]))
        out["response_length_ratio"] = float(
            np.mean([np.mean([r["response_length"] for r in curves[("red", p["seed"])]]) for p in ps]) /
            np.mean([np.mean([r["response_length"] for r in curves[("sparse", p["seed"])]]) for p in ps]))
    return out


def figure(curves: dict, critic: str = "auto"):
    """Two panels: mean RM reward and KL against steps; seed mean (line) and seed min-max (band)."""
    from plotly.subplots import make_subplots

    from red_core.viz import METHOD_COLOURS  # never red or blue: those mean "lowered" / "raised" the reward

    colours = {m: (METHOD_COLOURS[m], _rgba(METHOD_COLOURS[m], 0.15)) for m in METHODS}
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Mean RM reward R(x, y) per step", "KL to reference per step "
                                                        "(Σ_t log π_old − log π_ref, batch mean)"))
    for col, key in ((1, "reward_mean"), (2, "kl")):
        for method in METHODS:
            seeds = [s for s in SEEDS if (method, s) in curves]
            if not seeds:
                continue
            y = np.array([[r[key] for r in curves[(method, s)]] for s in seeds])  # (seeds, steps)
            x = np.arange(1, y.shape[1] + 1)
            line, band = colours[method]
            fig.add_scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([y.max(0), y.min(0)[::-1]]),
                            mode="lines", fill="toself", fillcolor=band, line={"width": 0}, hoverinfo="skip", showlegend=False,
                            row=1, col=col)
            for s, row in zip(seeds, y):
                fig.add_scatter(x=x, y=row, mode="lines", line={"color": line, "width": 0.6}, opacity=0.35,
                                name=f"{method} seed {s}", showlegend=False, row=1, col=col)
            fig.add_scatter(x=x, y=y.mean(0), mode="lines", line={"color": line, "width": 2.5},
                            name=f"{'RED' if method == 'red' else 'sparse'} PPO (mean of {len(seeds)} seeds)",
                            showlegend=col == 1, row=1, col=col)
    fig.update_xaxes(title_text="PPO step")
    fig.update_yaxes(title_text="mean R(x, y)", row=1, col=1)
    fig.update_yaxes(title_text="KL (nats per response)", row=1, col=2)
    fig.update_layout(height=430, width=1150, plot_bgcolor="#fff", legend={"orientation": "h", "y": -0.18},
                      margin={"l": 60, "r": 20, "t": 50, "b": 80},
                      title={"text": "RED vs sparse PPO from policy-base (same budget, band = seed min-max; critic "
                                     f"{'from the reward model' if critic == 'auto' else 'from the ' + critic})",
                             "y": 0.99})
    fig.update_xaxes(gridcolor="#eee")
    fig.update_yaxes(gridcolor="#eee")
    return fig


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def screenshot(html: Path, png: Path, size=(1180, 460)) -> bool:
    """PNG of an HTML file with headless Chromium (Debian's package); False when there is none."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        return False
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--screenshot={png}",
           f"--window-size={size[0]},{size[1]}", "--virtual-time-budget=5000", html.resolve().as_uri()]
    subprocess.run(cmd, capture_output=True, timeout=120)
    return png.exists()


def do_report(args) -> dict:
    critic, sfx = args.critic, suffix(args.critic)
    curves = load_curves(critic)
    if not curves:
        raise SystemExit(f"no runs in {runs_dir(critic)}; run `python bench/bench_train.py runs` first")
    res = analyse(curves)
    res["critic_init"] = critic
    RESULTS.mkdir(parents=True, exist_ok=True)
    curve_dir = RESULTS / f"train_curves{sfx}"
    curve_dir.mkdir(exist_ok=True)
    for (method, seed) in curves:
        if (runs_dir(critic) / f"{method}-s{seed}" / "metrics.csv").exists():
            shutil.copy(runs_dir(critic) / f"{method}-s{seed}" / "metrics.csv", curve_dir / f"{method}-s{seed}.csv")
    fig = figure(curves, critic)
    html = RESULTS / f"train_curves{sfx}.html"
    fig.write_html(html, include_plotlyjs="directory", full_html=True)  # plotly.min.js beside it, shared
    res["figure_html"] = rel(html)
    bare = RESULTS / f".tmp-train_curves{sfx}.html"  # no toolbar in the picture
    fig.write_html(bare, include_plotlyjs=True, full_html=True, config={"displayModeBar": False, "staticPlot": True})
    shot = screenshot(bare, RESULTS / f"train_curves{sfx}.png")
    bare.unlink()
    if shot:
        res["figure_png"] = rel(RESULTS / f"train_curves{sfx}.png")
    (RESULTS / f"train_report{sfx}.json").write_text(json.dumps(res, indent=1) + "\n")
    print_report(res)
    return res


def print_report(res: dict) -> None:
    print(f"steps to reach sparse PPO's final reward (smoothed over {res['window']} steps):")
    print("  seed | target  | RED steps | sparse steps | RED/sparse | final RED | KL RED | KL sparse")
    for p in res["per_seed"]:
        ratio = "n/a" if p["ratio"] is None else f"{p['ratio']:.2f}"
        print(f"  {p['seed']:4d} | {p['target_sparse_final']:+.3f} | {str(p['steps_red']):>9} | "
              f"{str(p['steps_sparse']):>12} | {ratio:>10} | {p['final_red']:+.3f}    | {p['kl_final_red']:.3f}  | "
              f"{p['kl_final_sparse']:.3f}")
    m = res.get("seed_mean_curves", {})
    if m:
        print(f"  seed-mean curves: target {m['target']:+.3f}, RED {m['steps_red']} vs sparse {m['steps_sparse']} "
              f"steps, ratio {m['ratio']}")
        print(f"  ratio per seed {res['ratio_per_seed']}, mean {res['ratio_mean']}, median {res['ratio_median']}")
        print(f"  step-time ratio RED/sparse (whole runs, step 1 excluded): {res['step_time_ratio']:.3f} "
              f"(response-length ratio {res['response_length_ratio']:.3f})")


# ----------------------------------------------------------------------------- timing


def do_timing(args) -> dict:
    """Both methods on the same rollouts: time of phases 2-3 (score + credit + rewards) and of a full step."""
    import torch

    from red_core.train import PPOTrainer
    from red_core.train.rewards import assemble_rewards

    torch.set_num_threads(1)
    trainer = PPOTrainer(config("red", 0, progress=False))
    repeats = args.repeats
    times = {m: [] for m in METHODS}
    for k in range(repeats):
        ro = trainer.rollout(k)
        for method in (METHODS if k % 2 == 0 else METHODS[::-1]):  # alternate the order
            trainer.cfg.method = method
            t0 = time.perf_counter()
            credit = trainer.score(ro)
            assemble_rewards(credit.credit.float(), ro.logp_old, ro.logp_ref, ro.mask, trainer.cfg.kl_coef)
            times[method].append(time.perf_counter() - t0)
    # A full step for scale: rollout + update on the same machine (sparse and RED differ only in phases 2-3).
    trainer.cfg.method = "sparse"
    steps = [trainer.step()["step_time"] for _ in range(3)]
    score = {m: float(np.median(v)) for m, v in times.items()}
    full = float(np.median(steps))
    res = {"repeats": repeats, "score_phase_s": score, "full_step_s": full,
           "score_phase_ratio": score["red"] / score["sparse"],
           "step_overhead_ratio": (full - score["sparse"] + score["red"]) / full}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train_timing.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"phases 2-3 on identical rollouts (median of {repeats}): RED {score['red'] * 1e3:.1f} ms, sparse "
          f"{score['sparse'] * 1e3:.1f} ms (ratio {res['score_phase_ratio']:.3f}); full step {full:.2f} s; "
          f"RED per-step overhead ratio {res['step_overhead_ratio']:.4f}")
    return res


def main(argv=None) -> None:
    global RUNS, RESULTS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=("runs", "report", "timing", "all"))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--repeats", type=int, default=10, help="timing: rollout batches measured")
    parser.add_argument("--critic", default="auto", choices=("auto", "policy"),
                        help="runs/report: critic start; 'policy' is the ablation (fresh zero value head)")
    parser.add_argument("--policy", help="start policy (default: assets/models/policy-base)")
    parser.add_argument("--reward-model", help="reward model (default: assets/models/reward)")
    parser.add_argument("--steps", type=int, help=f"PPO steps per run (default: {BUDGET['steps']})")
    parser.add_argument("--results-dir", help=f"where results go (default: {rel(RESULTS)})")
    parser.add_argument("--runs-dir", help=f"where runs go (default: RESULTS_DIR/runs, {rel(RUNS)})")
    args = parser.parse_args(argv)
    RESULTS = Path(args.results_dir) if args.results_dir else RESULTS
    RUNS = Path(args.runs_dir) if args.runs_dir else RESULTS / "runs"
    MODELS.update({k: v for k, v in (("policy", args.policy), ("reward_model", args.reward_model)) if v})
    if args.steps:
        BUDGET["steps"] = args.steps
    stages = ("runs", "report", "timing") if args.stage == "all" else (args.stage,)
    for stage in stages:
        {"runs": do_runs, "report": do_report, "timing": do_timing}[stage](args)


if __name__ == "__main__":
    main()
