#!/usr/bin/env bash
# What CURVE costs on workload W0 (no-op episodes, 4 local workers, loopback) (release build, loopback).
#   bench/curve.sh [--episodes N] [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
swift build -c release --product coordinator >/dev/null
swift build -c release --product worker >/dev/null
exec python3 bench/curve.py --bin "$PWD/.build/release" "$@"
