#!/usr/bin/env bash
# Creates the virtual environments and installs everything the program, its tools and its tests need.
# Idempotent: a second run only checks what is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
# npm packages: the Istio CRD models the preview's preflight validates against, and dynalite for the tests.
if [ ! -d node_modules/@kubernetes-models/istio ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --silent
fi

if [ "${1:-}" = "--with-test-tools" ]; then
  # checkov conflicts with the project's pins, so it gets a virtualenv of its own.
  if [ ! -x .venv-checkov/bin/checkov ]; then
    "$PYTHON" -m venv .venv-checkov
    .venv-checkov/bin/python -m pip install --quiet --upgrade pip
  fi
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
fi
