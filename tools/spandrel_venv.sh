#!/usr/bin/env bash
# spandrel's own venv, for tests/test_spandrel.py: the real `spandrel` package with PyPI's torch and torchvision.
#
# Why a venv of its own: spandrel imports torchvision, and PyPI's torchvision wheels are built against PyPI's CUDA
# torch. Beside tinysr's CPU torch (2.13.0+cpu) even the matching torchvision 0.28.0 fails to import (its _C.so
# needs libtorch_cuda.so and libc10_cuda.so, so `operator torchvision::nms does not exist`). Here torch is PyPI's
# CUDA build of the same release; it runs on CPU. Measured on the dev machine (2 shared cores, nice 19): 220 s and
# 4.9 GB (4,861 MB); the build prints both.
#
# Usage: tools/spandrel_venv.sh            build it (if missing or built from other pins), print its path
#        tools/spandrel_venv.sh --check    print its path if it is built from these pins, else say so and exit 3
# Where: $TINYSR_SPANDREL_VENV, default ${XDG_CACHE_HOME:-~/.cache}/tinysr/spandrel-venv (outside the checkout, so
#        that CI can cache it). It is built beside that path and takes its name only when complete; a folder there
#        that this script did not build (no stamp) is never removed.
set -euo pipefail
venv="${TINYSR_SPANDREL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/tinysr/spandrel-venv}"
# Pins: torch as tinysr's constraints.txt (the CUDA build: `!=...+cpu` keeps pip off a local CPU wheel of the same
# version), the torchvision of that torch, and the spandrel release whose Compact code tinysr.export.spandrel follows.
pins=("torch==2.13.0,!=2.13.0+cpu" "torchvision==0.28.0" "spandrel==0.4.2")
stamp_name="tinysr-spandrel-pins.txt"
want="${pins[*]}"

if [ -f "$venv/$stamp_name" ] && [ "$(cat "$venv/$stamp_name")" = "$want" ]; then
  echo "$venv"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "spandrel's venv is not built at $venv (or is from other pins): run tools/spandrel_venv.sh (about 5 GB and" \
    "4 minutes), or point TINYSR_SPANDREL_VENV at one" >&2
  exit 3
fi
if [ -e "$venv" ] && [ ! -f "$venv/$stamp_name" ]; then
  echo "tools/spandrel_venv.sh: $venv exists but was not built by this script; remove it or set" \
    "TINYSR_SPANDREL_VENV" >&2
  exit 1
fi

start=$SECONDS
mkdir -p "$(dirname "$venv")"
tmp="$(mktemp -d "$venv.building.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp"
"$tmp/bin/python" -m pip install -q --no-cache-dir "${pins[@]}" >&2
"$tmp/bin/python" -c "import spandrel, torch, torchvision; print('spandrel', spandrel.__version__, 'torch', \
torch.__version__, 'torchvision', torchvision.__version__)" >&2
printf '%s' "$want" > "$tmp/$stamp_name"
# Moved whole: its bin/python still finds its packages (pyvenv.cfg lies beside it); its pip's shebang names the
# build folder, so tinysr only ever runs "$venv/bin/python" (-m pip, if need be).
rm -rf "$venv"  # only a stale venv of ours reaches here (checked above)
mv "$tmp" "$venv"
trap - EXIT
echo "spandrel venv built in $((SECONDS - start)) s, $(du -sm "$venv" | cut -f1) MB" >&2
echo "$venv"
