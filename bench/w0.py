#!/usr/bin/env python3
"""Workload W0, overhead: N no-op episodes (simulated providers, zero latency, no render) through
`coordinator --workers 4` over TCP loopback with the journal on (`--state`), episodes per second from the
first dispatch to the last result (summary.json `timing.makespan_seconds`). Beside it, in the same run and
interleaved run by run:

- the raw ceiling of the transport: `reelfarm-bench transport`, pipelined DEALER/ROUTER round trips over
  TCP loopback through Reelfarm's own ZeroMQ wrapper, with W0's JOB and RESULT frames, 4 DEALER peers,
  3 in flight each (W0's credit: 4 workers x 3 episode slots);
- Celery 5 (Redis broker and result backend, 4 prefork processes, a `group` of no-op tasks) and Dask
  distributed (`LocalCluster`, 4 single-thread worker processes, `client.map`): bench/w0_python.py.

Ratios are computed pair by pair (run i against run i) and their median reported: the machine is shared
and noisy, absolute rates drift, ratios hold. Run with the venv python of bench/pyenv.sh (bench/run does).

    python3 bench/w0.py --bin .build/release [--episodes 20000] [--runs 3] [--json FILE]
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

CREDIT = 3  # episode slots per local worker (the default --max-parallel-episodes)


def reelfarm_rate(bindir, episodes):
    d = tempfile.mkdtemp(prefix="reelfarm-w0-")
    env = dict(os.environ, REELFARM_PROVIDERS="simulated", REELFARM_SIM_LATENCY="llm=0,tts=0,image=0,render=0")
    args = [f"{bindir}/coordinator", "--workers", "4", "--episodes", str(episodes), "--bind", "tcp://127.0.0.1:*",
            "--output", d + "/out", "--state", d + "/state", "--batch-id", "w0", "--http", "off",
            "--progress", "off", "--log-level", "warning"]
    with open(d + "/coordinator.log", "w") as log:
        subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=log, timeout=600)
    summary = json.load(open(f"{d}/out/w0/summary.json"))
    assert summary["totals"]["succeeded"] == episodes, summary["totals"]
    return episodes / summary["timing"]["makespan_seconds"]


def ceiling_rate(bindir, round_trips):
    out = subprocess.run([f"{bindir}/reelfarm-bench", "transport", "--round-trips", str(round_trips),
                          "--workers", "4", "--window", str(CREDIT)],
                         check=True, capture_output=True, text=True, timeout=300).stdout
    return float(out.split()[-1])


def w0(bindir, episodes=20000, tasks=None, runs=3, round_trips=200_000, systems=("celery", "dask"), progress=None):
    """Interleaved runs; returns every rate and the pairwise ratios."""
    import w0_python
    tasks = tasks or episodes
    say = progress or (lambda m: None)
    rates = {"reelfarm": [], "ceiling": []}
    rates.update({s: [] for s in systems})
    for i in range(runs):
        rates["reelfarm"].append(reelfarm_rate(bindir, episodes))
        rates["ceiling"].append(ceiling_rate(bindir, round_trips))
        for s in systems:
            rates[s].append((w0_python.celery_rate if s == "celery" else w0_python.dask_rate)(tasks, 4))
        say(f"run {i + 1}/{runs}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()))
    ratios = {}
    for other in ("ceiling",) + tuple(systems):
        pairs = [r / o for r, o in zip(rates["reelfarm"], rates[other])]
        ratios[other] = {"median": statistics.median(pairs), "runs": pairs}
    return {
        "episodes": episodes, "tasks": tasks, "runs": runs, "round_trips": round_trips, "credit": CREDIT,
        "rates": rates, "medians": {k: statistics.median(v) for k, v in rates.items()}, "ratios": ratios,
        "versions": {s: w0_python.versions(s) for s in systems},
    }


def print_markdown(res):
    m, r = res["medians"], res["ratios"]
    print(f"W0: {res['episodes']:,} no-op episodes (Celery/Dask: {res['tasks']:,} no-op tasks), 4 workers, "
          f"TCP loopback, journal on; medians of {res['runs']} interleaved runs; ratios pair by pair\n")
    print("| system | per second (median) | runs | Reelfarm ÷ it (median of pairs) |")
    print("|---|---|---|---|")
    names = {"reelfarm": "Reelfarm (`coordinator --workers 4 --state`)",
             "ceiling": f"raw transport ceiling (DEALER/ROUTER round trips, window {res['credit']} × 4)",
             "celery": "Celery + Redis (4 prefork processes, `group`)",
             "dask": "Dask distributed (`LocalCluster` 4 × 1 thread, `client.map`)"}
    for k, v in res["rates"].items():
        ratio = f"{r[k]['median']:.3f}" if k in r else ""
        print(f"| {names.get(k, k)} | {m[k]:,.0f} | {', '.join(f'{x:,.0f}' for x in v)} | {ratio} |")
    for s, v in res.get("versions", {}).items():
        print(f"\n{s}: {v}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--round-trips", type=int, default=200_000)
    parser.add_argument("--systems", default="celery,dask", help="comparison systems (empty: none)")
    parser.add_argument("--json")
    args = parser.parse_args()
    res = w0(os.path.abspath(args.bin), args.episodes, None, args.runs, args.round_trips,
             tuple(s for s in args.systems.split(",") if s), progress=lambda m: print("  " + m, file=sys.stderr))
    print_markdown(res)
    if args.json:
        json.dump(res, open(args.json, "w"), indent=2)


if __name__ == "__main__":
    main()
