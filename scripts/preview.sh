#!/usr/bin/env bash
# The main job without a cloud account: the offline preview of a stack. It runs the program under the
# project's mocks and lets the real policy pack judge what it would create.
#   scripts/preview.sh                  the dev stack
#   scripts/preview.sh prod --json      a stack name first, then any flags of `python -m tools.preview`
#   scripts/preview.sh --json           flags alone: the dev stack (or --stack NAME among the flags)
# The first run creates .venv and installs only what the preview needs (requirements-preview.txt),
# saying so on stderr; later runs only check it (about a second).
set -euo pipefail
cd "$(dirname "$0")/.."
stack=()
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  stack=(--stack "$1")
  shift
fi
scripts/setup.sh --preview-only
exec .venv/bin/python -m tools.preview "${stack[@]}" "$@"
