#!/usr/bin/env bash
# Host-suite figures for README: whole-suite wall time and median per-scenario overhead.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p orphanage --bench host_suite
