#!/usr/bin/env bash
# Reporting figures for README: `orphanage merge` of 50 cells x 100 scenarios,
# and what --junit and --format ktap add to a host run.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p orphanage --bench merge
