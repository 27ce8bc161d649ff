#!/bin/sh
# Install prowtrace and exactly its locked runtime dependencies (uv.lock, no dev group) into the
# virtual environment VENV_DIR, as a regular (non-editable) install.
#
# This is the one install path of the project: the Dockerfile's build stage runs it, and
# tests/deploy/test_dockerfile.py runs it in CI into a scratch venv and checks the result, so the image
# installs what CI has exercised. Extra uv settings come from the environment (the Dockerfile sets
# UV_PYTHON, UV_PYTHON_DOWNLOADS=never and UV_COMPILE_BYTECODE=1; the test sets UV_OFFLINE=1).
set -eu

if [ "$#" -ne 1 ]; then
  echo "usage: scripts/install.sh VENV_DIR" >&2
  exit 2
fi

cd "$(dirname "$0")/.."
# --locked, not --frozen: a uv.lock that no longer matches pyproject.toml fails the install (and so
# the image build) instead of installing the stale pins. --reinstall-package: build prowtrace from
# this tree every time; uv's cache keys a local project's build on pyproject.toml alone, so an
# edit to processor/ could otherwise install a stale wheel from the cache (the tests' offline
# installs use the cache).
UV_PROJECT_ENVIRONMENT="$1" exec uv sync --locked --no-dev --no-editable --reinstall-package prowtrace
