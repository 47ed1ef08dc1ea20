#!/usr/bin/env python3
"""What CURVE costs: workload W0 (no-op episodes: simulated providers with zero latency, no render) through
`coordinator --workers 4` over TCP loopback with the journal on, with and without CURVE, runs alternating.
Episodes per second from the first dispatch to the last result (summary.json timing.makespan_seconds).

    bench/curve.sh [--episodes 20000] [--runs 3]     (release build; or: python3 bench/curve.py --bin .build/debug)
"""
import argparse, json, os, statistics, subprocess, tempfile


def run_once(bindir, episodes, curve):
    d = tempfile.mkdtemp(prefix="reelfarm-w0-")
    env = dict(os.environ, REELFARM_PROVIDERS="simulated", REELFARM_SIM_LATENCY="llm=0,tts=0,image=0,render=0")
    args = [f"{bindir}/coordinator", "--workers", "4", "--episodes", str(episodes), "--bind", "tcp://127.0.0.1:*",
            "--output", d + "/out", "--state", d + "/state", "--batch-id", "w0", "--http", "off",
            "--progress", "off", "--log-level", "warning"]
    if curve:
        for name in ("coordinator",):
            subprocess.run([f"{bindir}/coordinator", "keygen", "--name", name, "--out", d + "/keys"],
                           check=True, stdout=subprocess.DEVNULL)
        with open(d + "/allow.txt", "w") as f:
            f.write("# only the local workers (their keys are made at start)\n")
        args += ["--curve-secret", d + "/keys/coordinator.key_secret", "--allow-workers", d + "/allow.txt"]
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=open(d + "/coordinator.log", "w"))
    summary = json.load(open(f"{d}/out/w0/summary.json"))
    assert summary["totals"]["succeeded"] == episodes, summary["totals"]
    return episodes / summary["timing"]["makespan_seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--episodes", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    plain, curve = [], []
    for _ in range(args.runs):
        plain.append(run_once(args.bin, args.episodes, False))
        curve.append(run_once(args.bin, args.episodes, True))
    print(f"W0: {args.episodes} no-op episodes, coordinator --workers 4, TCP loopback, journal on; {args.runs} runs each, alternating\n")
    print("| transport | episodes/s (median) | runs |")
    print("|---|---|---|")
    print(f"| plaintext | {statistics.median(plain):,.0f} | {', '.join(f'{x:,.0f}' for x in plain)} |")
    print(f"| CURVE | {statistics.median(curve):,.0f} | {', '.join(f'{x:,.0f}' for x in curve)} |")
    ratios = [c / p for p, c in zip(plain, curve)]
    print(f"\nCURVE / plaintext, pair by pair: median {statistics.median(ratios):.3f} "
          f"(throughput cost {100 * (1 - statistics.median(ratios)):.1f}%)")


if __name__ == "__main__":
    main()
