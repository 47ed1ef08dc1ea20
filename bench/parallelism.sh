#!/usr/bin/env bash
# Wall time of a 24-episode batch with simulated latencies (LLM 400 ms, image 800 ms, TTS 300 ms,
# render 200 ms): 4 local workers with the default limits (3 episodes × 5 calls), 1 worker with the
# defaults, and 1 worker strictly sequential (1 episode × 1 call). Release build, loopback.
#
#   bench/parallelism.sh [episodes]      # default 24; prints a Markdown table
set -euo pipefail
cd "$(dirname "$0")/.."
episodes=${1:-24}
scripts/install-deps
swift build -c release --product coordinator >/dev/null
swift build -c release --product worker >/dev/null
bin=.build/release
out=$(mktemp -d)
export REELFARM_PROVIDERS=simulated REELFARM_SIM_LATENCY="llm=400,image=800,tts=300,render=200"

run() {  # name workers episodes-per-worker calls-per-episode
  local name=$1 workers=$2 eps=$3 calls=$4
  local start end
  start=$(date +%s.%N)
  MAX_PARALLEL_EPISODES=$eps MAX_PARALLEL_API_CALLS=$calls "$bin/coordinator" --workers "$workers" \
    --episodes "$episodes" --bind 'tcp://127.0.0.1:*' --output "$out" --batch-id "$name" --log-level warning \
    2>"$out/$name.log"
  end=$(date +%s.%N)
  local wall ok
  wall=$(python3 -c "import json;print(json.load(open('$out/$name/summary.json'))['wall_seconds'])")
  ok=$(python3 -c "import json;t=json.load(open('$out/$name/summary.json'))['totals'];print(f\"{t['succeeded']}/{t['episodes']}\")")
  printf '| %s | %s | %s×%s | %s | %.1f s | %.1f s |\n' "$name" "$workers" "$eps" "$calls" "$ok" "$wall" \
    "$(python3 -c "print($end - $start)")"
}

echo "| run | workers | episodes×calls per worker | succeeded | batch wall time | process wall time |"
echo "|---|---|---|---|---|---|"
run workers4 4 3 5
run worker1 1 3 5
run worker1-sequential 1 1 1
rm -rf "$out"
