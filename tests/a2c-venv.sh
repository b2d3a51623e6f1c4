#!/usr/bin/env bash
# Makes the Python virtual environment in which the tests run acme2certifier (a second real
# ACME server, from the Python package index, with Django as its database layer), when it is
# missing or incomplete. Prints its folder. Reused by every later run.
#
#   tests/a2c-venv.sh          target/venv-a2c, or $DESICCANT_A2C_VENV when set
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${DESICCANT_A2C_VENV:-$PWD/target/venv-a2c}"
if ! "$venv/bin/python" -c 'import acme2certifier, django' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'acme2certifier[django]' >&2
fi
echo "$venv"
