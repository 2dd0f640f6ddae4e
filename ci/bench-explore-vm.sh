#!/usr/bin/env bash
# Generated trees in a VM against the host, in the same run (issue 12's
# figure): 1000 trees of 8 on the host, then in one boot of KERNEL (default:
# Debian's 6.1 from the kernel cache) under ACCEL (default: auto, which falls
# back to TCG where KVM does not answer), then the VM's rate as a share of
# the host's. The VM's time includes its boot.
# Needs the kernel fetched: cargo run --release -- kernels fetch
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=target/release/orphanage
kernel=${KERNEL:-$("$bin" kernels path 6.1 | cut -f2)}
accel=${ACCEL:-auto}
cases=${CASES:-1000}
save=$(mktemp -d)
trap 'rm -rf "$save"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
start=$(date +%s%N)
host=$("$bin" explore --cases "$cases" --seed 11 --save-to "$save" | grep agree)
host_wall=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
start=$(date +%s%N)
vm=$("$bin" --kernel "$kernel" --accel "$accel" explore --cases "$cases" --seed 11 --save-to "$save" | grep agree)
vm_wall=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
echo "host: $host (command: $host_wall s)"
echo "vm:   $vm (command, boot included: $vm_wall s)"
awk -v n="$cases" -v h="$host_wall" -v v="$vm_wall" 'BEGIN {
    printf "trees/s, whole commands: host %.0f, vm %.1f: the vm at %.3f of the host (goal: 0.1)\n",
        n / h, n / v, h / v }'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
