#!/usr/bin/env python3
"""Joining a running batch: from `worker --connect` (process start) to the worker's first job, and from
`coordinator scale --workers N+1` to the new local worker's first job.

A `coordinator serve` (debug log) runs one long batch of slow simulated episodes with work always pending.
Workers are then started by hand one at a time, 1 s apart, each with one slot; after that the local pool is
grown one worker at a time with `coordinator scale`. The coordinator's `dispatched ... worker=ID` log line
gives the moment each new worker got its first JOB. Prints every run and the medians.

    bench/join.sh [--runs N]          (release build; or: python3 bench/join.py --bin .build/debug)
"""
import argparse, os, re, socket, statistics, subprocess, tempfile, time, urllib.request
from benchlib import free_port, stamp


def first_dispatch(log_path, worker_id, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in open(log_path).read().splitlines():
            if " dispatched " in line and f"worker={worker_id}" in line:
                return stamp(line)
        time.sleep(0.01)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    d = tempfile.mkdtemp(prefix="reelfarm-join-")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    http = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, REELFARM_PROVIDERS="simulated",
               REELFARM_SIM_LATENCY="llm=20000,tts=1000,image=1000,render=500")
    log = d + "/coordinator.log"
    coordinator = subprocess.Popen(
        [f"{args.bin}/coordinator", "serve", "--bind", endpoint, "--http", http, "--output", d + "/out",
         "--log-level", "debug", "--progress", "off", "--max-parallel-episodes", "1"],
        stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    procs = [coordinator]
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{http}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        urllib.request.urlopen(urllib.request.Request(
            f"http://{http}/api/batches?episodes=1000&id=join", method="POST"), timeout=5)
        by_hand = []
        for i in range(args.runs):
            name = f"hand-{i + 1}"
            started = time.time()
            procs.append(subprocess.Popen(
                [f"{args.bin}/worker", "--connect", endpoint, "--worker-id", name, "--max-parallel-episodes", "1"],
                stdout=open(f"{d}/{name}.log", "w"), stderr=subprocess.STDOUT, env=env))
            at = first_dispatch(log, name)
            if at is not None:
                by_hand.append(at - started)
            time.sleep(1.0)
        host = socket.gethostname().split(".")[0]
        scaled = []
        for n in range(1, min(args.runs, 8) + 1):
            started = time.time()
            urllib.request.urlopen(urllib.request.Request(
                f"http://{http}/api/scale?workers={n}", method="POST"), timeout=5)
            at = first_dispatch(log, f"{host}-local-{n}")
            if at is not None:
                scaled.append(at - started)
            time.sleep(1.0)
    finally:
        for p in procs:
            p.kill()
    print("| run | `worker --connect` to first job | `coordinator scale` +1 to first job |")
    print("|---|---|---|")
    for i in range(max(len(by_hand), len(scaled))):
        a = f"{by_hand[i] * 1000:.0f} ms" if i < len(by_hand) else ""
        b = f"{scaled[i] * 1000:.0f} ms" if i < len(scaled) else ""
        print(f"| {i + 1} | {a} | {b} |")
    if by_hand:
        print(f"\nworker --connect → first job: median {statistics.median(by_hand) * 1000:.0f} ms, "
              f"max {max(by_hand) * 1000:.0f} ms over {len(by_hand)} workers")
    if scaled:
        print(f"coordinator scale +1 → first job: median {statistics.median(scaled) * 1000:.0f} ms, "
              f"max {max(scaled) * 1000:.0f} ms over {len(scaled)} workers")


if __name__ == "__main__":
    main()
