#!/usr/bin/env sh
# Make .venv and install the locked versions into it (requirements-dev.lock; a no-op when the
# lock has not changed since the last install). Both README commands start with it.
set -eu
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python 3.11 or newer is needed ($PYTHON is $("$PYTHON" --version 2>&1))." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || {
    echo "Could not make a virtual environment: on Debian/Ubuntu, apt-get install python3-venv" >&2
    exit 1
  }
fi
stamp=.venv/.locked
want=$(cat requirements-build.lock requirements-dev.lock pyproject.toml | sha256sum | cut -c1-64)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing the locked dependencies into .venv ..." >&2
  pip="./.venv/bin/python -m pip --disable-pip-version-check --quiet"
  # Build tools first, so the sdists (jieba) and this project build with locked versions too.
  $pip install --require-hashes -r requirements-build.lock
  $pip install --require-hashes --no-build-isolation -r requirements-dev.lock
  $pip install --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
