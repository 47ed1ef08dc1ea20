#!/usr/bin/env python3
"""Reelfarm reference worker: docs/PROTOCOL.md (v1, minor 4) in one Python file, written from the spec.

It speaks the protocol a real worker speaks and fakes only the work: each pipeline stage sleeps a
little per "provider call" and writes small placeholder files. What it does, by section:

  §1.1  DEALER with IMMEDIATE, LINGER, RECONNECT_IVL(_MAX), MAXMSGSIZE; no routing id of its own.
  §2.1  every inbound message is decoded and checked in the spec's order; a bad one is counted by class,
        logged (rate-limited) and dropped, never fatal. Every outbound message is checked the same way.
  §5    HELLO on a fresh socket per registration, WELCOME accepted only while waiting for it, session
        tokens checked (§5.4), DISCONNECT(unknown_session) re-registers at once (§5.3).
  §6    credit: at most --capacity attempts at once, surplus JOBs queued, duplicate JOBs ignored; RESULTs
        kept across reconnects and sent after the next WELCOME; HELLO.running lists what it holds (§6.5).
  §7    heartbeats when idle for one interval, liveness from timers, loop stalls not counted as silence,
        reconnect with jittered backoff 1 s → 32 s (§7.3).
  §8/9  CANCEL stops an attempt without a RESULT; DISCONNECT handled per reason.
  §4.5  spend allowances (minor 4): calls are reserved at their expected cost before they leave.
  §16   a permit for every call of a budgeted provider (LEASE_REQUEST / GRANT / STARTED / RELEASE with
        used_units, LEASE_CANCEL), deadlines, PROVIDER_PAUSE and circuits, recent_calls in HELLO, and the
        budgets enforced locally in `local` mode.
  §17   `transfer` delivery: RESULT offers the files, ARTIFACT_FETCH is answered with ARTIFACT_CHUNK,
        copies are deleted on ARTIFACT_ACK or CANCEL and offered again after every WELCOME until then.

It does not implement the asset store (§18, minor 5), so it announces minor 4 at most.

  reference_worker.py --connect tcp://127.0.0.1:5555 [--capacity 2] [--ledger FILE] ...

Exits 0 when the coordinator says the batch is complete (DISCONNECT batch_complete or shutdown), unless
--standalone (then it re-registers with backoff, as §9 asks of a stand-alone worker); 0 after a graceful
SIGTERM/SIGINT (a second signal exits 130); 2 on bad arguments. Needs pyzmq (Debian: python3-zmq).
"""

import argparse
import collections
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import unicodedata
import uuid
import wave
import zlib

import zmq

SOFTWARE_VERSION = "reference-worker-py/1.0"
MAX_MINOR = 4  # §18 (minor 5) is not implemented

# ---------------------------------------------------------------------------------------------------
# Wire constants (§2, §3)

PROTO = b"reelfarm/1"
HELLO, WELCOME, JOB, PROGRESS, RESULT, HEARTBEAT, DISCONNECT, CANCEL = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08
LEASE_REQUEST, LEASE_GRANT, LEASE_STARTED, LEASE_RELEASE, LEASE_CANCEL = 0x10, 0x11, 0x12, 0x13, 0x14
PROVIDER_SIGNAL, PROVIDER_PAUSE = 0x15, 0x16
ARTIFACT_FETCH, ARTIFACT_CHUNK, ARTIFACT_ACK = 0x20, 0x21, 0x22
ASSET_GET, ASSET_DATA, ASSET_PUT = 0x30, 0x31, 0x32
KIND_NAMES = {
    HELLO: "HELLO", WELCOME: "WELCOME", JOB: "JOB", PROGRESS: "PROGRESS", RESULT: "RESULT",
    HEARTBEAT: "HEARTBEAT", DISCONNECT: "DISCONNECT", CANCEL: "CANCEL", LEASE_REQUEST: "LEASE_REQUEST",
    LEASE_GRANT: "LEASE_GRANT", LEASE_STARTED: "LEASE_STARTED", LEASE_RELEASE: "LEASE_RELEASE",
    LEASE_CANCEL: "LEASE_CANCEL", PROVIDER_SIGNAL: "PROVIDER_SIGNAL", PROVIDER_PAUSE: "PROVIDER_PAUSE",
    ARTIFACT_FETCH: "ARTIFACT_FETCH", ARTIFACT_CHUNK: "ARTIFACT_CHUNK", ARTIFACT_ACK: "ARTIFACT_ACK",
    ASSET_GET: "ASSET_GET", ASSET_DATA: "ASSET_DATA", ASSET_PUT: "ASSET_PUT",
}
# Kinds that carry one blob frame F4. §2 and §2.1 step 7 name only ARTIFACT_CHUNK; §3 and §18 (minor 5)
# put raw bytes in F4 of ASSET_DATA and ASSET_PUT as well.
BLOB_KINDS = {ARTIFACT_CHUNK, ASSET_DATA, ASSET_PUT}
# What a worker may receive (§3); the rest decodes but is dropped as the wrong direction.
TO_WORKER = {WELCOME, JOB, HEARTBEAT, DISCONNECT, CANCEL, LEASE_GRANT, PROVIDER_PAUSE, ARTIFACT_FETCH,
             ARTIFACT_ACK, ASSET_DATA}

MAX_FRAMES, MAX_TOTAL, MAX_BODY, MAX_BLOB, MAX_TOKEN = 20, 16 << 20, 1 << 20, 4 << 20, 64
STAGES = ("script", "voices", "scenes", "broll", "render")
INT64 = 1 << 63


class Reject(Exception):
    """A message that does not decode: `code` is its class (§10)."""

    def __init__(self, code, detail):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


# ---------------------------------------------------------------------------------------------------
# Body schemas (§4, §16, §17, §18). Shape errors (type, missing key, enum) are malformed_body at once;
# range errors are collected and reported as invalid_field only when the shape is right (§2.1 steps 8, 9).

class Check:
    def __init__(self):
        self.ranges = []

    def shape(self, ok, path, what):
        if not ok:
            raise Reject("malformed_body", f"{path}: {what}")

    def range(self, ok, path, what):
        if not ok:
            self.ranges.append(f"{path}: {what}")


def utf8_len(s):
    return len(s.encode("utf-8"))


def is_identifier(s):
    n = utf8_len(s)
    return (1 <= n <= 128 and s not in (".", "..") and "/" not in s and "\\" not in s
            and all(ord(c) >= 0x20 and ord(c) != 0x7F for c in s))


def is_token(s, min_len=0):
    return min_len <= len(s) <= MAX_TOKEN and all(0x21 <= ord(c) <= 0x7E for c in s)


def is_artifact_name(s):
    ok = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
    return 1 <= len(s) <= 128 and not s.startswith(".") and all(c in ok for c in s)


def is_hex64(s):
    return len(s) == 64 and all(c in "0123456789abcdef" for c in s)


class Int:
    def __init__(self, lo, hi):
        self.lo, self.hi = lo, hi

    def __call__(self, v, path, ck):
        ck.shape(type(v) is int and -INT64 <= v < INT64, path, "not a 64-bit JSON integer")
        ck.range(self.lo <= v <= self.hi, path, f"{v} not in {self.lo}…{self.hi}")
        return v


def UInt64(v, path, ck):
    ck.shape(type(v) is int and 0 <= v < (1 << 64), path, "not an unsigned 64-bit JSON integer")
    return v


def Bool(v, path, ck):
    ck.shape(type(v) is bool, path, "not a boolean")
    return v


class Str:
    def __init__(self, rule, what):
        self.rule, self.what = rule, what

    def __call__(self, v, path, ck):
        ck.shape(isinstance(v, str), path, "not a string")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate escape such as "\ud800"
            ck.shape(False, path, "not valid Unicode")
        ck.range(self.rule(v), path, f"not {self.what}")
        return v


def text(min_len, max_len=4096):
    return Str(lambda s: min_len <= utf8_len(s) <= max_len, f"text of {min_len}…{max_len} bytes")


IDENT = Str(is_identifier, "an identifier")
TEXT0, TEXT1 = text(0), text(1)
TOKEN = Str(lambda s: is_token(s, 1), "a session token")
ANAME = Str(is_artifact_name, "an artifact name")
HEX64 = Str(is_hex64, "64 lowercase hex characters")
CTYPE = Str(lambda s: 1 <= len(s) <= 128 and all(0x20 <= ord(c) <= 0x7E for c in s), "a content type")


class Enum:
    def __init__(self, *values):
        self.values = values

    def __call__(self, v, path, ck):
        ck.shape(isinstance(v, str) and v in self.values, path, f"not one of {'/'.join(self.values)}")
        return v


class Arr:
    def __init__(self, item, max_len):
        self.item, self.max_len = item, max_len

    def __call__(self, v, path, ck):
        ck.shape(isinstance(v, list), path, "not an array")
        ck.range(len(v) <= self.max_len, path, f"more than {self.max_len} entries")
        return [self.item(x, f"{path}[{i}]", ck) for i, x in enumerate(v)]


class MapOf:
    def __init__(self, value, max_keys):
        self.value, self.max_keys = value, max_keys

    def __call__(self, v, path, ck):
        ck.shape(isinstance(v, dict), path, "not an object")
        ck.range(len(v) <= self.max_keys, path, f"more than {self.max_keys} keys")
        for k in v:
            ck.range(is_identifier(k), f"{path}.{k}", "key not an identifier")
        return {k: self.value(x, f"{path}.{k}", ck) for k, x in v.items()}


REQ, OPT = True, False


class Obj:
    """fields: key -> (checker, required, default). `extra(obj, path, ck)` checks cross-field ranges."""

    def __init__(self, fields, extra=None):
        self.fields, self.extra = fields, extra

    def __call__(self, v, path, ck):
        ck.shape(isinstance(v, dict), path or "body", "not an object")
        out = {}
        for key, (checker, required, default) in self.fields.items():
            sub = f"{path}.{key}" if path else key
            x = v.get(key)  # unknown keys are ignored (§4.1); null means absent
            if x is None:
                ck.shape(not required, sub, "required key missing or null")
                out[key] = default
            else:
                out[key] = checker(x, sub, ck)
        if self.extra:
            self.extra(out, path or "body", ck)
        return out


def f(checker, required=REQ, default=None):
    return (checker, required, default)


JOBREF = Obj({"episode_id": f(IDENT), "attempt": f(Int(1, 1_000_000))})
ATTEMPT = {"episode_id": f(IDENT), "attempt": f(Int(1, 1_000_000))}


def _budget_extra(o, path, ck):
    if o["burst"] is not None and o["requests"] is not None:
        ck.range(o["burst"] <= o["requests"], f"{path}.burst", "larger than requests")


BUDGET = Obj({
    "provider": f(IDENT), "requests": f(Int(1, 10_000_000), OPT), "request_window_ms": f(Int(1, 86_400_000), OPT, 1000),
    "burst": f(Int(1, 10_000_000), OPT), "max_concurrent": f(Int(1, 100_000), OPT),
    "units": f(Int(1, 1_000_000_000), OPT), "unit_window_ms": f(Int(1, 86_400_000), OPT, 60_000),
}, _budget_extra)


def _progress_extra(o, path, ck):
    ck.range(o["succeeded"] <= o["total"], f"{path}.succeeded", "larger than total")


def _result_extra(o, path, ck):
    names = [a["name"] for a in o["artifacts"]]
    ck.range(len(names) == len(set(names)), f"{path}.artifacts", "names not unique")
    ck.range(not names or o["status"] == "succeeded", f"{path}.artifacts", "only with succeeded")


def _grant_extra(o, path, ck):
    if o["refused"] is None:
        ck.range(1 <= o["calls"] <= 1000, f"{path}.calls", "not in 1…1000")
        ck.range(is_identifier(o["lease_id"]), f"{path}.lease_id", "not an identifier")
    else:
        ck.range(o["calls"] == 0, f"{path}.calls", "not 0 in a refusal")
        ck.range(o["lease_id"] == "", f"{path}.lease_id", "not empty in a refusal")


def _release_extra(o, path, ck):
    ck.range(o["finished"] + o["returned"] > 0, path, "finished and returned both 0")
    ck.range(o["used_units"] is None or o["finished"] >= 1, f"{path}.used_units", "without finished")


def _asset_data_extra(o, path, ck):
    ck.shape(not o["found"] or o["sha256"] is not None, f"{path}.sha256", "required when found")
    ck.range(o["offset"] <= o["size"], f"{path}.offset", "past size")


def _asset_put_extra(o, path, ck):
    ck.range(o["offset"] <= o["size"] - 1, f"{path}.offset", "past size − 1")


SCHEMAS = {
    HELLO: Obj({
        "worker_id": f(IDENT), "instance": f(IDENT), "host": f(TEXT1), "pid": f(Int(0, 2_147_483_647)),
        "capacity": f(Obj({"episodes": f(Int(1, 1024)), "api_calls": f(Int(1, 1024))})),
        "software_version": f(TEXT1), "protocol_minor": f(Int(0, 1000), OPT, 0),
        "running": f(Arr(JOBREF, 1024), OPT, []),
        "recent_calls": f(Arr(Obj({"provider": f(IDENT), "ages_ms": f(Arr(Int(0, 86_400_000), 100_000))}), 16), OPT, []),
    }),
    WELCOME: Obj({
        "session": f(TOKEN), "heartbeat_interval_ms": f(Int(10, 60_000)), "liveness": f(Int(1, 100)),
        "max_message_bytes": f(Int(1024, 1_073_741_824)), "software_version": f(TEXT1),
        "protocol_minor": f(Int(0, 1000), OPT, 0), "budgets": f(Arr(BUDGET, 16), OPT, []),
        # "with budgets" (§4.4); absent, they default as the Swift decoder does (the spec gives no default)
        "budget_mode": f(Enum("leased", "local"), OPT, "leased"), "fleet_workers": f(Int(1, 1_000_000), OPT, 1),
        "asset_reuse": f(Bool, OPT, False),
    }),
    JOB: Obj({
        "batch_id": f(IDENT), **ATTEMPT,
        "spec": f(Obj({
            "topic": f(TEXT1), "id": f(IDENT, OPT), "characters": f(Arr(IDENT, 12), OPT),
            "scenes": f(Int(1, 50), OPT, 4), "style": f(TEXT0, OPT),
        })),
        "spend_allowance_micros": f(Int(0, 10**12), OPT),
    }),
    PROGRESS: Obj({
        **ATTEMPT, "stage": f(Enum(*STAGES)), "state": f(Enum("started", "finished", "failed")),
        "succeeded": f(Int(0, 100_000), OPT, 0), "total": f(Int(0, 100_000), OPT, 0),
    }, _progress_extra),
    RESULT: Obj({
        **ATTEMPT, "status": f(Enum("succeeded", "failed")), "error": f(TEXT0, OPT),
        "duration_ms": f(Int(0, 2_592_000_000)),
        "placeholders": f(Arr(Obj({"stage": f(Enum(*STAGES)), "item": f(TEXT1), "reason": f(TEXT0)}), 10_000), OPT, []),
        "api_calls": f(Int(0, 1_000_000), OPT, 0),
        "trace": f(Arr(Obj({
            "seq": f(UInt64), "name": f(TEXT1),
            "event": f(Enum("episode_start", "episode_end", "call_start", "call_end", "render_start", "render_end")),
            "saved_micros": f(Int(0, 10**12), OPT), "cost_micros": f(Int(0, 10**12), OPT),
        }), 100_000), OPT, []),
        "artifacts": f(Arr(Obj({"name": f(ANAME), "size": f(Int(0, 1 << 40)), "sha256": f(HEX64)}), 1000), OPT, []),
        "delivery": f(Enum("transfer", "shared"), OPT, "transfer"), "spend_capped": f(Bool, OPT, False),
    }, _result_extra),
    HEARTBEAT: Obj({"running": f(Arr(JOBREF, 1024), OPT, []), "draining": f(Bool, OPT, False)}),
    DISCONNECT: Obj({
        "reason": f(Enum("shutdown", "unknown_session", "protocol_error", "batch_complete")),
        "detail": f(TEXT0, OPT, ""),
    }),
    CANCEL: Obj(dict(ATTEMPT)),
    LEASE_REQUEST: Obj({
        "request_id": f(IDENT), "provider": f(IDENT), "calls": f(Int(1, 1000), OPT, 1),
        "units": f(Int(0, 100_000_000), OPT, 0), "episode_id": f(IDENT, OPT),
    }),
    # §16.2 does not say which LEASE_GRANT keys are required; taken as: all but queued_ms, refused, detail.
    LEASE_GRANT: Obj({
        "request_id": f(IDENT), "provider": f(IDENT), "lease_id": f(Str(lambda s: True, "")),
        "calls": f(Int(0, 1000)), "use_within_ms": f(Int(1, 3_600_000)), "queued_ms": f(Int(0, 86_400_000), OPT, 0),
        "refused": f(Enum("circuit_open", "unknown_provider"), OPT), "detail": f(TEXT0, OPT, ""),
    }, _grant_extra),
    LEASE_STARTED: Obj({"lease_id": f(IDENT), "calls": f(Int(1, 1000), OPT, 1)}),
    LEASE_RELEASE: Obj({
        "lease_id": f(IDENT), "finished": f(Int(0, 1000), OPT, 0), "returned": f(Int(0, 1000), OPT, 0),
        "used_units": f(Int(0, 1_000_000_000), OPT),
    }, _release_extra),
    LEASE_CANCEL: Obj({"request_id": f(IDENT)}),
    PROVIDER_SIGNAL: Obj({
        "provider": f(IDENT),
        "kind": f(Enum("rate_limited", "concurrency_limited", "quota_exceeded", "exhausted", "auth_failed", "limits")),
        "retry_after_ms": f(Int(0, 86_400_000), OPT), "remaining": f(Int(0, 2_147_483_647), OPT),
        "reset_ms": f(Int(0, 86_400_000), OPT), "limit_requests": f(Int(1, 10**9), OPT),
        "limit_units": f(Int(1, 10**12), OPT), "remaining_units": f(Int(0, 10**12), OPT),
        "reset_units_ms": f(Int(0, 86_400_000), OPT), "max_concurrent": f(Int(1, 100_000), OPT),
        "current_concurrent": f(Int(0, 100_000), OPT), "detail": f(TEXT0, OPT, ""),
    }),
    PROVIDER_PAUSE: Obj({
        "provider": f(IDENT), "pause_ms": f(Int(0, 86_400_000)), "circuit_open": f(Bool, OPT, False),
        "reason": f(TEXT0, OPT, ""),
    }),
    ARTIFACT_FETCH: Obj({**ATTEMPT, "name": f(ANAME), "offset": f(Int(0, 1 << 40)), "length": f(Int(0, MAX_BLOB))}),
    ARTIFACT_CHUNK: Obj({**ATTEMPT, "name": f(ANAME), "offset": f(Int(0, 1 << 40)), "error": f(TEXT1, OPT)}),
    ARTIFACT_ACK: Obj(dict(ATTEMPT)),
    ASSET_GET: Obj({
        "request_id": f(Int(0, 4_294_967_295)), "key": f(HEX64), "offset": f(Int(0, 64 << 20)),
        "length": f(Int(1, MAX_BLOB)),
    }),
    ASSET_DATA: Obj({
        "request_id": f(Int(0, 4_294_967_295)), "key": f(HEX64), "found": f(Bool), "size": f(Int(0, 64 << 20)),
        "sha256": f(HEX64, OPT), "content_type": f(CTYPE, OPT), "offset": f(Int(0, 64 << 20)),
    }, _asset_data_extra),
    ASSET_PUT: Obj({
        "key": f(HEX64), "size": f(Int(1, 64 << 20)), "sha256": f(HEX64), "content_type": f(CTYPE, OPT),
        "service": f(text(1, 64)), "offset": f(Int(0, 64 << 20)),
    }, _asset_put_extra),
}


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def _no_duplicates(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"key {k!r} repeated")
        obj[k] = v
    return obj


def json_depth(value):
    depth, level = 0, [(value, 1)]
    while level:
        v, d = level.pop()
        depth = max(depth, d)
        if isinstance(v, dict):
            level.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            level.extend((x, d + 1) for x in v)
    return depth


def decode(frames):
    """§2.1, in its order. Returns (kind, token, body, blob) or raises Reject."""
    if len(frames) < 1:
        raise Reject("frame_count", "no frames")
    f0 = frames[0]
    if f0 != PROTO:
        if f0.startswith(b"reelfarm/") and len(f0) <= 32:
            raise Reject("unsupported_version", f"F0 {f0!r}")
        raise Reject("not_reelfarm", f"F0 {f0[:32]!r}")
    if not 4 <= len(frames) <= MAX_FRAMES:
        raise Reject("frame_count", f"{len(frames)} frames")
    if sum(len(x) for x in frames) > MAX_TOTAL:
        raise Reject("oversized", "message over 16 MiB")
    f1, f2, f3 = frames[1], frames[2], frames[3]
    if len(f1) != 1 or f1[0] not in KIND_NAMES:
        raise Reject("unknown_kind", f"F1 {f1[:8].hex()}")
    kind = f1[0]
    if len(f2) > MAX_TOKEN or any(not 0x21 <= b <= 0x7E for b in f2):
        raise Reject("bad_session", f"F2 of {len(f2)} bytes")
    if len(f3) > MAX_BODY:
        raise Reject("oversized", f"F3 of {len(f3)} bytes")
    want = 5 if kind in BLOB_KINDS else 4
    if len(frames) != want:
        raise Reject("unexpected_blobs", f"{len(frames)} frames for {KIND_NAMES[kind]}")
    blob = frames[4] if want == 5 else None
    if blob is not None and len(blob) > MAX_BLOB:
        raise Reject("oversized", f"F4 of {len(blob)} bytes")
    try:
        textual = f3.decode("utf-8")  # strict: invalid UTF-8 fails
        if not textual.lstrip(" \t\r\n").startswith("{"):
            raise ValueError("not an object")
        raw = json.loads(textual, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as e:
        raise Reject("malformed_body", f"F3: {str(e)[:120]}")
    if json_depth(raw) > 512:  # §4.1
        raise Reject("malformed_body", "F3 nested deeper than 512 levels")
    ck = Check()
    body = SCHEMAS[kind](raw, "", ck)
    if kind == WELCOME and body["session"] != f2.decode("ascii"):
        ck.range(False, "session", "differs from F2")
    if ck.ranges:
        raise Reject("invalid_field", "; ".join(ck.ranges[:3]))
    return kind, f2.decode("ascii"), body, blob


def encode(kind, token, body, blob=None):
    frames = [PROTO, bytes([kind]), token.encode("ascii"),
              json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")]
    if blob is not None:
        frames.append(blob)
    return frames


# ---------------------------------------------------------------------------------------------------
# Small helpers

def now():
    return time.monotonic()


def refs(keys):
    return [{"episode_id": e, "attempt": a} for e, a in keys]


def folder_name_ok(s):
    """§4.5: ids that can be folder names beside the batch's own files."""
    if not is_identifier(s) or s.startswith(".") or ".." in s:
        return False
    if s.lower().endswith((".json", ".jsonl", ".html")):
        return False
    return all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Cn") for c in s)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_wav(path, seconds, seed):
    rnd = random.Random(seed)
    frames = b"".join(struct.pack("<h", rnd.randint(-200, 200)) for _ in range(int(8000 * seconds)))
    with wave.open(path, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(frames)


def write_png(path, width, height, rgb):
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                 + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Limiter:
    """Sliding windows and a concurrency ceiling for one provider: `local` budget mode (§4.4, §16.1)."""

    def __init__(self, b):
        self.windows = []  # (window seconds, limit, counts units)
        if b["requests"]:
            self.windows.append((b["request_window_ms"] / 1000, b["requests"], False))
            if b["burst"]:
                self.windows.append((b["request_window_ms"] / 1000 * b["burst"] / b["requests"], b["burst"], False))
        if b["units"]:
            self.windows.append((b["unit_window_ms"] / 1000, b["units"], True))
        self.max_concurrent, self.in_flight, self.starts = b["max_concurrent"], 0, collections.deque()

    def wait(self, units):
        """Seconds to wait before a call of `units` may start (0: now)."""
        t = now()
        while self.starts and self.starts[0][0] < t - max([w for w, _, _ in self.windows] + [0]):
            self.starts.popleft()
        if self.max_concurrent and self.in_flight >= self.max_concurrent:
            return 0.05
        delay = 0.0
        for window, limit, by_units in self.windows:
            inside = [(s, u) for s, u in self.starts if s > t - window]
            used = sum(u for _, u in inside) if by_units else len(inside)
            if used + (units if by_units else 1) > limit and inside:
                delay = max(delay, inside[0][0] + window - t + 0.001)
        return delay

    def start(self, units):
        self.starts.append((now(), units))
        self.in_flight += 1


class Attempt:
    def __init__(self, job, session):
        self.key = (job["episode_id"], job["attempt"])
        self.batch_id, self.spec, self.job_session = job["batch_id"], job["spec"], session
        self.allowance = job["spend_allowance_micros"]
        self.state = "queued"  # queued → running → offered (files held) | result (failed RESULT held) → gone
        self.gen = None
        self.wake_at = None  # resume the pipeline at this time
        self.waiting = None  # ("lease", provider, units, request_id or None, sent_at, session)
        self.permit = None  # (lease_id or None, session, started, provider) of the call in progress
        self.started_at = None
        self.result = None
        self.files = []  # [{"name", "size", "sha256"}]
        self.workdir = None
        self.spent = 0  # micro-dollars charged to the allowance
        self.reserved = 0


# ---------------------------------------------------------------------------------------------------
# The worker

class Worker:
    def __init__(self, args):
        self.args = args
        self.ctx = zmq.Context()
        self.instance = str(uuid.uuid4())
        self.worker_id = args.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.counters = collections.Counter()
        self.log_budget = {}  # rate limit of reject logs: class -> (window start, count)
        self.sock = None
        self.session = ""
        self.waiting_welcome = False
        self.interval, self.liveness = args.heartbeat_ms / 1000, args.liveness
        self.coord_minor = 0
        self.budgets, self.budget_mode, self.limiters = {}, "leased", {}
        self.pauses, self.circuits = {}, set()
        self.backoff = 1.0
        self.reconnect_at = 0.0
        self.hello_at = self.last_heard = self.last_sent = self.last_chunk = 0.0
        self.listed_at_hello = 0
        self.last_loop = now()
        self.outbox = collections.deque()  # (frames, on_sent) for the current socket
        self.attempts = {}  # (episode_id, attempt) -> Attempt
        self.queue = collections.deque()  # keys of queued attempts
        self.requests = {}  # request_id -> attempt key (this session's pending lease requests)
        self.request_seq = 0
        self.recent = collections.defaultdict(collections.deque)  # provider -> start times
        self.seq = 0
        self.rng = random.Random(args.seed if args.seed is not None else os.getpid())
        self.draining_since = None
        self.exit_code = None
        self.workdir = args.workdir or tempfile.mkdtemp(prefix="reelfarm-refworker-")
        self.own_workdir = args.workdir is None
        self.latency = dict(llm=0.25, tts=0.12, image=0.2, render=0.4)
        for part in filter(None, args.latency_ms.split(",")):
            k, _, v = part.partition("=")
            self.latency[k.strip()] = int(v) / 1000
        self.cost = {}
        for part in filter(None, args.call_cost_micros.split(",")):
            k, _, v = part.partition("=")
            self.cost[k.strip()] = int(v)

    # --- logging -----------------------------------------------------------------------------------

    def log(self, level, msg, episode=None, **meta):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
        tag = f" [{episode}]" if episode else ""
        extra = "".join(f" {k}={v}" for k, v in meta.items())
        print(f"{stamp} {level:<8} {self.worker_id}{tag} {msg}{extra}", file=sys.stderr, flush=True)

    def violation(self, what, detail):
        """The coordinator did something the spec says it must not: counted, logged, and survived."""
        self.counters[f"violation.{what}"] += 1
        self.log("ERROR", f"spec violation by the coordinator: {what}: {detail}")

    def reject(self, code, detail):
        """Count a dropped message and log it, at most 5 lines per class per 10 s."""
        self.counters[f"rejected.{code}"] += 1
        start, n = self.log_budget.get(code, (0.0, 0))
        if now() - start > 10:
            start, n = now(), 0
        if n < 5:
            self.log("WARNING", f"dropped a message: {code}: {detail}", total=self.counters[f"rejected.{code}"])
        self.log_budget[code] = (start, n + 1)

    # --- sending -----------------------------------------------------------------------------------

    def send(self, kind, body, blob=None, on_sent=None, token=None):
        frames = encode(kind, self.session if token is None else token, body, blob)
        try:
            decode(frames)  # what we send must pass the checks we apply to what we receive
        except Reject as e:
            self.counters["self_check_failed"] += 1
            self.log("ERROR", f"refusing to send an invalid {KIND_NAMES[kind]}: {e}")
            if self.args.strict:
                raise
            return
        self.outbox.append((frames, on_sent))
        self.flush()

    def flush(self):
        while self.outbox and self.sock is not None:
            frames, on_sent = self.outbox[0]
            try:
                self.sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:  # not connected yet (IMMEDIATE) or the pipe is full: keep order, try later
                return
            self.outbox.popleft()
            self.last_sent = now()
            self.counters[f"sent.{KIND_NAMES[frames[1][0]]}"] += 1
            if on_sent:
                on_sent()

    # --- registration (§5, §7.3) -------------------------------------------------------------------

    def open_socket(self):
        s = self.ctx.socket(zmq.DEALER)
        for opt, val in ((zmq.IMMEDIATE, 1), (zmq.LINGER, 1000), (zmq.RECONNECT_IVL, 250),
                         (zmq.RECONNECT_IVL_MAX, 30000), (zmq.MAXMSGSIZE, MAX_TOTAL)):
            s.setsockopt(opt, val)
        for opt, val in (("HEARTBEAT_IVL", 1000), ("HEARTBEAT_TIMEOUT", 3000), ("HEARTBEAT_TTL", 3000),
                         ("HANDSHAKE_IVL", 5000)):
            if hasattr(zmq, opt):
                s.setsockopt(getattr(zmq, opt), val)
        s.connect(self.args.connect)
        self.sock, self.session, self.waiting_welcome = s, "", True
        self.outbox.clear()
        self.hello_at = self.last_heard = now()
        self.counters["registrations"] += 1
        self.listed_at_hello = len(self.held_keys())
        recent = self.recent_calls() if self.budgets and not self.args.no_recent_calls else None
        if recent:
            self.log("INFO", "HELLO lists recent calls", **{e["provider"]: len(e["ages_ms"]) for e in recent})
        self.send(HELLO, {
            "worker_id": self.worker_id, "instance": self.instance, "host": socket.gethostname()[:4096] or "unknown",
            "pid": os.getpid(), "capacity": {"episodes": self.args.capacity, "api_calls": 1},
            "software_version": SOFTWARE_VERSION, "protocol_minor": self.args.minor,
            "running": refs(self.held_keys()),
            **({"recent_calls": recent} if recent else {}),
        })

    def held_keys(self):
        """§6.5: attempts running or queued here, and finished ones whose RESULT or files we still hold."""
        return list(self.attempts)[:1024]

    def recent_calls(self):
        """§4.3: an array of {provider, ages_ms}, one entry per budgeted provider with calls in its window."""
        out = []
        for provider, b in list(self.budgets.items())[:16]:
            windows = [b["request_window_ms"] if b["requests"] else 0, b["unit_window_ms"] if b["units"] else 0]
            window = max(windows) or 60_000  # a budget without limits (learned, §16.8): a minute
            ages = [int((now() - t) * 1000) for t in self.recent[provider] if (now() - t) * 1000 <= window]
            if ages:
                out.append({"provider": provider, "ages_ms": [min(a, 86_400_000) for a in ages[-100_000:]]})
        return out

    def drop_socket(self, why, wait):
        """Close the socket; register again on a new one after the backoff (or at once)."""
        if self.sock is not None:
            self.sock.close(linger=0)
        self.sock, self.session, self.waiting_welcome = None, "", False
        self.outbox.clear()
        for key in list(self.requests.values()):  # requests of the old session are gone: ask again later
            a = self.attempts.get(key)
            if a and a.waiting:
                a.waiting = a.waiting[:3] + (None, None, None)
        self.requests.clear()
        delay = 0.0
        if wait:
            delay = min(self.backoff * self.rng.uniform(0.75, 1.25), 32.0)
            self.backoff = min(self.backoff * 2, 32.0)
        self.reconnect_at = now() + delay
        self.log("NOTICE", f"registering again in {delay:.2f}s: {why}")

    def on_welcome(self, token, body):
        if body["protocol_minor"] < 2:
            # §17.1: a worker that delivers by transfer must not work for a coordinator below minor 2
            self.counters["welcome_refused"] += 1
            self.log("ERROR", f"coordinator speaks minor {body['protocol_minor']} < 2: cannot deliver files "
                              f"by transfer; upgrade it")
            self.drop_socket("coordinator too old", wait=True)
            return
        if body["asset_reuse"] and self.args.minor < 5:
            self.violation("asset_reuse", f"WELCOME offers the asset store to a worker of minor {self.args.minor}")
        self.session, self.waiting_welcome = token, False
        self.interval, self.liveness = body["heartbeat_interval_ms"] / 1000, body["liveness"]
        self.coord_minor = min(body["protocol_minor"], self.args.minor)
        self.budgets = {b["provider"]: b for b in body["budgets"]}
        self.budget_mode = body["budget_mode"]
        self.limiters = {p: Limiter(b) for p, b in self.budgets.items()} if self.budget_mode == "local" else {}
        self.pauses.clear()
        self.circuits.clear()  # a worker forgets its circuits on WELCOME (§16.5)
        self.backoff = 1.0
        self.log("INFO", "registered", session=token[:8] + "…", minor=body["protocol_minor"],
                 heartbeat_ms=body["heartbeat_interval_ms"], liveness=self.liveness,
                 budgets=",".join(self.budgets) or "none", mode=self.budget_mode if self.budgets else "-")
        if self.draining_since is not None:
            self.send(HEARTBEAT, {"running": refs(self.running_keys()), "draining": True})
        # RESULTs held across the reconnect, and every offer not yet acknowledged (§6.5, §17.4)
        for a in list(self.attempts.values()):
            if a.state in ("offered", "result"):
                self.send_result(a)
        # lease requests that waited for a session
        for a in list(self.attempts.values()):
            if a.state == "running" and a.waiting and a.waiting[3] is None:
                self.request_permit(a)

    # --- receiving -----------------------------------------------------------------------------------

    def receive(self, frames):
        self.counters["received"] += 1
        try:
            kind, token, body, blob = decode(frames)
        except Reject as e:
            self.reject(e.code, e.detail)
            if e.code == "unsupported_version" and self.sock is not None:  # §10: tell the peer why
                self.send(DISCONNECT, {"reason": "protocol_error",
                                       "detail": f"this worker speaks reelfarm/1, not {frames[0][:32]!r}"}, token="")
            return
        name = KIND_NAMES[kind]
        if kind not in TO_WORKER:
            self.reject("wrong_direction", f"{name} sent to a worker")
            return
        # §5.4: what a worker accepts
        if kind == WELCOME:
            if not self.waiting_welcome:
                self.reject("out_of_order", "WELCOME when not waiting for one")
                return
        elif kind == DISCONNECT:
            if token not in ("", self.session) or (token == "" and not self.session and not self.waiting_welcome):
                self.reject("foreign_session", f"DISCONNECT({body['reason']}) for another session")
                return
        elif not self.session:
            self.reject("out_of_order", f"{name} before WELCOME")
            return
        elif token != self.session:
            self.reject("foreign_session", f"{name} with another session's token")
            return
        self.last_heard = now()
        self.counters[f"recv.{name}"] += 1
        getattr(self, "on_" + name.lower())(token, body, blob) if kind != WELCOME else self.on_welcome(token, body)

    def on_heartbeat(self, token, body, blob):
        if body["running"] or body["draining"]:
            self.violation("heartbeat", "the coordinator's HEARTBEAT carries running/draining (§4.8: it sends [])")

    def on_disconnect(self, token, body, blob):
        reason, detail = body["reason"], body["detail"]
        if reason == "unknown_session":
            self.drop_socket(f"coordinator does not know the session ({detail})", wait=False)
        elif reason == "protocol_error":
            self.log("ERROR", f"coordinator refused us: {detail}")
            self.drop_socket("protocol error", wait=True)
        elif self.args.standalone:
            self.log("INFO", f"coordinator said {reason}: {detail}; waiting for the next one")
            self.drop_socket(reason, wait=True)
        else:
            self.log("INFO", f"coordinator said {reason}: {detail}; exiting")
            self.exit_code = 0

    def on_job(self, token, body, blob):
        key = (body["episode_id"], body["attempt"])
        if key in self.attempts:
            self.counters["duplicate_jobs"] += 1
            self.log("NOTICE", "JOB for an attempt already here: ignored", episode=key[0], attempt=key[1])
            return
        a = Attempt(body, token)
        self.attempts[key] = a
        if self.draining_since is not None:
            self.counters["jobs_while_draining"] += 1  # handed back by the DISCONNECT(shutdown)
        if len(self.running_keys()) + len(self.queue) >= self.args.capacity:
            self.counters["jobs_over_capacity"] += 1
            self.log("NOTICE", "JOB beyond capacity: queued", episode=key[0], attempt=key[1])
            if not self.listed_at_hello:  # nothing carried over from before this registration (§6.1, §6.2)
                self.violation("credit", f"JOB {key} with {self.args.capacity} attempts already in flight")
        self.queue.append(key)

    def on_cancel(self, token, body, blob):
        key = (body["episode_id"], body["attempt"])
        a = self.attempts.get(key)
        if a is None:
            self.counters["cancel_unknown"] += 1
            return
        self.counters["cancelled"] += 1
        self.log("INFO", f"cancelled while {a.state}", episode=key[0], attempt=key[1])
        self.abort(a)

    def abort(self, a):
        """Stop an attempt: give back its lease state, delete its files, send no RESULT (§8, §17.2 rule 7)."""
        if a.state == "running":
            if a.waiting and a.waiting[3] is not None and a.waiting[5] == self.session:
                self.send(LEASE_CANCEL, {"request_id": a.waiting[3]})
                self.requests.pop(a.waiting[3], None)
            if a.permit:
                lease_id, lease_session, started, provider = a.permit
                if lease_id and lease_session == self.session:  # a call in progress ends; an unused permit goes back
                    self.send(LEASE_RELEASE, {"lease_id": lease_id, ("finished" if started else "returned"): 1})
                if started and provider in self.limiters:
                    self.limiters[provider].in_flight -= 1
            if a.gen:
                a.gen.close()
        if a.key in self.queue:
            self.queue.remove(a.key)
        self.forget(a)

    def forget(self, a):
        if a.workdir:
            shutil.rmtree(a.workdir, ignore_errors=True)
        self.attempts.pop(a.key, None)

    def on_lease_grant(self, token, body, blob):
        key = self.requests.pop(body["request_id"], None)
        a = self.attempts.get(key) if key else None
        if a is None or not a.waiting or a.waiting[3] != body["request_id"]:
            self.counters["stale_grants"] += 1
            if body["refused"] is None:  # nobody wants it: give it back at once
                self.send(LEASE_RELEASE, {"lease_id": body["lease_id"], "returned": body["calls"]})
            return
        if body["refused"] is not None:
            self.counters[f"lease_refused.{body['refused']}"] += 1
            a.waiting = None
            self.step(a, ("refused", f"{body['refused']}: {body['detail']}"))
            return
        if body["calls"] > 1:  # we ask for one call per request; return the surplus
            self.violation("lease_calls", f"LEASE_GRANT of {body['calls']} permits for a request of 1 (§16.2 rule 3)")
            self.send(LEASE_RELEASE, {"lease_id": body["lease_id"], "returned": body["calls"] - 1})
        deadline = a.waiting[4] + (body["queued_ms"] + body["use_within_ms"]) / 1000  # §16.2 rule 4
        self.counters["grants"] += 1
        a.waiting = None
        self.step(a, ("granted", body["lease_id"], token, deadline))

    def on_provider_pause(self, token, body, blob):
        p = body["provider"]
        if body["circuit_open"]:
            self.circuits.add(p)
            self.log("WARNING", f"circuit open for {p}: {body['reason']}")
        elif body["pause_ms"] == 0:
            self.pauses.pop(p, None)
        else:
            self.pauses[p] = now() + body["pause_ms"] / 1000
        self.counters["pauses"] += 1

    def on_artifact_fetch(self, token, body, blob):
        key = (body["episode_id"], body["attempt"])
        reply = {"episode_id": key[0], "attempt": key[1], "name": body["name"], "offset": body["offset"]}
        a = self.attempts.get(key)
        entry = next((x for x in a.files if x["name"] == body["name"]), None) if a and a.state == "offered" else None
        data, error = b"", None
        if entry is None:
            error = "not an offered file"
        elif body["offset"] > entry["size"]:
            error = f"offset {body['offset']} beyond the end ({entry['size']} bytes)"
        else:
            want = min(body["length"], entry["size"] - body["offset"])
            try:
                with open(os.path.join(a.workdir, body["name"]), "rb") as fh:
                    fh.seek(body["offset"])
                    data = fh.read(want)
                if len(data) != want:
                    error, data = "file shorter than offered", b""
            except OSError as e:
                error, data = f"cannot read: {e.strerror}", b""
        if error:
            reply["error"] = error
            self.counters["chunk_errors"] += 1
            if entry is not None or (a and a.state == "offered"):
                self.violation("fetch", f"ARTIFACT_FETCH {body['name']}@{body['offset']}: {error}")
            self.log("WARNING", f"ARTIFACT_FETCH refused: {error}", episode=key[0], name=body["name"])
        self.counters["chunk_bytes"] += len(data)
        self.last_chunk = now()
        self.send(ARTIFACT_CHUNK, reply, blob=data)

    def on_artifact_ack(self, token, body, blob):
        key = (body["episode_id"], body["attempt"])
        a = self.attempts.get(key)
        if a is None or a.state != "offered":
            self.counters["ack_unknown"] += 1
            return
        self.counters["acked"] += 1
        self.log("INFO", "files acknowledged; copy deleted", episode=key[0], attempt=key[1])
        self.forget(a)

    def on_asset_data(self, token, body, blob):
        self.violation("minor", "ASSET_DATA (minor 5) sent to a worker of minor 4 (§11); dropped")

    # --- attempts ----------------------------------------------------------------------------------

    def running_keys(self):
        return [k for k, a in self.attempts.items() if a.state == "running"]

    def start_queued(self):
        while self.queue and self.draining_since is None and len(self.running_keys()) < self.args.capacity:
            a = self.attempts[self.queue.popleft()]
            a.state, a.started_at = "running", now()
            self.log("INFO", "attempt started", episode=a.key[0], attempt=a.key[1], event="attempt_started")
            a.gen = self.pipeline(a)
            self.step(a, None)

    def step(self, a, value):
        """Run the attempt's pipeline until it waits for time or a permit, or ends."""
        try:
            cmd = a.gen.send(value)
        except StopIteration as stop:
            self.finish(a, stop.value)
            return
        except Exception as e:  # a bug in the fake pipeline fails the attempt, never the worker
            self.log("ERROR", f"pipeline crashed: {e!r}", episode=a.key[0])
            self.finish(a, ("failed", f"worker: {e!r}"[:4096], False))
            return
        if cmd[0] == "sleep":
            a.wake_at = now() + cmd[1]
        elif cmd[0] == "permit":
            a.waiting = ("lease", cmd[1], cmd[2], None, None, None)
            self.request_permit(a)

    def request_permit(self, a):
        """Send the LEASE_REQUEST of an attempt's waiting call, when there is a session to send it on."""
        provider, units = a.waiting[1], a.waiting[2]
        if not self.session:
            return  # §16.6 (`wait`): no new budgeted call without a coordinator; asked after the next WELCOME
        if provider not in self.budgets or self.budget_mode != "leased":
            a.waiting = None
            self.step(a, ("unleased",))
            return
        self.request_seq += 1
        rid = f"{self.instance[:8]}-r{self.request_seq}"
        a.waiting = ("lease", provider, units, rid, now(), self.session)
        self.requests[rid] = a.key
        self.send(LEASE_REQUEST, {"request_id": rid, "provider": provider, "calls": 1, "units": units,
                                  "episode_id": a.key[0]})

    def trace(self, a, event, name, **extra):
        self.seq += 1
        a.result_trace.append({"seq": self.seq, "event": event, "name": name, **extra})

    def progress(self, a, stage, state, succeeded=0, total=0):
        if self.session:
            self.send(PROGRESS, {"episode_id": a.key[0], "attempt": a.key[1], "stage": stage, "state": state,
                                 "succeeded": succeeded, "total": total})

    def call(self, a, provider, name, units):
        """A fake provider call (a generator): returns None when done, or why it became a placeholder."""
        estimate = self.cost.get(provider, 0)
        tries = 0  # permits that came too late to use; waiting for a permit, a pause or a window costs none
        while tries < 20:
            if provider in self.circuits:
                return f"{provider}: circuit open"
            if a.allowance is not None and a.spent + a.reserved + estimate > a.allowance:  # §4.5
                return "spend allowance exhausted"
            pause = self.pauses.get(provider, 0) - now()
            if pause > 0:
                yield ("sleep", pause)
                continue
            permit = None
            if provider in self.limiters:  # `local` mode: our own share of the budget
                wait = self.limiters[provider].wait(units)
                if wait > 0:
                    yield ("sleep", wait)
                    continue
            elif provider in self.budgets and self.budget_mode == "leased":  # budgets of the last WELCOME
                answer = yield ("permit", provider, units)
                if answer[0] == "refused":
                    return f"{provider}: lease refused ({answer[1]})"
                if answer[0] == "granted":
                    _, lease_id, lease_session, deadline = answer
                    pause = self.pauses.get(provider, 0) - now()
                    if provider in self.circuits or now() + max(pause, 0) > deadline:
                        if lease_session == self.session:  # §16.2 rule 4 / §16.5: give it back, ask again
                            self.send(LEASE_RELEASE, {"lease_id": lease_id, "returned": 1})
                        self.counters["permits_returned"] += 1
                        tries += 1
                        continue
                    if pause > 0:  # hold the permit through the pause (its deadline allows)
                        a.permit = (lease_id, lease_session, False, provider)
                        yield ("sleep", pause)
                        if now() > deadline:
                            if lease_session == self.session:
                                self.send(LEASE_RELEASE, {"lease_id": lease_id, "returned": 1})
                            a.permit = None
                            tries += 1
                            continue
                    permit = (lease_id, lease_session)
            # the call leaves now
            if permit and permit[1] == self.session:
                self.send(LEASE_STARTED, {"lease_id": permit[0], "calls": 1})
            if provider in self.limiters:
                self.limiters[provider].start(units)
            a.permit = (permit[0], permit[1], True, provider) if permit else (None, None, True, provider)
            self.recent[provider].append(now())
            while len(self.recent[provider]) > 100_000:
                self.recent[provider].popleft()
            a.reserved += estimate
            self.trace(a, "call_start", name)
            a.api_calls += 1
            yield ("sleep", self.latency.get(provider, 0.1) * self.rng.uniform(0.7, 1.3))
            a.reserved -= estimate
            a.spent += estimate
            self.trace(a, "call_end", name, **({"cost_micros": estimate} if self.coord_minor >= 4 else {}))
            if provider in self.limiters:
                self.limiters[provider].in_flight -= 1
            if permit and permit[1] == self.session:
                used = {"used_units": units * 3 // 4} if self.coord_minor >= 4 and provider == "llm" else {}
                self.send(LEASE_RELEASE, {"lease_id": permit[0], "finished": 1, **used})
            a.permit = None
            return None
        return f"{provider}: 20 permits expired before they could be used"

    def pipeline(self, a):
        """The fake episode: script, then voices, scenes and B-roll, then render (§4.2 Stage)."""
        ep, n = a.key
        a.result_trace, a.placeholders, a.api_calls = [], [], 0
        self.trace(a, "episode_start", "episode")
        if not (folder_name_ok(a.batch_id) and folder_name_ok(ep)):
            return ("failed", "ids cannot be folder names", False)
        a.workdir = os.path.join(self.workdir, a.batch_id, ".work", f"{ep}-attempt-{n}")
        shutil.rmtree(a.workdir, ignore_errors=True)
        os.makedirs(a.workdir)
        scenes = a.spec["scenes"]
        cast = a.spec["characters"] or ["Narrator", "Guest"]
        lines = [(cast[i % len(cast)], f"Line {i + 1} about {a.spec['topic'][:60]}") for i in range(scenes + 1)]
        assets = []

        self.progress(a, "script", "started", 0, 1)
        why = yield from self.call(a, "llm", "llm:script", 1200)
        if why:
            self.progress(a, "script", "failed", 0, 1)
            return ("failed", f"script: {why}", "allowance" in why)
        if self.args.fail_rate and self.rng.random() < self.args.fail_rate:
            self.progress(a, "script", "failed", 0, 1)
            return ("failed", "script: simulated failure", False)
        self.progress(a, "script", "finished", 1, 1)
        script = {"title": a.spec["topic"], "characters": cast, "style": a.spec.get("style") or "",
                  "scenes": [{"n": i + 1} for i in range(scenes)],
                  "lines": [{"character": c, "text": t} for c, t in lines], "attempt": n}
        with open(os.path.join(a.workdir, "script.json"), "w", encoding="utf-8") as fh:
            json.dump(script, fh, ensure_ascii=False, indent=1)
        assets.append(("script.json", "llm", False))

        for stage, provider, items in (("voices", "tts", [f"line_{i + 1}" for i in range(len(lines))]),
                                       ("scenes", "image", [f"scene_{i + 1}" for i in range(scenes)]),
                                       ("broll", "image", [f"broll_{i + 1}" for i in range(max(1, scenes // 2))])):
            self.progress(a, stage, "started", 0, len(items))
            ok = 0
            for i, item in enumerate(items):
                why = yield from self.call(a, provider, f"{provider}:{item}", 1)
                if why:
                    a.placeholders.append({"stage": stage, "item": item, "reason": why[:4096]})
                else:
                    ok += 1
                name = f"{item}.wav" if provider == "tts" else f"{item}.png"
                seed = f"{a.batch_id}/{ep}/{n}/{item}"
                if provider == "tts":
                    write_wav(os.path.join(a.workdir, name), 0.25, seed)
                else:
                    c = hashlib.sha256(seed.encode()).digest()
                    write_png(os.path.join(a.workdir, name), 64, 36, c[:3])
                assets.append((name, provider, bool(why)))
            self.progress(a, stage, "finished", ok, len(items))

        self.progress(a, "render", "started")
        self.trace(a, "render_start", "render")
        yield ("sleep", self.latency.get("render", 0.3))
        # Not a real video: the coordinator checks names, sizes and SHA-256 of what it pulls, not formats.
        # Big enough to take several 256 KiB chunks (§17.2).
        size = self.args.video_bytes + self.rng.randrange(4096)
        with open(os.path.join(a.workdir, "episode.mp4"), "wb") as fh:
            fh.write(f"reelfarm reference worker placeholder video: {a.batch_id}/{ep} attempt {n}\n".encode())
            fh.write(os.urandom(size))
        assets.append(("episode.mp4", "render", False))
        self.trace(a, "render_end", "render")
        self.progress(a, "render", "finished")
        manifest = {"episode_id": ep, "attempt": n, "batch_id": a.batch_id, "worker": self.worker_id,
                    "assets": [{"file": name, "provider": prov, "placeholder": ph,
                                "size": os.path.getsize(os.path.join(a.workdir, name)),
                                "sha256": sha256_file(os.path.join(a.workdir, name))} for name, prov, ph in assets]}
        with open(os.path.join(a.workdir, "manifest.json"), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
        return ("succeeded", None, False)

    def finish(self, a, outcome):
        status, error, capped = outcome
        self.trace(a, "episode_end", "episode")
        a.gen, a.wake_at, a.waiting, a.permit = None, None, None, None
        body = {"episode_id": a.key[0], "attempt": a.key[1], "status": status,
                "duration_ms": int((now() - a.started_at) * 1000), "placeholders": a.placeholders[:10_000],
                "api_calls": a.api_calls, "trace": a.result_trace[-100_000:]}
        if status == "succeeded":
            names = sorted(os.listdir(a.workdir))
            a.files = [{"name": x, "size": os.path.getsize(os.path.join(a.workdir, x)),
                        "sha256": sha256_file(os.path.join(a.workdir, x))} for x in names]
            body["artifacts"], body["delivery"] = a.files, "transfer"
            a.state = "offered"
            self.ledger(a)
        else:
            body["error"] = (error or "failed")[:4096]
            if capped and self.coord_minor >= 4:
                body["spend_capped"] = True
            a.state = "result"
            if a.workdir:
                shutil.rmtree(a.workdir, ignore_errors=True)
        a.result = body
        self.counters[f"attempts_{status}"] += 1
        self.log("INFO", f"attempt {status}" + (f": {error}" if error else ""), episode=a.key[0], attempt=a.key[1],
                 files=len(a.files), calls=a.api_calls, placeholders=len(a.placeholders))
        self.send_result(a)

    def send_result(self, a):
        if not self.session:
            return  # held until the next WELCOME (§6.5)
        if a.state == "offered":
            self.send(RESULT, a.result)  # offered again after every WELCOME until ACK or CANCEL (§17.4)
        else:
            self.send(RESULT, a.result, on_sent=lambda: self.forget(a))

    def ledger(self, a):
        if not self.args.ledger:
            return
        line = json.dumps({"worker_id": self.worker_id, "batch_id": a.batch_id, "episode_id": a.key[0],
                           "attempt": a.key[1], "files": a.files})
        with open(self.args.ledger, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # --- the loop ----------------------------------------------------------------------------------

    def on_signal(self, signum, frame):
        if self.draining_since is not None:
            os._exit(130)
        self.draining_since = now()
        self.log("NOTICE", f"signal {signum}: draining (no new episodes; finishing what runs)")
        if self.session:
            self.send(HEARTBEAT, {"running": refs(self.running_keys()), "draining": True})

    def run(self):
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.log("INFO", "starting", connect=self.args.connect, capacity=self.args.capacity, minor=self.args.minor,
                 instance=self.instance, workdir=self.workdir)
        try:
            while self.exit_code is None:
                self.tick()
        finally:
            if self.sock is not None:
                self.sock.close(linger=0)
            self.ctx.term()
            if self.own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            self.log("INFO", "exiting", code=self.exit_code,
                     counters=json.dumps(dict(sorted(self.counters.items())), separators=(",", ":")))
        return self.exit_code

    def account_stall(self):
        """§7.2/§7.3: a stall of our own loop (stopped, swapped out) is not the coordinator's silence. The
        loop passes here at least once per interval (it never polls longer), so a longer gap is a stall."""
        t = now()
        gap = t - self.last_loop
        if gap > self.interval + 0.1:
            self.last_heard += gap - self.interval
            self.hello_at += gap - self.interval
            self.counters["stalls"] += 1
        self.last_loop = t

    def tick(self):
        self.account_stall()
        t = now()

        if self.sock is None and t >= self.reconnect_at and self.exit_code is None:
            self.open_socket()

        # wait for messages, never longer than one interval or the next timer
        timeout = self.interval
        wakes = [a.wake_at for a in self.attempts.values() if a.wake_at is not None]
        if wakes:
            timeout = min(timeout, max(0.0, min(wakes) - t))
        if self.outbox:
            timeout = min(timeout, 0.05)
        if self.sock is None:
            timeout = min(timeout, max(0.0, self.reconnect_at - t))
        ready = self.sock is not None and self.sock.poll(int(timeout * 1000) + 1, zmq.POLLIN)
        self.account_stall()
        if ready:
            for _ in range(1000):
                try:
                    frames = self.sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self.receive(frames)
                if self.sock is None or self.exit_code is not None:
                    break
        elif self.sock is None:
            time.sleep(timeout)
        if self.exit_code is not None:
            return

        # timers of the pipelines
        t = now()
        for a in list(self.attempts.values()):
            if a.wake_at is not None and a.wake_at <= t and a.state == "running":
                a.wake_at = None
                self.step(a, None)
        self.start_queued()
        self.flush()

        if self.sock is not None:
            t = now()
            silent = t - (self.hello_at if self.waiting_welcome else self.last_heard)
            chunking = self.session and t - self.last_chunk < 30  # §7.3: answering fetches keeps it alive
            if silent > self.liveness * self.interval and not chunking:
                self.drop_socket("no WELCOME" if self.waiting_welcome else f"coordinator silent for {silent:.1f}s",
                                 wait=True)
            elif self.session and not self.outbox and t - self.last_sent >= self.interval:
                self.send(HEARTBEAT, {"running": refs(self.running_keys()),
                                      **({"draining": True} if self.draining_since is not None else {})})

        if self.draining_since is not None:
            grace_over = now() - self.draining_since > self.args.shutdown_grace
            busy = [a for a in self.attempts.values() if a.state in ("running", "offered", "result")]
            if not busy or grace_over:
                if self.session:
                    self.send(DISCONNECT, {"reason": "shutdown", "detail": "reference worker stopping"})
                    self.flush()
                self.exit_code = 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--connect", required=True, help="the coordinator's endpoint, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--worker-id", help="name in logs and summary.json (default HOSTNAME-PID)")
    p.add_argument("--capacity", type=int, default=2, help="episodes at once (1…1024; default 2)")
    p.add_argument("--minor", type=int, default=MAX_MINOR, help=f"protocol minor to announce (2…{MAX_MINOR})")
    p.add_argument("--heartbeat-ms", type=int, default=1000, help="interval before the first WELCOME")
    p.add_argument("--liveness", type=int, default=3, help="silent intervals before the first WELCOME")
    p.add_argument("--workdir", help="where attempts are made (default: a temporary folder, removed at exit)")
    p.add_argument("--ledger", help="append one JSON line per offered attempt: its files, sizes and SHA-256")
    p.add_argument("--latency-ms", default="", help="fake call latency, e.g. llm=250,tts=120,image=200,render=400")
    p.add_argument("--call-cost-micros", default="", help="fake cost per call, e.g. llm=300,tts=20 (default 0)")
    p.add_argument("--video-bytes", type=int, default=600_000, help="size of the placeholder episode.mp4")
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of attempts whose script fails")
    p.add_argument("--seed", type=int, help="random seed (default: the pid)")
    p.add_argument("--shutdown-grace", type=float, default=30.0, help="seconds to finish after SIGTERM")
    p.add_argument("--standalone", action="store_true",
                   help="on batch_complete/shutdown re-register with backoff instead of exiting (§9)")
    p.add_argument("--no-recent-calls", action="store_true",
                   help="leave the optional HELLO.recent_calls out (§4.3 gives it as an object provider → ages; "
                        "the Swift coordinator of this repository only takes a list of {provider, ages_ms})")
    p.add_argument("--strict", action="store_true", help="crash instead of skipping a message we built wrong")
    args = p.parse_args(argv)
    if not 2 <= args.minor <= MAX_MINOR:
        p.error(f"--minor must be 2…{MAX_MINOR}: transfer delivery needs 2, the asset store (5) is not implemented")
    if not 1 <= args.capacity <= 1024:
        p.error("--capacity must be 1…1024")
    if args.worker_id and not folder_name_ok(args.worker_id):
        p.error("--worker-id must be an identifier")
    return Worker(args).run()


if __name__ == "__main__":
    sys.exit(main())
