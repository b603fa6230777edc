#!/usr/bin/env bash
# nfslab quick start on a fresh Debian 12 machine (as root): Debian packages, a venv with nfslab, the lab box,
# the lab's network namespace with its own libvirtd, then the default matrix (`lab run`).
#   ./quickstart.sh               set up and run the default matrix
#   ./quickstart.sh --setup-only  set up only (CI, or before `pytest`)
#   ./quickstart.sh --venv-only   the venv with `lab` only: no lab host (CI jobs that compare tables)
#   ./quickstart.sh -k debian-6.1 set up and run only some kernel rows (any `lab run` option)
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then echo "quickstart.sh: run as root (sudo ./quickstart.sh)" >&2; exit 2; fi
export DEBIAN_FRONTEND=noninteractive
need=""
command -v python3 >/dev/null || need="python3"
python3 -c 'import venv, ensurepip' 2>/dev/null || need="$need python3-venv"
if [ -n "$need" ]; then apt-get update -q && apt-get install -y -q --no-install-recommends $need; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
if [ "${1:-}" = "--venv-only" ]; then exit 0; fi
.venv/bin/lab setup
if [ "${1:-}" = "--setup-only" ]; then exit 0; fi
exec .venv/bin/lab run "$@"
