#!/usr/bin/env python3
"""Workload W3: footprint. Resident memory of the coordinator with a big queue and of a worker idle and at
full load, and the time a worker takes from its process start to its session (HELLO answered by WELCOME).

(a) Coordinator: `coordinator --workers 0 --episodes N` (no worker ever connects, so all N stay pending),
    N = 10,000 and 100,000, without and with the `--state` journal, HTTP on (the default; the status page
    is rebuilt every 250 ms) and, to see what that costs, off (both journal modes); plus an empty `coordinator serve` (no batch)
    as the baseline. Loaded = the log line `Batch processing: N episodes` and, with HTTP, the /metrics
    gauge reelfarm_episodes{state="pending"} at N (/metrics, not /api/status: /api/status would encode
    every episode and raise the very peak being measured). Then RSS is left to settle (less than 1 MiB of
    growth in a second, at most 20 s) and sampled for a second at 20 Hz: VmRSS (median), RssAnon (median:
    heap and stacks, i.e. VmRSS less the pages of the binary and its libraries) and VmHWM (peak since
    start) from /proc/PID/status, and the CPU the process used in that second. Bytes per queued
    episode = (RSS at 100k - RSS at 10k) / 90,000. Last, a worker is started against it and the time to its
    WELCOME noted (at most 10 s): a coordinator busy rebuilding its status page may not answer at all.
(b) Worker: `worker --connect` (3 slots, simulated providers) to a `coordinator serve`: idle once connected
    (sampled for a second), then at full load (a batch of 24 episodes on its 3 slots, LLM 400 / image 800
    / TTS 300 / render 200 ms; VmHWM at the end is the peak over the run), then idle again.
(c) Connect: from spawning `worker --connect` to its `connected to coordinator` log line (logged when the
    WELCOME arrives; the worker retries HELLO every 50 ms while its socket connects), median of 10
    workers started one after another; split into process start -> `worker connecting` (socket set up)
    and that -> WELCOME.

Targets the project holds itself to: coordinator < 64 MiB with 100k queued, idle worker < 32 MiB.

    python3 bench/w3.py --bin .build/release [--queued 100000] [--connect-runs 10] [--json FILE] [--smoke]

`--smoke` (10k/1k queued, 3 connects, 6 episodes of load, no HTTP-off rows) takes under 30 s.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.error, urllib.request
from benchlib import free_port, stamp

COORDINATOR_TARGET_MIB = 64
IDLE_WORKER_TARGET_MIB = 32
SIM_LATENCY = "llm=400,tts=300,image=800,render=200"


# MARK: - /proc

def status_kib(pid):
    """VmRSS, VmHWM and RssAnon (heap and stacks: VmRSS less the mapped binary and libraries) in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def sample(pid, seconds=1.0, hz=20):
    """VmRSS samples over `seconds`, VmHWM at the end and the CPU share used meanwhile (1.0 = one core)."""
    rss, anon, c0, t0 = [], [], cpu_seconds(pid), time.time()
    while time.time() - t0 < seconds:
        st = status_kib(pid)
        rss.append(st["VmRSS"])
        anon.append(st["RssAnon"])
        time.sleep(1 / hz)
    elapsed = time.time() - t0
    return {"rss_kib": statistics.median(rss), "rss_max_kib": max(rss), "hwm_kib": status_kib(pid)["VmHWM"],
            "anon_kib": statistics.median(anon), "cpu": (cpu_seconds(pid) - c0) / elapsed}


def settle(pid, limit=20.0, growth_kib=1024):
    """Waits until RSS grows less than `growth_kib` in a second (at most `limit` s); returns the wait."""
    t0, last = time.time(), status_kib(pid)["VmRSS"]
    while time.time() - t0 < limit:
        time.sleep(1.0)
        now = status_kib(pid)["VmRSS"]
        if now - last < growth_kib:
            break
        last = now
    return time.time() - t0


def mib(kib):
    return kib / 1024


# MARK: - processes

def env_for_bench():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REELFARM_", "MAX_PARALLEL_", "MAX_WORKER_"))}
    env.update(REELFARM_PROVIDERS="simulated", REELFARM_SIM_LATENCY=SIM_LATENCY)
    return env


def wait_for(predicate, timeout, what, proc=None, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.02)
    tail = "".join(open(log).readlines()[-15:]) if log and os.path.exists(log) else ""
    raise SystemExit(f"W3 FAILED: no {what} within {timeout:.0f} s" +
                     (f" (exit {proc.returncode})" if proc is not None and proc.poll() is not None else "") +
                     f"\n{tail}")


def log_line(path, *needles):
    """The first line of the log at `path` containing every needle, or None."""
    try:
        with open(path) as f:
            for line in f:
                if all(n in line for n in needles):
                    return line
    except FileNotFoundError:
        pass
    return None


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def pending_gauge(http):
    try:
        for line in http_get(f"http://{http}/metrics", timeout=2).splitlines():
            if line.startswith('reelfarm_episodes{state="pending"}'):
                return float(line.split()[-1])
    except OSError:
        return None
    return None


def stop(proc, sig=signal.SIGTERM, timeout=10):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def du_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


# MARK: - (a) the coordinator with a queue

def coordinator_footprint(bindir, episodes, journal=False, http=True, join_timeout=10.0):
    """RSS of a coordinator holding `episodes` pending (0: an empty `coordinator serve`); then how long a
    worker started against it waits for its WELCOME (None: not within `join_timeout`)."""
    d = tempfile.mkdtemp(prefix="reelfarm-w3-coordinator-")
    log = d + "/coordinator.log"
    address = f"127.0.0.1:{free_port()}" if http else "off"
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    cmd = [f"{bindir}/coordinator"] + (["serve"] if episodes == 0 else
                                       ["--workers", "0", "--episodes", str(episodes), "--batch-id", "w3"])
    cmd += ["--bind", endpoint, "--http", address, "--output", d + "/out",
            "--progress", "off", "--log-level", "info"]
    if journal:
        cmd += ["--state", d + "/state"]
    started = time.time()
    proc = subprocess.Popen(cmd, cwd=d, env=env_for_bench(), stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        if episodes == 0:
            wait_for(lambda: log_line(log, "coordinator listening"), 30, "`coordinator listening`", proc, log)
            if http:
                wait_for(lambda: log_line(log, "dashboard and status API"), 30, "HTTP server", proc, log)
        else:
            wait_for(lambda: log_line(log, f"Batch processing: {episodes} episodes"), 300,
                     f"`Batch processing: {episodes} episodes`", proc, log)
            if http:
                wait_for(lambda: pending_gauge(address) == episodes, 120, f"pending = {episodes} on /metrics",
                         proc, log)
        loaded = time.time() - started
        settled = settle(proc.pid)
        s = sample(proc.pid)
        state_bytes = du_bytes(d + "/state") if journal else 0
        welcome = join_once(bindir, endpoint, d, join_timeout)
    finally:
        stop(proc, signal.SIGKILL)
        shutil.rmtree(d, ignore_errors=True)
    return dict(s, episodes=episodes, journal=journal, http=http, loaded_seconds=loaded,
                settled_seconds=settled, state_bytes=state_bytes, welcome=welcome)


def join_once(bindir, endpoint, d, timeout):
    """Seconds from spawning a worker to its WELCOME from the coordinator at `endpoint`; None if none came
    within `timeout` (the worker is killed either way: it may have jobs by then)."""
    log = d + "/join-worker.log"
    started = time.time()
    proc = subprocess.Popen([f"{bindir}/worker", "--connect", endpoint, "--worker-id", "w3-probe",
                             "--output", d + "/probe-out"],
                            cwd=d, env=env_for_bench(), stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None:
            line = log_line(log, "connected to coordinator")
            if line:
                return stamp(line) - started
            time.sleep(0.02)
        return None
    finally:
        stop(proc, signal.SIGKILL)


# MARK: - (b) and (c) workers against `coordinator serve`

class Serve:
    def __init__(self, bindir):
        self.dir = tempfile.mkdtemp(prefix="reelfarm-w3-serve-")
        self.endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        self.log = self.dir + "/coordinator.log"
        self.bindir = bindir
        self.proc = subprocess.Popen(
            [f"{bindir}/coordinator", "serve", "--bind", self.endpoint, "--http", self.http,
             "--output", self.dir + "/out", "--progress", "off", "--log-level", "info"],
            cwd=self.dir, env=env_for_bench(), stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        wait_for(lambda: self.healthy(), 30, "coordinator serve /health", self.proc, self.log)

    def healthy(self):
        try:
            return "ok" in http_get(f"http://{self.http}/health", timeout=1)
        except OSError:
            return False

    def worker(self, name, slots=3, level="info"):
        log = f"{self.dir}/{name}.log"
        started = time.time()
        proc = subprocess.Popen(
            [f"{self.bindir}/worker", "--connect", self.endpoint, "--worker-id", name,
             "--max-parallel-episodes", str(slots), "--output", f"{self.dir}/{name}-out", "--log-level", level],
            cwd=self.dir, env=env_for_bench(), stdout=open(log, "w"), stderr=subprocess.STDOUT)
        return proc, log, started

    def submit(self, episodes, batch_id):
        req = urllib.request.Request(f"http://{self.http}/api/batches?episodes={episodes}&id={batch_id}",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def batch(self, batch_id):
        """The batch's listing; {} until it shows (the HTTP side sees the loop's state every 250 ms, so a
        batch just submitted may answer 404 for a moment)."""
        try:
            return json.loads(http_get(f"http://{self.http}/api/batches/{batch_id}"))
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return {}
            raise

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def worker_footprint(serve, load_episodes):
    proc, log, _ = serve.worker("w3-load")
    try:
        wait_for(lambda: log_line(log, "connected to coordinator"), 30, "WELCOME", proc, log)
        time.sleep(1.0)
        idle = sample(proc.pid)
        serve.submit(load_episodes, "w3-load")
        t0, rss, anon, batch = time.time(), [], [], {}
        while time.time() - t0 < 60 + 5 * load_episodes:
            st = status_kib(proc.pid)
            rss.append(st["VmRSS"])
            anon.append(st["RssAnon"])
            batch = serve.batch("w3-load")
            if batch and batch.get("state") not in ("queued", "running"):
                break
            time.sleep(0.1)
        run_seconds = time.time() - t0
        hwm = status_kib(proc.pid)["VmHWM"]
        if batch.get("succeeded") != load_episodes:
            raise SystemExit(f"W3 FAILED: the load batch ended {batch.get('state')!r} with "
                             f"{batch.get('succeeded')}/{load_episodes} succeeded")
        time.sleep(1.0)
        after = sample(proc.pid)
    finally:
        stop(proc)
    return {"idle": idle, "load_rss_max_kib": max(rss), "load_rss_median_kib": statistics.median(rss),
            "load_hwm_kib": hwm, "load_anon_max_kib": max(anon), "load_episodes": load_episodes, "load_seconds": run_seconds, "idle_after": after}


def connect_times(serve, runs):
    rows = []
    for i in range(runs):
        name = f"w3-join-{i + 1}"
        proc, log, started = serve.worker(name)
        try:
            welcome = wait_for(lambda: log_line(log, "connected to coordinator"), 30, "WELCOME", proc, log)
            connecting = log_line(log, "worker connecting")
            joined = wait_for(lambda: log_line(serve.log, "worker joined", f"worker={name}"), 5,
                              "`worker joined` at the coordinator", serve.proc, serve.log)
        finally:
            stop(proc)
        rows.append({"welcome": stamp(welcome) - started,
                     "socket_ready": stamp(connecting) - started if connecting else None,
                     "coordinator_joined": stamp(joined) - started})
        time.sleep(0.2)
    return rows


# MARK: - all of it

def w3(bindir, queued=100_000, small=10_000, connect_runs=10, load_episodes=24, http_off=True, progress=None):
    """Measures (a), (b) and (c); returns the figures (KiB, seconds)."""
    say = progress or (lambda m: None)
    coordinator = []
    configs = [(0, False, True)] + [(n, j, True) for n in (small, queued) for j in (False, True)]
    if http_off:
        configs += [(n, j, False) for n in (small, queued) for j in (False, True)]
    for n, journal, http in configs:
        r = coordinator_footprint(bindir, n, journal, http)
        coordinator.append(r)
        say(f"coordinator {n} queued, journal {'on' if journal else 'off'}, HTTP {'on' if http else 'off'}: "
            f"RSS {mib(r['rss_kib']):.1f} MiB, HWM {mib(r['hwm_kib']):.1f} MiB, CPU {100 * r['cpu']:.0f}%, "
            f"loaded in {r['loaded_seconds']:.1f} s, a worker's WELCOME {welcome_text(r['welcome'])}")
    per_episode = {}
    for journal, http in ((False, True), (True, True), (False, False), (True, False)):
        a = [r for r in coordinator if r["episodes"] == small and r["journal"] == journal and r["http"] == http]
        b = [r for r in coordinator if r["episodes"] == queued and r["journal"] == journal and r["http"] == http]
        if a and b:
            key = f"journal {'on' if journal else 'off'}, HTTP {'on' if http else 'off'}"
            per_episode[key] = (b[0]["rss_kib"] - a[0]["rss_kib"]) * 1024 / (queued - small)

    serve = Serve(bindir)
    try:
        worker = worker_footprint(serve, load_episodes)
        say(f"worker idle RSS {mib(worker['idle']['rss_kib']):.1f} MiB, at load HWM {mib(worker['load_hwm_kib']):.1f} MiB")
        connects = connect_times(serve, connect_runs)
        say(f"connect: median {1000 * statistics.median(r['welcome'] for r in connects):.0f} ms")
    finally:
        serve.close()
    return {"queued": queued, "small": small, "coordinator": coordinator, "bytes_per_queued_episode": per_episode,
            "worker": worker, "connect": connects,
            "targets_mib": {"coordinator_100k": COORDINATOR_TARGET_MIB, "idle_worker": IDLE_WORKER_TARGET_MIB}}


def welcome_text(seconds):
    return "none within 10 s" if seconds is None else f"{1000 * seconds:.0f} ms"


def print_markdown(res):
    def verdict(kib, target):
        return f"{'within' if mib(kib) < target else '**over**'} {target} MiB"

    print(f"W3: footprint (VmRSS median over 1 s at 20 Hz, VmHWM = peak since start, /proc/PID/status; "
          f"1 MiB = 1,048,576 bytes)\n")
    print("(a) coordinator, `--workers 0`, every episode pending (no worker connected)\n")
    print("| queued | journal (`--state`) | HTTP | VmRSS | of which RssAnon | VmHWM | target | CPU while idle | loaded after | journal size "
          "| then a worker: spawn → WELCOME |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in res["coordinator"]:
        target = verdict(r["rss_kib"], COORDINATOR_TARGET_MIB) if r["episodes"] == res["queued"] else ""
        queued = f"{r['episodes']:,}" if r["episodes"] else "0 (`serve`, no batch)"
        size = f"{r['state_bytes'] / 2**20:.1f} MiB" if r["journal"] else "–"
        print(f"| {queued} | {'on' if r['journal'] else 'off'} | {'on' if r['http'] else 'off'} | "
              f"{mib(r['rss_kib']):.1f} MiB | {mib(r['anon_kib']):.1f} MiB | {mib(r['hwm_kib']):.1f} MiB | {target} | "
              f"{100 * r['cpu']:.0f}% | "
              f"{r['loaded_seconds']:.1f} s | {size} | {welcome_text(r['welcome'])} |")
    if res["bytes_per_queued_episode"]:
        print(f"\nbytes of RSS per queued episode ({res['small']:,} → {res['queued']:,}): " + "; ".join(
            f"{k}: {v:,.0f}" for k, v in res["bytes_per_queued_episode"].items()))

    w = res["worker"]
    print(f"\n(b) worker, 3 slots, simulated providers\n")
    print("| state | VmRSS | of which RssAnon | VmHWM | target | CPU |")
    print("|---|---|---|---|---|---|")
    print(f"| idle, connected | {mib(w['idle']['rss_kib']):.1f} MiB | {mib(w['idle']['anon_kib']):.1f} MiB | "
          f"{mib(w['idle']['hwm_kib']):.1f} MiB | "
          f"{verdict(w['idle']['rss_kib'], IDLE_WORKER_TARGET_MIB)} | {100 * w['idle']['cpu']:.0f}% |")
    print(f"| full load: {w['load_episodes']} episodes on 3 slots, {w['load_seconds']:.1f} s | "
          f"{mib(w['load_rss_median_kib']):.1f} MiB (max {mib(w['load_rss_max_kib']):.1f}) | "
          f"{mib(w['load_anon_max_kib']):.1f} MiB (max) | {mib(w['load_hwm_kib']):.1f} MiB | | |")
    print(f"| idle again, after the batch | {mib(w['idle_after']['rss_kib']):.1f} MiB | "
          f"{mib(w['idle_after']['anon_kib']):.1f} MiB | "
          f"{mib(w['idle_after']['hwm_kib']):.1f} MiB | {verdict(w['idle_after']['rss_kib'], IDLE_WORKER_TARGET_MIB)} "
          f"| {100 * w['idle_after']['cpu']:.0f}% |")

    c = res["connect"]
    print(f"\n(c) `worker --connect` (process spawn) to its session (WELCOME), {len(c)} workers one after another\n")
    print("| run | spawn → socket set up (`worker connecting`) | spawn → WELCOME (`connected to coordinator`) "
          "| spawn → coordinator's `worker joined` |")
    print("|---|---|---|---|")
    for i, r in enumerate(c, 1):
        ready = f"{1000 * r['socket_ready']:.0f} ms" if r["socket_ready"] is not None else "?"
        print(f"| {i} | {ready} | {1000 * r['welcome']:.0f} ms | {1000 * r['coordinator_joined']:.0f} ms |")
    welcome = [r["welcome"] for r in c]
    ready = [r["socket_ready"] for r in c if r["socket_ready"] is not None]
    print(f"\nspawn → WELCOME: median **{1000 * statistics.median(welcome):.0f} ms** "
          f"(min {1000 * min(welcome):.0f}, max {1000 * max(welcome):.0f})"
          + (f"; of which process start to socket set up: median {1000 * statistics.median(ready):.0f} ms" if ready else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True, help="folder with coordinator and worker")
    parser.add_argument("--queued", type=int, default=100_000, help="episodes queued for the target row")
    parser.add_argument("--small", type=int, default=10_000, help="the smaller queue, for bytes per episode")
    parser.add_argument("--connect-runs", type=int, default=10)
    parser.add_argument("--load-episodes", type=int, default=24, help="episodes of the worker's full-load batch")
    parser.add_argument("--no-http-off", action="store_true", help="skip the rows with --http off")
    parser.add_argument("--smoke", action="store_true", help="small and quick: 10k/1k queued, 3 connects, 6 episodes")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    if args.smoke:
        args.queued, args.small, args.connect_runs, args.load_episodes, args.no_http_off = 10_000, 1_000, 3, 6, True
    res = w3(args.bin, args.queued, args.small, args.connect_runs, args.load_episodes, not args.no_http_off,
             progress=lambda m: print("  " + m, file=sys.stderr))
    print_markdown(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
