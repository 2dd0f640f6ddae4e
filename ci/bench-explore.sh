#!/usr/bin/env bash
# Exploration figures for README: generated trees checked per second (trees of
# 8 processes and threads; 2 jobs, then 4, the default of two per CPU on two
# cores), and the time to run and check one tree of 1000. The load average is
# printed too: other work on the machine moves these figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/orphanage
save=$(mktemp -d)
trap 'rm -rf "$save"' EXIT
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for jobs in 2 4; do
    echo "== trees of 8, $jobs jobs, 2000 trees per run"
    for run in 1 2 3 4 5; do
        "$bin" explore --cases 2000 --processes 8 --jobs "$jobs" --seed "$run" --save-to "$save" | grep 'agree'
    done
done
echo "== one tree of 1000"
for run in 1 2 3; do
    "$bin" explore --cases 1 --processes 1000 --seed "$run" --save-to "$save" | grep 'agree'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU time per tree does not depend on the machine's other load.
echo "== CPU time (user + sys, harness and agents) for 1000 trees of 8"
/usr/bin/time -f "%U s user + %S s sys for 1000 trees" \
    "$bin" explore --cases 1000 --processes 8 --seed 9 --save-to "$save" | grep 'agree'
