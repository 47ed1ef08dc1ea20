#!/usr/bin/env python3
"""Artifact transfer over ZeroMQ (PROTOCOL §17): how long from a worker's RESULT offering an episode's
file to the coordinator's ARTIFACT_ACK (pulled in 256 KiB chunks with credit 8, SHA-256 checked, fsynced,
renamed, journaled), and the throughput that gives.

The worker here is a small Python (pyzmq) implementation of the protocol, written from docs/PROTOCOL.md,
so this also shows that a worker in another language can deliver files. It offers one file of random
bytes per episode; the real `coordinator` (release build) pulls it.

    bench/artifacts.sh [--sizes-mb 2,64] [--episodes 5]
"""
import argparse, hashlib, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, uuid

import zmq

PROTO = b"reelfarm/1"
HELLO, WELCOME, JOB, RESULT, HEARTBEAT, DISCONNECT = (bytes([k]) for k in (1, 2, 3, 5, 6, 7))
FETCH, CHUNK, ACK = bytes([0x20]), bytes([0x21]), bytes([0x22])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(bin_dir, size_mb, episodes, work):
    port = free_port()
    out, state = os.path.join(work, f"out-{size_mb}"), os.path.join(work, f"state-{size_mb}")
    spool = os.path.join(work, f"spool-{size_mb}")
    os.makedirs(spool, exist_ok=True)
    coordinator = subprocess.Popen(
        [os.path.join(bin_dir, "coordinator"), "--episodes", str(episodes), "--workers", "0",
         "--bind", f"tcp://127.0.0.1:{port}", "--output", out, "--state", state, "--batch-id", "art",
         "--log-level", "warning"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 1000)
    sock.connect(f"tcp://127.0.0.1:{port}")
    session, offered, times, files = "", {}, [], {}

    def send(kind, body, blob=None):
        frames = [PROTO, kind, session.encode(), json.dumps(body).encode()]
        if blob is not None:
            frames.append(blob)
        sock.send_multipart(frames)

    time.sleep(0.3)
    send(HELLO, {"worker_id": "py-bench", "instance": str(uuid.uuid4()), "host": socket.gethostname(),
                 "pid": os.getpid(), "capacity": {"episodes": 1, "api_calls": 1},
                 "software_version": "py-bench", "protocol_minor": 2})
    last_sent, done = time.monotonic(), False
    while not done:
        if sock.poll(200, zmq.POLLIN):
            f = sock.recv_multipart()
            kind, body = f[1], json.loads(f[3])
            if kind == WELCOME:
                session = body["session"]
            elif kind == JOB:
                key = (body["episode_id"], body["attempt"])
                path = os.path.join(spool, f"{key[0]}-{key[1]}.bin")
                with open(path, "wb") as fh:
                    for _ in range(size_mb):
                        fh.write(os.urandom(1 << 20))
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                files[key] = (path, digest)
                offered[key] = time.monotonic()
                send(RESULT, {"episode_id": key[0], "attempt": key[1], "status": "succeeded", "duration_ms": 1,
                              "artifacts": [{"name": "episode.bin", "size": size_mb << 20, "sha256": digest}],
                              "delivery": "transfer"})
            elif kind == FETCH:
                key = (body["episode_id"], body["attempt"])
                with open(files[key][0], "rb") as fh:
                    fh.seek(body["offset"])
                    data = fh.read(body["length"])
                send(CHUNK, {k: body[k] for k in ("episode_id", "attempt", "name", "offset")}, data)
            elif kind == ACK:
                key = (body["episode_id"], body["attempt"])
                times.append(time.monotonic() - offered.pop(key))
                os.remove(files[key][0])
            elif kind == DISCONNECT:
                done = True
            last_sent = time.monotonic() if kind in (FETCH, JOB) else last_sent
        if session and time.monotonic() - last_sent >= 1.0:
            send(HEARTBEAT, {"running": []})
            last_sent = time.monotonic()
    sock.close()
    ctx.term()
    status = coordinator.wait(timeout=60)
    stored = os.path.join(out, "art", "episode_1", "episode.bin")
    with open(stored, "rb") as fh:
        same = hashlib.sha256(fh.read()).hexdigest() == files[("episode_1", 1)][1]
    return status, times, same


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--sizes-mb", default="2,64")
    p.add_argument("--episodes", type=int, default=5)
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="reelfarm-artifacts-")
    try:
        print("| file per episode | episodes | offer → ACK median | min | max | throughput (median) | coordinator exit | stored copy identical |")
        print("|---|---|---|---|---|---|---|---|")
        for size in [int(x) for x in a.sizes_mb.split(",")]:
            status, times, same = run(a.bin, size, a.episodes, work)
            med = statistics.median(times)
            print(f"| {size} MiB | {len(times)} | {med * 1000:.0f} ms | {min(times) * 1000:.0f} ms | "
                  f"{max(times) * 1000:.0f} ms | {size / med:.0f} MiB/s | {status} | {'yes' if same else 'NO'} |")
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
