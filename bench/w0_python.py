#!/usr/bin/env python3
"""Workload W0 ("overhead": no-op tasks, 4 worker processes) on the usual Python task systems, the
comparison side of bench/curve.sh's figure for Reelfarm. Tasks per second from the first submit to the
last result, with the cluster started and warmed up (a small group/map) before the clock starts.

- celery: Celery 5, Redis broker and result backend (a redis-server of its own on a free port), one
  `celery worker --pool prefork --concurrency 4` (the canonical one node with 4 pool processes), the
  canonical `group(noop.s(i) for i in range(N)).apply_async().get()`; settings in bench/w0_celery_app.py.
- dask: `LocalCluster(n_workers=4, threads_per_worker=1, processes=True)`,
  `client.map(noop, range(N), pure=False)`, wait, gather.

Every result is checked (the no-op returns its argument). Each run starts and tears down its own
redis-server, celery worker or cluster, and checks that no process of it is left.

    python3 bench/w0_python.py --system celery|dask [--tasks 20000] [--runs 3]

Needs the venv of bench/pyenv.sh: started with another python, it runs bench/pyenv.sh (idempotent; it
installs redis-server and the pinned packages the first time) and re-executes itself with the venv's python.
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(os.path.dirname(HERE), ".build", "bench-venv")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__ in the work tree
from benchlib import free_port  # noqa: E402

WARMUP = 200


def in_venv():
    return os.path.realpath(sys.prefix) == os.path.realpath(VENV)


def default_timeout(tasks):
    """Seconds the timed part may take before the run is declared hung (a floor of 50 tasks/s)."""
    return 60 + tasks / 50


def session_pids(sid):
    """The live (not zombie) processes of session `sid`, as pgrep sees them."""
    out = subprocess.run(["pgrep", "-s", str(sid)], capture_output=True, text=True).stdout
    def live(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    return [int(p) for p in out.split() if live(p)]


def stop(proc, name, sig=signal.SIGTERM, grace=15.0):
    """Signal the process (a session leader), SIGKILL its whole session if needed; check nothing is left."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            print(f"{name} still running {grace:.0f} s after {sig.name}; killing it", file=sys.stderr)
    deadline = time.monotonic() + 5
    while session_pids(proc.pid):
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.5)
            left = session_pids(proc.pid)
            if left:
                raise RuntimeError(f"{name}: processes left after SIGKILL: {left}")
            break
        time.sleep(0.1)
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def check(system, results, n):
    """The no-op returns its argument: all n results, in order, summing to n(n-1)/2."""
    if results is None or len(results) != n or sum(results) != n * (n - 1) // 2 or results != list(range(n)):
        got = "none" if results is None else f"{len(results)}, sum {sum(x or 0 for x in results)}"
        raise AssertionError(f"{system}: wrong results for {n} tasks ({got})")


def tail(path, lines=20):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def start_redis(work):
    import redis
    port = free_port()
    log = os.path.join(work, "redis.log")
    proc = subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited ({proc.returncode}):\n{tail(log)}")
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
            return proc, url
        except redis.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                stop(proc, "redis-server")
                raise RuntimeError(f"redis-server did not answer on port {port} in 10 s:\n{tail(log)}")
            time.sleep(0.05)


def celery_rate(tasks: int, workers: int = 4, timeout: float = None) -> float:
    """Tasks per second through Celery (Redis broker and backend, one prefork worker, concurrency `workers`)."""
    from celery import group
    from celery.exceptions import TimeoutError as CeleryTimeout
    from w0_celery_app import make_app
    timeout = timeout or default_timeout(tasks)
    work = tempfile.mkdtemp(prefix="reelfarm-w0-celery-")
    redis_proc, url = start_redis(work)
    worker = app = None
    try:
        log = os.path.join(work, "worker.log")
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "w0_celery_app", "worker", "--pool", "prefork",
             "--concurrency", str(workers), "--hostname", "w0@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel", "warning"],
            cwd=HERE, env=dict(os.environ, W0_REDIS_URL=url, PYTHONPATH=HERE, PYTHONDONTWRITEBYTECODE="1"),
            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        app = make_app(url)
        noop = app.tasks["w0.noop"]
        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=0.5):
            if worker.poll() is not None:
                raise RuntimeError(f"celery worker exited ({worker.returncode}):\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not answer a ping in 60 s:\n{tail(log)}")
        # Warm-up: every pool process runs tasks, the client's connections and subscriptions are up.
        check("celery warm-up", group(noop.s(i) for i in range(WARMUP)).apply_async().get(timeout=60), WARMUP)

        sigs = [noop.s(i) for i in range(tasks)]
        t0 = time.perf_counter()
        pending = group(sigs).apply_async()
        try:
            results = pending.get(timeout=max(1.0, t0 + timeout - time.perf_counter()))
        except CeleryTimeout:
            results = None
        elapsed = time.perf_counter() - t0
        del pending  # its results unsubscribe from Redis when collected: before Redis stops
        if results is None:
            raise RuntimeError(f"celery: not all {tasks} results in {timeout:.0f} s (logs in {work})")
        check("celery", results, tasks)
    finally:
        try:
            if app is not None:
                app.close()
            if worker is not None:
                # Cold shutdown (SIGQUIT): the work is done. A warm one (SIGTERM) with a backlog left by a
                # failed run waits about 30 s before restoring the prefetched messages.
                stop(worker, "celery worker", signal.SIGQUIT)
        finally:
            stop(redis_proc, "redis-server")
    shutil.rmtree(work)
    return tasks / elapsed


def dask_rate(tasks: int, workers: int = 4, timeout: float = None) -> float:
    """Tasks per second through Dask distributed (LocalCluster: `workers` processes, one thread each)."""
    import logging
    import psutil
    from dask.distributed import Client, LocalCluster, wait
    timeout = timeout or default_timeout(tasks)

    def noop(x):  # a local function: cloudpickle ships it by value, the workers need not import this file
        return x

    def workers_left():  # child processes, less zombies and multiprocessing's resource tracker (one per process)
        left = []
        for p in psutil.Process().children(recursive=True):
            try:
                if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                    left.append(p.pid)
            except psutil.Error:
                pass
        return left

    before = set(workers_left())
    # silence_logs: a worker's heartbeat racing close() logs an ERROR; a real failure raises in this process.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           silence_logs=logging.CRITICAL)
    try:
        with Client(cluster, timeout=60) as client:
            client.wait_for_workers(workers, timeout=60)
            check("dask warm-up", client.gather(client.map(noop, range(WARMUP), pure=False)), WARMUP)

            t0 = time.perf_counter()
            futures = client.map(noop, range(tasks), pure=False)
            try:
                wait(futures, timeout=timeout)
            except TimeoutError:
                raise RuntimeError(f"dask: not all {tasks} results in {timeout:.0f} s") from None
            results = client.gather(futures)
            elapsed = time.perf_counter() - t0
            check("dask", results, tasks)
            return tasks / elapsed
    finally:
        cluster.close(timeout=30)
        deadline = time.monotonic() + 10
        while set(workers_left()) - before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"dask: processes left after close: {sorted(set(workers_left()) - before)}")
            time.sleep(0.1)


def versions(system):
    import importlib.metadata as md
    if system == "celery":
        redis_server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
        return (f"celery {md.version('celery')}, kombu {md.version('kombu')}, redis-py {md.version('redis')}, "
                f"redis-server {next(w[2:] for w in redis_server if w.startswith('v='))}")
    return f"dask {md.version('dask')}, distributed {md.version('distributed')}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=["celery", "dask"], required=True)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, help="seconds one timed run may take (default 60 + tasks/50)")
    args = parser.parse_args()
    if not in_venv():
        py = subprocess.run([os.path.join(HERE, "pyenv.sh")], stdout=subprocess.PIPE, text=True,
                            check=True).stdout.split()[-1]
        os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])
    rate = celery_rate if args.system == "celery" else dask_rate
    runs = []
    for i in range(args.runs):
        runs.append(rate(args.tasks, args.workers, args.timeout))
        print(f"run {i + 1}: {runs[-1]:,.0f} tasks/s", flush=True)
    print(f"\nW0: {args.tasks} no-op tasks, {args.workers} worker processes, {versions(args.system)}; "
          f"median of {args.runs} runs\n")
    print("| system | tasks/s (median) | runs |")
    print("|---|---|---|")
    print(f"| {args.system} | {statistics.median(runs):,.0f} | {', '.join(f'{x:,.0f}' for x in runs)} |")


if __name__ == "__main__":
    main()
