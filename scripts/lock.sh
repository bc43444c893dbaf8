#!/usr/bin/env sh
# Refresh the lock files from pyproject.toml's ranges (newest versions they allow), with hashes.
# Run it after changing a dependency, then run the tests and commit the .lock files.
set -eu
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || .venv/bin/pip install -q uv
compile() { .venv/bin/uv pip compile --quiet --generate-hashes --universal --python-version 3.11 "$@"; }
printf 'setuptools>=68\nwheel\n' | compile - -o requirements-build.lock
compile pyproject.toml -o requirements.lock
compile pyproject.toml --extra dev -o requirements-dev.lock
echo "requirements-build.lock, requirements.lock, requirements-dev.lock refreshed"
