#!/usr/bin/env bash
# Creates the virtual environments and installs what the program, its tools and its tests need.
#   scripts/setup.sh                    the program, the offline preview, the limiter, the test tools' Python and npm packages
#   scripts/setup.sh --preview-only     only what the offline preview needs: requirements-preview.txt and the
#                                       npm "dependencies" (the preflight's Istio CRD models)
#   scripts/setup.sh --with-test-tools  everything, plus checkov in its own virtualenv
# Idempotent: a second run only checks what is installed (about a second).
# Progress goes to stderr; a first run says what it installs and shows pip's progress.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
mode="${1:-}"
requirements=requirements.txt
[ "$mode" = "--preview-only" ] && requirements=requirements-preview.txt

say() { echo "setup: $*" >&2; }

quiet=(--quiet)
if [ ! -x .venv/bin/python ]; then
  say "creating the virtualenv .venv (first run)"
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  quiet=()
fi
if [ ${#quiet[@]} -eq 0 ]; then
  say "installing $requirements into .venv (first run: about a minute, mostly the Pulumi SDKs)"
fi
.venv/bin/python -m pip install "${quiet[@]}" --disable-pip-version-check -r "$requirements" >&2
if [ ${#quiet[@]} -eq 0 ]; then say "installed $requirements"; fi

# npm packages (package.json): "dependencies" are what the preview's preflight reads (the Istio CRD models,
# with typescript); "devDependencies" are the tests' (dynalite, the local DynamoDB-API server; mermaid and
# jsdom, which parse the preview's diagrams with Mermaid's own parser).
if [ "$mode" = "--preview-only" ]; then
  if [ ! -d node_modules/@kubernetes-models/istio ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing the preview's npm packages (npm ci --omit=dev)"
    npm ci --omit=dev --no-audit --no-fund --silent >&2
  fi
elif [ ! -d node_modules/mermaid ] || [ ! -d node_modules/@kubernetes-models/istio ] \
  || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the npm packages (npm ci)"
  npm ci --no-audit --no-fund --silent >&2
fi

if [ "$mode" = "--with-test-tools" ]; then
  # checkov conflicts with the project's pins, so it gets a virtualenv of its own.
  if [ ! -x .venv-checkov/bin/checkov ]; then
    say "creating .venv-checkov and installing checkov"
    "$PYTHON" -m venv .venv-checkov
    .venv-checkov/bin/python -m pip install --quiet --upgrade pip
  fi
  .venv-checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
fi
