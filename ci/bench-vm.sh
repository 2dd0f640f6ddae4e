#!/usr/bin/env bash
# VM figures for README. For each kernel of the matrix, in the same run, with
# the same kernel and accelerator: the boot floor (an initramfs whose init only
# powers off: QEMU start to exit) and the time from QEMU start to the agent's
# first result, then the whole cell (every scenario). Each kernel runs alone
# (so its VM gets the host's cores as CPUs), REPS times; last, the whole
# matrix once with its cells in parallel. Each line names the CPUs.
# Needs the kernels fetched: cargo run --release -- kernels fetch
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${REPS:-3}
accel=${ACCEL:-auto}
cargo build --release --quiet
bin=target/release/orphanage
kernels=$(awk '/^  - name:/ { gsub(/"/, "", $3); print $3 }' fixtures/kernels.yaml | grep -v '^host$')
for rep in $(seq "$reps"); do
    for k in $kernels; do
        "$bin" --kernels fixtures/kernels.yaml --only-kernel "$k" --boot-floor --accel "$accel" 2>/dev/null |
            grep "^$k: " | sed "s/^/run $rep: /"
    done
done
echo "whole matrix, cells in parallel:"
"$bin" --kernels fixtures/kernels.yaml --accel "$accel" 2>/dev/null | grep -E "^whole matrix|^[0-9.]+: "
