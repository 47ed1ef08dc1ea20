#!/usr/bin/env python3
"""Workload W2: scaling out. 96 simulated episodes, no rate limits, on 1, 2, 4 and 8 local workers with 3
episode slots each (and 5 API calls in flight per episode); makespan per worker count and speedup over
1 worker.

Latencies (simulated providers, each call ±10%): LLM 400 ms, image 800 ms, TTS 300 ms, render 200 ms.
An episode (Sources/Worker/Pipeline/EpisodePipeline.swift) makes one script call, then its voices (4-8
lines), 4 scene and 2 B-roll images side by side under one limiter of 5 calls (FIFO, Sources/Worker/Limits),
then a render (one at a time per worker). Its critical path is 0.4 s + 1.6 s (6 images on 5 slots: one
slot draws two) + 0.2 s = 2.2 s with the best order; the pipeline's order (voices queue first) takes 2.5 s
when the episode has 5 or more lines. With S slots in all, the batch runs in ceil(episodes / S) waves, so
the makespan cannot be under waves x 2.2 s, and the ideal speedup of W workers is waves(1) / waves(W).

A sweep is: one single-episode batch (1 worker), then 1, 2, 4 and 8 workers. `--runs R` repeats the sweep
R times, interleaved, and reports medians; the speedup of W workers is taken pair by pair within a sweep
(run i of 1 worker / run i of W workers), then the median of those ratios. Every batch must end with every
episode succeeded, or the script stops with the coordinator's log. Makespan is summary.json's
timing.makespan_seconds (first dispatch to the last episode's end).

    python3 bench/w2.py --bin .build/release [--runs R] [--episodes N] [--workers 1,2,4,8] [--json FILE]

Smoke mode: `--episodes 12` (about 25 s).
"""
import argparse, json, math, os, statistics, subprocess, sys, tempfile

LATENCY_MS = {"llm": 400, "tts": 300, "image": 800, "render": 200}
SLOTS = 3            # episodes at once per worker
API_CALLS = 5        # calls in flight per episode (the default MAX_PARALLEL_API_CALLS)
IMAGES = 4 + 2       # default 4 scenes + max(1, 4 / 2) B-roll shots per generated episode
EPISODES = 96
WORKERS = (1, 2, 4, 8)


def fifo_asset_phase(order, slots):
    """Finish time of calls (durations, in the order they queue) on `slots` FIFO slots: list scheduling."""
    free = [0.0] * slots
    for d in order:
        i = free.index(min(free))
        free[i] += d
    return max(free) if order else 0.0


def episode_times(lines):
    """(best, fifo) seconds of one episode with `lines` voice lines at the nominal latencies."""
    llm, tts, img, render = (LATENCY_MS[k] / 1000 for k in ("llm", "tts", "image", "render"))
    calls = [tts] * lines + [img] * IMAGES
    best = max(math.ceil(IMAGES / API_CALLS) * img, sum(calls) / API_CALLS, max(calls))
    fifo = fifo_asset_phase(calls, API_CALLS)  # voices queue first, as the trace shows
    return llm + best + render, llm + fifo + render


def critical_path():
    """The per-episode lower bound over 4-8 lines (every generated episode has 4-8): the best schedule."""
    return min(episode_times(n)[0] for n in range(4, 9))


def run_batch(bindir, workers, episodes, workdir, tag):
    d = tempfile.mkdtemp(prefix=f"{tag}-", dir=workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REELFARM_", "MAX_PARALLEL_", "MAX_WORKER_"))}
    env.update(REELFARM_PROVIDERS="simulated",
               REELFARM_SIM_LATENCY=",".join(f"{k}={v}" for k, v in LATENCY_MS.items()))
    cmd = [f"{bindir}/coordinator", "--workers", str(workers), "--episodes", str(episodes),
           "--max-parallel-episodes", str(SLOTS), "--max-parallel-api-calls", str(API_CALLS),
           "--bind", "tcp://127.0.0.1:*", "--http", "off", "--progress", "off", "--log-level", "warning",
           "--output", d + "/out", "--batch-id", "w2"]
    waves = math.ceil(episodes / (workers * SLOTS))
    log = d + "/coordinator.log"
    try:
        code = subprocess.call(cmd, cwd=d, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               timeout=60 + 10 * waves * critical_path())
    except subprocess.TimeoutExpired:
        code = "timeout"
    summary_path = f"{d}/out/w2/summary.json"
    summary = json.load(open(summary_path)) if os.path.exists(summary_path) else None
    succeeded = summary["totals"]["succeeded"] if summary else None
    if code != 0 or succeeded != episodes:
        tail = "".join(open(log).readlines()[-20:])
        raise SystemExit(f"W2 FAILED: {workers} worker(s), {episodes} episodes: exit {code}, "
                         f"succeeded {succeeded}/{episodes} (folder {d})\n{tail}")
    durations = [e["duration_seconds"] for e in summary["episodes"]]
    lines = [e["api_calls"] - 1 - IMAGES for e in summary["episodes"]]
    first_job = {}
    for e in summary["episodes"]:
        w = e.get("worker")
        first_job[w] = min(first_job.get(w, e["dispatched_after_seconds"]), e["dispatched_after_seconds"])
    return {
        "workers": workers,
        "episodes": episodes,
        "makespan": summary["timing"]["makespan_seconds"],
        "wall": summary["wall_seconds"],
        "median_episode": statistics.median(durations),
        "mean_latency": summary["timing"]["mean_episode_latency_seconds"],
        "succeeded": succeeded,
        "workers_seen": summary["workers_seen"],
        "fifo_mean": statistics.mean(episode_times(n)[1] for n in lines),
        # when the last worker got its first job, after the first dispatch: the start-up ramp
        "ramp": max(first_job.values()),
    }


def w2(bindir, runs=1, episodes=EPISODES, workers=WORKERS, progress=None):
    """Runs the sweep `runs` times; returns the figures (medians, pairwise speedups, bounds, every run)."""
    workdir = tempfile.mkdtemp(prefix="reelfarm-w2-")
    singles, by_workers = [], {w: [] for w in workers}
    for i in range(runs):
        singles.append(run_batch(bindir, 1, 1, workdir, f"single-{i}"))
        if progress:
            progress(f"run {i + 1}/{runs}: single episode {singles[-1]['makespan']:.2f} s")
        for w in workers:
            r = run_batch(bindir, w, episodes, workdir, f"w{w}-{i}")
            by_workers[w].append(r)
            if progress:
                progress(f"run {i + 1}/{runs}: {w} worker(s) makespan {r['makespan']:.2f} s, "
                         f"median episode {r['median_episode']:.2f} s")
    cp = critical_path()
    base = by_workers.get(1)
    waves1 = math.ceil(episodes / SLOTS)
    single = statistics.median(r["makespan"] for r in singles)
    rows = []
    for w in workers:
        rs = by_workers[w]
        waves = math.ceil(episodes / (w * SLOTS))
        makespan = statistics.median(r["makespan"] for r in rs)
        speedups = [b["makespan"] / r["makespan"] for b, r in zip(base, rs)] if base else []
        rows.append({
            "workers": w,
            "slots": w * SLOTS,
            "waves": waves,
            "makespan": makespan,
            "makespans": [r["makespan"] for r in rs],
            "bound": waves * cp,
            "ideal_from_single": waves * single,
            "speedup": statistics.median(speedups) if speedups else None,
            "speedups": speedups,
            "ideal_speedup": waves1 / waves,
            "median_episode": statistics.median(r["median_episode"] for r in rs),
            "fifo_episode": statistics.median(r["fifo_mean"] for r in rs),
            "ramp": statistics.median(r["ramp"] for r in rs),
            "succeeded": f"{min(r['succeeded'] for r in rs)}/{episodes}",
        })
    return {
        "episodes": episodes,
        "runs": runs,
        "slots_per_worker": SLOTS,
        "api_calls_per_episode": API_CALLS,
        "latency_ms": LATENCY_MS,
        "critical_path_seconds": cp,
        "fifo_episode_seconds": {n: episode_times(n)[1] for n in range(4, 9)},
        "single_episode_seconds": single,
        "single_episode_runs": [r["makespan"] for r in singles],
        "rows": rows,
        "workdir": workdir,
    }


def print_markdown(res):
    cp, single = res["critical_path_seconds"], res["single_episode_seconds"]
    fifo = res["fifo_episode_seconds"]
    print(f"W2: {res['episodes']} episodes, simulated latencies LLM 400 / image 800 / TTS 300 / render 200 ms "
          f"(±10%), no rate limits, {res['slots_per_worker']} episode slots per worker, "
          f"{res['api_calls_per_episode']} API calls per episode; medians of {res['runs']} sweep(s).\n")
    print(f"- per-episode critical path (best order): **{cp:.2f} s** (0.4 script + 1.6 for 6 images on "
          f"{res['api_calls_per_episode']} slots + 0.2 render); in the pipeline's FIFO order (voices queue first): "
          f"{fifo[4]:.1f} s with 4 lines, {fifo[5]:.1f} s with 5-8")
    print(f"- measured single episode (1 worker, 1 episode, first dispatch to end): **{single:.2f} s** "
          f"(runs: {', '.join(f'{x:.2f}' for x in res['single_episode_runs'])})")
    print(f"- lower bound = waves × {cp:.2f} s, waves = ceil({res['episodes']} / slots); "
          f"ideal speedup = waves(1 worker) / waves(W); median episode = first dispatch to end of each "
          f"episode in that batch; FIFO-order episode = the pipeline's order at nominal latencies, averaged over "
          f"the batch's episodes; last worker's first job = the start-up ramp, after the first dispatch\n")
    print("| workers | slots | waves | makespan | lower bound | ÷ bound | waves × single episode "
          "| speedup vs 1 | ideal speedup | efficiency | median episode | FIFO-order episode | last worker's first job "
          "| succeeded | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["rows"]:
        sp = f"{r['speedup']:.2f}×" if r["speedup"] is not None else "–"
        eff = f"{100 * r['speedup'] / r['ideal_speedup']:.0f}%" if r["speedup"] is not None else "–"
        print(f"| {r['workers']} | {r['slots']} | {r['waves']} | {r['makespan']:.2f} s | {r['bound']:.1f} s | "
              f"{r['makespan'] / r['bound']:.3f} | {r['ideal_from_single']:.1f} s | {sp} | {r['ideal_speedup']:.2f}× | "
              f"{eff} | {r['median_episode']:.2f} s | {r['fifo_episode']:.2f} s | +{r['ramp']:.2f} s | {r['succeeded']} | "
              f"{', '.join(f'{x:.2f}' for x in r['makespans'])} |")
    if res["runs"] > 1:
        print("\nspeedups pair by pair: " + "; ".join(
            f"{r['workers']}: {', '.join(f'{x:.2f}' for x in r['speedups'])}" for r in res["rows"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="folder with coordinator and worker")
    parser.add_argument("--runs", type=int, default=1, help="sweeps, interleaved; the table shows medians")
    parser.add_argument("--episodes", type=int, default=EPISODES, help="episodes per batch (smoke: 12)")
    parser.add_argument("--workers", default=",".join(map(str, WORKERS)), help="worker counts, 1 first")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    workers = tuple(int(x) for x in args.workers.split(","))
    res = w2(args.bin, args.runs, args.episodes, workers, progress=lambda m: print("  " + m, file=sys.stderr))
    print_markdown(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
