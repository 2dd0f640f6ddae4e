#!/usr/bin/env bash
# Exploration figures for README: generated trees checked per second (trees of
# 8 processes and threads, 2 jobs), and the time to run and check one tree of
# 1000. Prints the load average too: other work on the machine moves these.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/orphanage
save=$(mktemp -d)
trap 'rm -rf "$save"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== trees of 8, 2 jobs, 2000 trees per run"
for run in 1 2 3 4 5; do
    "$bin" explore --cases 2000 --processes 8 --jobs 2 --seed "$run" --save-to "$save" | grep 'agree'
done
echo "== one tree of 1000"
for run in 1 2 3; do
    "$bin" explore --cases 1 --processes 1000 --seed "$run" --save-to "$save" | grep 'agree'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
