#!/usr/bin/env bash
# Prints the path of a working Python >= 3.12, or exits 1.
# Order: $PYTHON, versioned names on PATH, plain python3, then pyenv's installs directly
# (a pyenv shim on PATH fails unless its version is selected, so each candidate is run, not trusted).
ok() { "$1" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for v in 3.12 3.13 3.14; do candidates+=("python$v"); done
candidates+=(python3)
for d in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]* /usr/local/bin /opt/homebrew/bin; do
  for v in 3.12 3.13 3.14; do [ -x "$d/bin/python$v" ] && candidates+=("$d/bin/python$v"); [ -x "$d/python$v" ] && candidates+=("$d/python$v"); done
done
for c in "${candidates[@]}"; do
  p=$(command -v "$c" 2>/dev/null) || continue
  if ok "$p"; then echo "$p"; exit 0; fi
done
exit 1
