#!/usr/bin/env bash
# Runtime figures for README: for each runtime, orphanage's time per scenario
# (the whole suite with --init tini) against the runtime's own `run` of a
# trivial static program in a minimal bundle, and their ratio, in one run.
# ORPHANAGE_BENCH_RUNTIMES=runc,crun picks runtimes (names or paths); by
# default every one of runc, crun, /opt/youki/bin/youki, runsc and the fetched
# runsc-trixie that is there. ORPHANAGE_BENCH_THREADS=N runs the suite with
# --test-threads N (default: the machine's cores).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p orphanage --bench runtime_ratio
