#!/usr/bin/env python3
"""Every workload of the benchmark suite (W0-W4), one summary table, and the details of each; started by
bench/run, which installs what it needs, builds the release binaries and picks the venv python.

    bench/run [--smoke] [--runs N] [--out FILE]

Full mode writes bench/RESULTS.md (machine, date, commit, the table, the details). --smoke runs every
workload small and once, only to check that the suite still works (CI runs it); it checks the figures'
shape, not the targets, and writes .build/bench-smoke.md.
"""
import argparse, contextlib, datetime, io, json, os, platform, statistics, subprocess, sys, tempfile, time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import recovery, w0, w1, w2, w3  # noqa: E402


def say(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def captured(fn, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        fn(*args)
    return out.getvalue()


def run_w1(bindir, runs, smoke):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    args = [sys.executable, os.path.join(HERE, "w1.py"), "--bin", bindir, "--runs", str(runs), "--json", path]
    if smoke:
        args += ["--episodes", "6", "--modes", "leased,budget-none"]
    else:
        args += ["--modes", "leased,budget-none,budget-2x,leased-no-admission,local,local-split"]
    text = subprocess.run(args, check=True, capture_output=True, text=True, timeout=1800).stdout
    return json.load(open(path)), text


def machine():
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "commit": commit + ("+" if dirty else ""),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "load": os.getloadavg()[0]}


def mark(ok):
    return "✅" if ok else "❌ missed"


def kept_sections(path, written):
    """The sections of the file being replaced that this suite does not write (figures measured by other
    commands, such as `coordinator bench-leases`): they carry over, after the suite's own."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    kept, keep = [], False
    for line in lines:
        if line.startswith("## "):
            keep = line not in written
            if keep:
                kept.append("")
        if keep:
            kept.append(line)
    return kept


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--runs", type=int, default=3, help="runs of W0, W1 and W2 (medians); W4 runs 10")
    parser.add_argument("--out", help="Markdown file to write (default: bench/RESULTS.md, or .build/bench-smoke.md)")
    args = parser.parse_args()
    bindir = os.path.abspath(args.bin)
    smoke = args.smoke
    runs = 1 if smoke else args.runs
    started = time.time()
    m = machine()
    say(f"{'smoke' if smoke else 'full'} run on {m['cores']} cores, load {m['load']:.1f}")

    say("W0: overhead (Reelfarm, raw transport ceiling, Celery, Dask)")
    r0 = w0.w0(bindir, episodes=500 if smoke else 20000, tasks=200 if smoke else None, runs=runs,
               round_trips=20_000 if smoke else 200_000, progress=lambda x: say("  " + x))
    say("W1: rate-limited batch against the mock provider")
    r1, w1_text = run_w1(bindir, runs, smoke)
    say("W2: scaling 1/2/4/8 workers")
    r2 = w2.w2(bindir, runs=runs, episodes=12 if smoke else 96, workers=(1, 2) if smoke else (1, 2, 4, 8),
               progress=lambda x: say("  " + x))
    say("W3: footprint")
    r3 = (w3.w3(bindir, 2000, 1000, 2, 6, False, progress=lambda x: say("  " + x)) if smoke
          else w3.w3(bindir, progress=lambda x: say("  " + x)))
    say("W4: recovery after SIGKILL")
    r4 = recovery.recovery(bindir, 1 if smoke else 10)
    if not r4:
        raise SystemExit("W4: no run saw the killed worker's episodes dispatched elsewhere")

    # The summary table.
    med, rat = r0["medians"], r0["ratios"]
    leased = r1.get("leased", [])
    l429 = statistics.median(sum(r[f"429_{p}"] for p in ("llm", "image", "tts")) for r in leased) if leased else None
    lmake = statistics.median(r["makespan"] for r in leased) if leased else None

    def w1_row(mode, what, max429, max_ratio):
        runs1 = r1.get(mode, [])
        if not runs1:
            return ("W1", what, "-", "", "")
        n429 = statistics.median(sum(r[f"429_{p}"] for p in ("llm", "image", "tts")) for r in runs1)
        ratio = statistics.median(r["makespan"] for r in runs1) / w1.LOWER_BOUND
        target = f"≤ {max429} 429s, ≤ {max_ratio:.2f}× bound"
        return ("W1", what, f"{n429:g} 429s; {ratio:.3f}× bound", target,
                mark(n429 <= max429 and ratio <= max_ratio) if not smoke else "")
    w2rows = {row["workers"]: row for row in r2["rows"]}
    top = max(w2rows)
    coord = [c for c in r3["coordinator"] if c["episodes"] == r3["queued"]]
    coord_worst = max(coord, key=lambda c: c["rss_kib"])
    idle = r3["worker"]["idle"]["rss_kib"]
    welcome = statistics.median(c["welcome"] for c in r3["connect"])
    recover = statistics.median(r[1] for r in r4)
    mib = lambda kib: kib / 1024  # noqa: E731
    rows = [
        ("W0", "Reelfarm no-op episodes/s (journal on)", f"{med['reelfarm']:,.0f}/s", "", ""),
        ("W0", "÷ Celery + Redis, pair by pair", f"{rat['celery']['median']:.1f}×", "≥ 10×",
         mark(rat["celery"]["median"] >= 10)),
        ("W0", "÷ Dask distributed, pair by pair", f"{rat['dask']['median']:.1f}×", "≥ 3×",
         mark(rat["dask"]["median"] >= 3)),
        ("W0", f"÷ raw transport ceiling ({med['ceiling']:,.0f} round trips/s)",
         f"{100 * rat['ceiling']['median']:.1f}%", "≥ 10%", mark(rat["ceiling"]["median"] >= 0.10)),
        ("W1", "leased fleet budget (true limits): makespan; 429s",
         f"{lmake:.2f} s ({lmake / w1.LOWER_BOUND:.3f}× bound); {l429:g} 429s" if leased else "-",
         "zero 429s, ≤ 1.03× bound", mark(l429 == 0 and lmake / w1.LOWER_BOUND <= 1.03) if leased else ""),
        w1_row("budget-none", "no budget, limits learned: 429s; makespan ÷ bound", 20, 1.03),
        w1_row("budget-2x", "budget 2× the true limits: 429s; makespan ÷ bound", 10, 1.05),
        ("W2", f"speedup of {top} workers over 1 ({r2['episodes']} episodes)", f"{w2rows[top]['speedup']:.2f}×",
         "≥ 7× (8 workers)" if top == 8 else "(smoke)", mark(w2rows[top]["speedup"] >= 7) if top == 8 else ""),
        ("W3", f"coordinator VmRSS, {r3['queued']:,} queued (worst of HTTP/journal settings)",
         f"{mib(coord_worst['rss_kib']):.1f} MiB", "< 64 MiB", mark(mib(coord_worst["rss_kib"]) < 64)),
        ("W3", "idle worker VmRSS", f"{mib(idle):.1f} MiB", "< 32 MiB", mark(mib(idle) < 32)),
        ("W3", "worker VmHWM at full load", f"{mib(r3['worker']['load_hwm_kib']):.1f} MiB", "", ""),
        ("W3", "`worker --connect` spawn → HELLO acknowledged (median)", f"{1000 * welcome:.0f} ms", "", ""),
        ("W4", f"SIGKILLed worker → its episodes dispatched elsewhere (median of {len(r4)})", f"{recover:.2f} s",
         "< 3.5 s", mark(recover < 3.5)),
    ]
    table = ["| workload | figure | result | target | |", "|---|---|---|---|---|"]
    table += [f"| {' | '.join(r)} |" for r in rows]

    doc = [
        "# Benchmark results" if not smoke else "# Benchmark smoke run (figures not meaningful)",
        "",
        f"`bench/run{' --smoke' if smoke else ''}` on {m['cores']} cores ({m['cpu']}, Linux {m['kernel']}), "
        f"{m['date']}, commit {m['commit']}, load average {m['load']:.1f} at the start; took "
        f"{(time.time() - started) / 60:.1f} min. Medians of {runs} run(s) (W4: {len(r4)}); ratios between "
        "systems are computed pair by pair within the same run.",
        "",
    ] + table + [
        "", "## W0: overhead", "", captured(w0.print_markdown, r0),
        "## W1: rate-limited batch", "", w1_text,
        "## W2: scaling", "", captured(w2.print_markdown, r2),
        "## W3: footprint", "", captured(w3.print_markdown, r3),
        "## W4: recovery", "",
        "| run | declared gone after kill | episodes dispatched elsewhere after kill | how it was noticed |",
        "|---|---|---|---|",
    ] + [f"| {i} | {g:.2f} s | {mv:.2f} s | {how} |" for i, (g, mv, how) in enumerate(r4, 1)]
    out = args.out or (os.path.join(ROOT, ".build", "bench-smoke.md") if smoke else os.path.join(HERE, "RESULTS.md"))
    doc += kept_sections(out, {line for line in doc if line.startswith("## ")})
    with open(out, "w") as f:
        f.write("\n".join(doc).rstrip() + "\n")
    print("\n".join(table))
    say(f"wrote {out}")


if __name__ == "__main__":
    main()
