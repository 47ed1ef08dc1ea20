#!/usr/bin/env python3
"""Workload W1: a rate-limited batch against the mock provider, per budget mode.

24 episodes; each one LLM call, then 4 scene images + 2 B-roll images + 2 TTS clips with at most 5 in
flight per episode, then a 200 ms (simulated) render. Mock latencies LLM 400 ms, image 800 ms, TTS 300 ms;
limits enforced by the mock over every sliding 1-second window: LLM 5/s (OpenAI shape), image 10/s
(Hugging Face shape), TTS 20/s (ElevenLabs shape). 4 local workers x 3 episodes.

Modes, in the same run:
  leased       the coordinator leases the fleet-wide budget (Reelfarm), configured at the true limits
  budget-none  no budget: the coordinator learns the limits from the providers' answers (issue 16)
  budget-2x    every budget configured at twice the true limit: learning brings it down
  leased-no-admission   the same without budget-aware admission (leases.admission_windows: 0)
  local        every worker enforces the full limit on its own (four boxes running the old script)
  local-split  every worker enforces limit / 4 (the manual workaround)

Run through bench/w1.sh, which installs and builds what this needs. Prints a Markdown table.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

EPISODES = 24
WORKERS = 4
LOWER_BOUND = 15.4  # 0.4 s script + 144 images at 10 per window (15 windows, last starts at 14.4 s) + 0.8 + 0.2
FASTEST_EPISODE = 2.2  # 0.4 script + two rounds of 800 ms images (8 calls, 5 in flight) + 0.2 render
LIMITS = {"llm": 5, "image": 10, "tts": 20}
MOCK_NAMES = {"llm": "openai", "image": "huggingface", "tts": "elevenlabs"}

MOCK_CONFIG = {
    "seed": 1,
    "script_lines": 2,
    "script_broll": 2,
    "script_narration": False,
    "openai": {"request_limit": 5, "window_ms": 1000, "latency_ms": 400},
    "huggingface": {"request_limit": 10, "window_ms": 1000, "latency_ms": 800},
    "elevenlabs": {"request_limit": 20, "window_ms": 1000, "latency_ms": 300, "max_concurrent": None},
}

BUDGETS = ["--budget", "llm=5/s", "--budget", "image=10/s", "--budget", "tts=20/s"]
BUDGETS_2X = ["--budget", "llm=10/s", "--budget", "image=20/s", "--budget", "tts=40/s"]
# mode -> (coordinator flags, extra settings-file text)
MODES = {
    "leased": (BUDGETS, ""),
    "budget-none": ([], ""),
    "budget-2x": (BUDGETS_2X, ""),
    "leased-no-admission": (BUDGETS, "leases:\n  admission_windows: 0\n"),
    "local": (BUDGETS + ["--budget-mode", "local"], ""),
    "local-split": (BUDGETS + ["--budget-mode", "local-split"], ""),
}


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


def start_mock(binary, log):
    proc = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE, stderr=log, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"mock-provider did not start: {line!r}")
    return proc, line.strip().rsplit(" ", 1)[-1]


def run_once(mode, bindir, workdir, index, episodes):
    log_path = os.path.join(workdir, f"{mode}-{index}.log")
    with open(log_path, "w") as log:
        mock, base = start_mock(os.path.join(bindir, "mock-provider"), log)
        try:
            http("POST", f"{base}/admin/config", MOCK_CONFIG)
            out = os.path.join(workdir, "output")
            batch_id = f"w1-{mode}-{index}"
            env = dict(os.environ)
            env.update({
                "REELFARM_PROVIDERS": "script=openai,voice=elevenlabs,image=huggingface,render=simulated",
                "REELFARM_SIM_LATENCY": "render=200",
                "OPENAI_BASE_URL": f"{base}/v1",
                "OPENAI_API_KEY": "sk-bench-not-a-real-key",
                "HF_BASE_URL": f"{base}/hf/models",
                "HF_TOKEN": "hf_bench_not_a_real_token",
                "ELEVENLABS_BASE_URL": f"{base}/elevenlabs/v1",
                "ELEVENLABS_API_KEY": "bench-not-a-real-key",
                "MAX_PARALLEL_EPISODES": "3",
                "MAX_PARALLEL_API_CALLS": "5",
                # W1 counts every request the mock saw: no provider check before the batch.
                "REELFARM_NO_CHECK": "1",
            })
            # The comparison modes live on retries (as the old script did); give them enough that no call
            # ends as a placeholder. Leased mode does not use them: its 429s never count as retries.
            config = os.path.join(workdir, "reelfarm.yaml")
            with open(config, "w") as f:
                f.write("http:\n  max_retries: 20\n" + MODES[mode][1])
            cmd = [
                os.path.join(bindir, "coordinator"), "--workers", str(WORKERS), "--episodes", str(episodes),
                "--bind", "tcp://127.0.0.1:*", "--output", out, "--batch-id", batch_id, "--log-level", "warning",
                "--config", config,
                # W1 measures how much of the providers' limits a fleet uses: every call goes to the mock
                # (the asset store would answer requests that repeat across episodes without a call).
                "--no-reuse",
            ] + MODES[mode][0]
            code = subprocess.call(cmd, stdout=log, stderr=log, env=env, cwd=workdir)
            stats = http("GET", f"{base}/stats")
        finally:
            mock.send_signal(signal.SIGTERM)
            mock.wait(timeout=10)
    with open(os.path.join(out, batch_id, "summary.json")) as f:
        summary = json.load(f)
    timing = summary.get("timing") or {}
    learned = {kind: (summary.get("budgets", {}).get(kind) or {}).get("learned") for kind in LIMITS}
    row = {
        "learned": learned,
        "exit": code,
        "succeeded": summary["totals"]["succeeded"],
        "placeholders": summary["totals"]["placeholders"],
        "makespan": timing.get("makespan_seconds", float("nan")),
        "first": timing.get("first_finished_seconds", float("nan")),
        "latency": timing.get("mean_episode_latency_seconds", float("nan")),
    }
    for kind, name in MOCK_NAMES.items():
        total = stats[name]["total"] if "total" in stats[name] else stats[name]
        row[f"429_{kind}"] = total["rejected"].get("rate_limit", 0) + total["rejected"].get("concurrency", 0)
        row[f"max_{kind}"] = total["max_accepted_in_window"]
        row[f"accepted_{kind}"] = total["accepted"]
    return row


def median(rows, key):
    values = [r[key] for r in rows]
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="folder with coordinator, worker, mock-provider")
    parser.add_argument("--runs", type=int, default=3, help="runs per mode; the table shows medians")
    parser.add_argument("--modes", default="leased,budget-none,budget-2x,leased-no-admission,local,local-split")
    parser.add_argument("--episodes", type=int, default=EPISODES)
    parser.add_argument("--json", help="also write every run's figures to this file")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="reelfarm-w1-")
    results = {}
    for run in range(args.runs):
        for mode in args.modes.split(","):
            row = run_once(mode, args.bin, workdir, run, args.episodes)
            results.setdefault(mode, []).append(row)
            print(f"  run {run + 1}/{args.runs} {mode}: makespan {row['makespan']:.2f} s, "
                  f"429s llm/image/tts {row['429_llm']}/{row['429_image']}/{row['429_tts']}, "
                  f"busiest windows {row['max_llm']}/{row['max_image']}/{row['max_tts']}", file=sys.stderr)

    print(f"W1: {args.episodes} episodes, {WORKERS} workers x 3 episodes, mock limits LLM 5/s, image 10/s, "
          f"TTS 20/s (sliding 1 s windows); medians of {args.runs} runs; lower bound {LOWER_BOUND} s "
          f"(24 episodes); fastest single episode {FASTEST_EPISODE} s.")
    print()
    print("| mode | makespan | ÷ bound | 429s llm / image / tts | busiest 1 s window llm / image / tts "
          "| image utilisation | first episode done | mean episode latency | succeeded | placeholders |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for mode, rows in results.items():
        makespan = median(rows, "makespan")
        util = median(rows, "accepted_image") / (LIMITS["image"] * makespan) if makespan else float("nan")
        print(
            f"| {mode} | {makespan:.2f} s | {makespan / LOWER_BOUND:.3f} | "
            f"{median(rows, '429_llm'):g} / {median(rows, '429_image'):g} / {median(rows, '429_tts'):g} | "
            f"{median(rows, 'max_llm'):g} / {median(rows, 'max_image'):g} / {median(rows, 'max_tts'):g} | "
            f"{util * 100:.1f}% | {median(rows, 'first'):.2f} s ({median(rows, 'first') / FASTEST_EPISODE:.2f}×) | "
            f"{median(rows, 'latency'):.2f} s | {median(rows, 'succeeded'):g}/{args.episodes} | "
            f"{median(rows, 'placeholders'):g} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
