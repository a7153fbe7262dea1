#!/usr/bin/env bash
# Fills .whl/ with what tools/accelerator_check.sh needs on a GPU host whose image has JAX,
# numpy, h5py, rich, absl-py, ml-dtypes and packaging but no Keras and no gin (the hosts of
# docs/benchmarks.md): keras and gin-config at the versions setup.py pins, and the two
# packages Keras needs beyond that image (namex, optree), as Python 3.12 x86-64 wheels.
# Prints each wheel's size and the total (a device command carries at most 64 MiB).
#
# Usage: tools/accelerator_wheels.sh [DIR]   (default .whl, which git ignores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.whl}"
pin() {  # the version setup.py pins for a distribution
  sed -n "s/^ *\"$1==\([^\"]*\)\".*/\1/p" "$ROOT/setup.py" | head -1
}
KERAS="$(pin keras)"; GIN="$(pin gin-config)"
[[ -n "$KERAS" && -n "$GIN" ]] || { echo "accelerator_wheels.sh: no keras/gin-config pin in setup.py" >&2; exit 2; }
mkdir -p "$DIR"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$DIR" \
  "keras==$KERAS" "gin-config==$GIN" namex optree
total=0
for wheel in "$DIR"/*.whl; do
  size=$(stat -c %s "$wheel"); total=$(( total + size ))
  printf '%8d KiB  %s\n' $(( (size + 1023) / 1024 )) "$(basename "$wheel")"
done
printf '%8d KiB  total (at most 65536)\n' $(( (total + 1023) / 1024 ))
