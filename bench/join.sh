#!/usr/bin/env bash
# From starting a worker (by hand, or with coordinator scale) to its first job (release build, loopback).
#   bench/join.sh [--runs N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
swift build -c release --product coordinator >/dev/null
swift build -c release --product worker >/dev/null
exec python3 bench/join.py --bin "$PWD/.build/release" "$@"
