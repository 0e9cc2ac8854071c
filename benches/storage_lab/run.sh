#!/bin/bash
# Dump the recordings' level streams and compare the storage layouts on them.
#   benches/storage_lab/run.sh [ROUNDS]    (from the repository root; make storage-lab)
# LAB_CFLAGS adds compiler flags to the layouts (e.g. -mpopcnt; the core is built without).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$root/build/storage_lab
rounds=${1:-21}
mkdir -p "$out"
# dump_levels.py goes through the built tickbook, so a stream is dumped only when its file
# is missing: delete build/storage_lab/*.bin to dump them again after a parsing change.
missing=()
for ds in spot usdm; do
    [ -s "$out/$ds.bin" ] || missing+=("$ds")
done
if ((${#missing[@]})); then
    "$root/.venv/bin/python" "$here/dump_levels.py" "$out" "${missing[@]}" >/dev/null
fi
objs=() xs=""
for layout in blocks pages pages_compact tiered dense_window bound_hash; do
    gcc -O3 -std=gnu11 -Wall ${LAB_CFLAGS:-} -c -DLAYOUT_HEADER="\"$here/$layout.h\"" -DLAB_RUN="lab_run_$layout" \
        "$here/replay.c" -o "$out/replay_$layout.o"
    objs+=("$out/replay_$layout.o")
    xs="$xs X($layout)"
done
gcc -O3 -std=gnu11 -Wall "-DLAYOUTS=$xs" "$here/compare.c" "${objs[@]}" -o "$out/compare"
"$out/compare" "$rounds" "$out/spot.bin" "$out/usdm.bin"
