#!/usr/bin/env bash
# The one GPU check of issue 7, for a lent CUDA machine (no network; torch preinstalled there): CUDA unit tests of
# the fast path and the device sampler, then the train-speed benchmark. Run from the repository root:
#     OUT=/some/folder bash benchmarks/gpu_check.sh
# Everything goes to $OUT: gpu_check.log (all output), pytest_cuda.log, train_speed.log, train_speed.json.
# Wall time: about 6 minutes (tests ~1 min, killed at 120 s; benchmark budget 240 s + the run in flight, killed at
# 320 s; its JSON is rewritten after every row, so a kill loses one row).
# A failing step is recorded and the script goes on; the exit status is that of the first failing step.
set -o pipefail
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
OUT="${OUT:-gpu-check-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
PY="$(command -v python3 || command -v python)"
status=0
step() {  # step NAME TIMEOUT_S COMMAND...: run, record its status, never stop the script
    local name="$1" limit="$2"; shift 2
    echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*"
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    echo "=== $name: exit $rc"
    [ "$rc" -ne 0 ] && [ "$status" -eq 0 ] && status=$rc
    return 0
}

step machine 30 bash -c "nvidia-smi; $PY -c 'import torch, sys; print(sys.version.split()[0], torch.__version__, \
torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"-\"); \
sys.exit(0 if torch.cuda.is_available() else 1)'"
step pytest-cuda 120 bash -c "$PY -m pytest -q -p no:cacheprovider -rs tests/test_fastpath.py tests/test_gpu_sampler.py \
-k cuda 2>&1 | tee $OUT/pytest_cuda.log"
# TRAIN_SPEED_ARGS: for a local smoke run only, e.g. "--configs 0/64 --batches 1 --steps 3 --warmup 1".
step train-speed 320 bash -c "$PY benchmarks/train_speed.py ${TRAIN_SPEED_ARGS:---quick} --json $OUT/train_speed.json 2>&1 \
| tee $OUT/train_speed.log"
echo "=== done: status $status"
exit $status
