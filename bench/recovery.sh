#!/usr/bin/env bash
# Time from a worker's SIGKILL to its episodes running elsewhere (release build, loopback).
#   bench/recovery.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
swift build -c release --product coordinator >/dev/null
swift build -c release --product worker >/dev/null
exec python3 bench/recovery.py --bin "$PWD/.build/release" "$@"
