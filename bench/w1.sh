#!/usr/bin/env bash
# Workload W1 (issue 4): a 24-episode batch against the mock provider's strict sliding-window limits,
# leased global budget (true limits, learned with no budget, 2x overstated) vs. per-worker local limiters. Release build, loopback. Prints a Markdown table.
#
#   bench/w1.sh [--runs N] [--modes leased,budget-none,budget-2x,leased-no-admission,local,local-split] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
swift build -c release --product coordinator >/dev/null
swift build -c release --product worker >/dev/null
swift build -c release --product mock-provider >/dev/null
exec python3 bench/w1.py --bin "$PWD/.build/release" "$@"
