#!/usr/bin/env bash
# The main job without a cloud account: the offline preview of a stack (default: dev).
# It runs the program under the project's mocks and lets the real policy pack judge what it would create.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m tools.preview --stack "${1:-dev}" "${@:2}"
