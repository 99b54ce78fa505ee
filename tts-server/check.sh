#!/usr/bin/env bash
# The engine's tests and lint, as `npm test` runs them: pytest (a JUnit report in .pytest-results.xml at the
# repository root, which .ci/run counts), then ruff check, ruff format --check and mypy (the package's types,
# settings in pyproject.toml). Makes the venv first.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/setup-venv.sh"
cd "$here"
status=0
.venv/bin/python -m pytest -q -p no:cacheprovider --junitxml=../.pytest-results.xml "$@" || status=$?
if [[ $status -eq 5 ]]; then
  echo "tts-server: pytest collected no tests"
  status=0
fi
.venv/bin/ruff check . || status=1
.venv/bin/ruff format --check . || status=1
.venv/bin/mypy || status=1
exit "$status"
