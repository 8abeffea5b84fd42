#!/usr/bin/env bash
# The benchmark test sets where the tests and benchmarks read them: $TINYSR_DATA, default ../shared/data (beside the
# checkout). When every file is already there (as in the shared workspace), nothing is read or downloaded; otherwise
# `tinysr prepare testsets` downloads the missing ones from their pinned GitHub sources (about 180 MiB in all, Set5,
# Set14, BSD100, Urban100, T91, BSD200 and MATLAB's imresize vectors), converts, checks each against the package's
# SHA-256 manifest and lays them out; a cut run resumes where it stopped. Needs tinysr installed (pip install .);
# further arguments go to the command (--base-url MIRROR).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m tinysr prepare testsets --out "${TINYSR_DATA:-../shared/data}" --if-missing "$@"
