#!/usr/bin/env bash
# The test command: installs everything (first run: a few minutes), then runs the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/components -k eks
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-tools
exec .venv/bin/python -m pytest "$@"
