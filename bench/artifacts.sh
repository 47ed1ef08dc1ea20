#!/usr/bin/env bash
# Artifact transfer: offer → ACK time and throughput, with a Python worker written from PROTOCOL §17.
#   bench/artifacts.sh [--sizes-mb 2,64] [--episodes 5]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps
command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 >/dev/null; }
python3 -c "import zmq" 2>/dev/null || python3 -m pip install -q pyzmq || apt-get install -y -qq python3-zmq >/dev/null
swift build -c release --product coordinator >/dev/null
exec python3 bench/artifacts.py --bin "$PWD/.build/release" "$@"
