#!/usr/bin/env python3
"""Recovery time: from a worker's SIGKILL to its episodes being dispatched to another worker.

A coordinator (default heartbeat settings: 1 s x 3) runs 6 slow simulated episodes on two workers with 3
slots each; a third worker joins with free slots; w1 is then killed with SIGKILL. The coordinator's debug
log gives the moment it declared w1 gone and when w1's episodes went to w3. Prints the runs and the median.

    bench/recovery.sh [--runs N]       (release build; or: python3 bench/recovery.py --bin .build/debug)
"""
import argparse, os, re, signal, socket, statistics, subprocess, tempfile, time
from benchlib import free_port, stamp


def run_once(bindir):
    d = tempfile.mkdtemp(prefix="reelfarm-recovery-")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    env = dict(os.environ, REELFARM_PROVIDERS="simulated",
               REELFARM_SIM_LATENCY="llm=3000,tts=1000,image=3000,render=500")
    coordinator = subprocess.Popen(
        [f"{bindir}/coordinator", "--workers", "0", "--episodes", "6", "--bind", endpoint,
         "--output", d + "/out", "--log-level", "debug"],
        stdout=open(d + "/coordinator.log", "w"), stderr=subprocess.STDOUT, env=env)
    time.sleep(0.5)

    def worker(name):
        return subprocess.Popen(
            [f"{bindir}/worker", "--connect", endpoint, "--worker-id", name, "--max-parallel-episodes", "3"],
            stdout=open(f"{d}/{name}.log", "w"), stderr=subprocess.STDOUT, env=env)

    workers = [worker("w1"), worker("w2")]
    time.sleep(2.0)
    workers.append(worker("w3"))
    time.sleep(1.0)
    killed = time.time()
    workers[0].send_signal(signal.SIGKILL)
    time.sleep(6)
    for p in workers + [coordinator]:
        p.kill()
    log = open(d + "/coordinator.log").read().splitlines()
    left = [l for l in log if "worker left" in l and "worker=w1" in l]
    if not left:
        return None
    episodes = re.search(r"episodes=(\S+)", left[0]).group(1).split(",")
    moved = [stamp(l) for l in log if "dispatched" in l and "worker=w3" in l
             and any(f"[{e}]" in l or f"episode={e}" in l for e in episodes)]
    reason = re.search(r"reason=(.*?) requeued=", left[0])
    return (stamp(left[0]) - killed, (min(moved) - killed) if moved else None,
            reason.group(1) if reason else "?")


def recovery(bindir, runs=10):
    """(declared gone, dispatched elsewhere, how) per run in which both were seen, in seconds after the kill."""
    return [r for r in (run_once(bindir) for _ in range(runs)) if r and r[1] is not None]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    rows = recovery(args.bin, args.runs)
    print("| run | declared gone after kill | episodes dispatched elsewhere after kill | how it was noticed |")
    print("|---|---|---|---|")
    for i, (gone, moved, reason) in enumerate(rows, 1):
        print(f"| {i} | {gone:.2f} s | {moved:.2f} s | {reason} |")
    if rows:
        print(f"\nmedian time to episodes running elsewhere: {statistics.median(r[1] for r in rows):.2f} s "
              f"over {len(rows)} runs")


if __name__ == "__main__":
    main()
