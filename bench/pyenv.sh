#!/usr/bin/env bash
# The Python side of the comparison benchmarks (bench/w0_python.py): a venv at .build/bench-venv with pinned
# Celery (Redis broker and result backend), Dask distributed and pyzmq, and Debian's redis-server.
# Idempotent: a second run only checks. Everything goes to stderr except the last line: the venv's python.
#   bench/pyenv.sh                      (PYTHON=python3.11 bench/pyenv.sh to pick the interpreter)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.build/bench-venv"
pins=(
  "celery[redis]==5.7.0" "kombu==5.7.0" "billiard==4.3.2" "redis==8.1.0"
  "dask[distributed]==2026.8.0" "distributed==2026.8.0" "pyzmq==27.3.0"
)

if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo"; else sudo="none"; fi
apt_install() {
  [ "$sudo" = none ] && { echo "pyenv.sh: need root (or sudo) to install: $*" >&2; exit 1; }
  echo "pyenv.sh: installing $*" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2
}

command -v redis-server >/dev/null || apt_install redis-server
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { apt_install python3 python3-venv; python=python3; }

stamp="$venv/.pins"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "${pins[*]}" ]; then
  echo "pyenv.sh: $venv is up to date" >&2
else
  if [ ! -x "$venv/bin/python" ]; then
    echo "pyenv.sh: creating $venv with $("$python" --version 2>&1)" >&2
    # Debian's python3 has no ensurepip without python3-venv.
    "$python" -m venv "$venv" >&2 || { rm -rf "$venv"; apt_install python3-venv; "$python" -m venv "$venv" >&2; }
  fi
  rm -f "$stamp"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${pins[@]}" >&2
  echo "${pins[*]}" >"$stamp"
fi
echo "$venv/bin/python"
