#!/bin/sh
# Put the sources of the py3-* recipes (wheels and sdists from the Python package
# index) into pkgrepo's source cache, so builds need no network afterwards.
#
# The recipes pin each file by sha256 and name the project's own release URL;
# the index is where pip finds the same bytes. `pkgrepo fetch --add` stores a
# file under its own sha256, and the build checks it against the recipe's pin,
# so a different file here fails the build rather than being used.
# Usage: sh scripts/fetch-sources.sh   (after scripts/setup.sh; needs the index)
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# kind  requirement        (keep in step with recipes/py3-*.yaml)
while read -r kind req; do
  case $kind in
    wheel) "$PY" -m pip download -q --no-deps --only-binary :all: "$req" -d "$dir" ;;
    sdist) "$PY" -m pip download -q --no-deps --no-binary :all: "$req" -d "$dir" ;;
  esac
done <<LIST
wheel urllib3==2.8.0
sdist zstandard==0.23.0
wheel wheel==0.41.3
wheel click==8.5.1
wheel securesystemslib==1.6.0
wheel tuf==7.0.1
wheel libarchive-c==5.3
LIST
for f in "$dir"/*; do
  "$PY" -m pkgrepo fetch --add "$f"
done
# pkgrepo's own source (recipes/pkgrepo.yaml): a deterministic tar of this checkout
"$PY" scripts/pkgrepo-source.py
