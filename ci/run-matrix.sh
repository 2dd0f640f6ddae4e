#!/usr/bin/env bash
# The conformance matrix (ci/cells) on one machine, and each of its cells as
# the GitHub workflow (.github/workflows/matrix.yml) runs it: every step of
# that workflow is one call into this script, so what CI runs is what
# runner/harness/tests/ci.rs tests here.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cells_file=$repo/ci/cells
# Where cells write (OUT/cells/CELL.{json,xml,log}) and merge reads and writes.
out=${MATRIX_OUT:-$repo/out}
# The binary every cell runs; `build` makes the default one.
orphanage=${ORPHANAGE:-${CARGO_TARGET_DIR:-$repo/target}/release/orphanage}
kvm_device=${ORPHANAGE_KVM_DEVICE:-/dev/kvm}
# runc's and runtime-tools' convention would turn the host cell into a runtime's.
unset RUNTIME

usage() {
    cat <<'EOF'
usage: ci/run-matrix.sh VERB [ARGS...]

  list                     the cells, one a line (from ci/cells)
  json                     the cells as a JSON array
  github-output            writes cells=<json> to $GITHUB_OUTPUT, for the workflow's matrix
  packages CELL            the Debian packages CELL needs, one a line
  install CELL...|all      apt-get installs what the cells need
  build                    cargo build --release of orphanage
  prepare CELL             fetches a kernel cell's kernel and says whether /dev/kvm is accessible;
                           for crun, moves hybrid cgroup v2 controllers to v1 (see cgroups)
  cgroups                  attach each controller of a hybrid layout's v2 hierarchy to v1
  command CELL [ARG...]    prints the orphanage command line CELL runs, one argument a line
  command merge [DIR]      prints the merge command line, one argument a line
  cell CELL [ARG...]       runs CELL: OUT/cells/CELL.json (--report), .xml (--junit), .log;
                           ARGs go to orphanage (filters, --suites DIR ...)
  merge [DIR [ARG...]]     merges DIR/cells/*.json into DIR/matrix.html, matrix.md, all.xml
  all [ARG...]             build (unless $ORPHANAGE is set), then prepare and run
                           every cell, then merge

OUT is $MATRIX_OUT (default out/ in the repository); the binary is
$ORPHANAGE (default target/release/orphanage).
EOF
}

die() {
    echo "ci/run-matrix.sh: $*" >&2
    exit 2
}

# The cell names of ci/cells, in order. A name is a plain word (so that it
# can go into JSON, file names and artifact names unquoted) and appears once.
read_cells() {
    local line seen=" "
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        # Trimmed at both ends; a space inside is a bad name, not two cells.
        line=${line#"${line%%[![:space:]]*}"}
        line=${line%"${line##*[![:space:]]}"}
        [ -n "$line" ] || continue
        [[ $line =~ ^[a-z0-9][a-z0-9.+-]*$ ]] || die "$cells_file: bad cell name \`$line\`"
        [[ $line =~ ^(host|kernel-.+|runtime-.+)$ ]] ||
            die "$cells_file: unknown kind of cell \`$line\` (host, kernel-NAME or runtime-RT[-INIT])"
        [[ $seen != *" $line "* ]] || die "$cells_file: cell \`$line\` is listed twice"
        seen+="$line "
        echo "$line"
    done <"$cells_file"
}

is_cell() {
    local cell
    for cell in "${cells[@]}"; do
        [ "$cell" != "$1" ] || return 0
    done
    return 1
}

# JSON array of the words given (plain words need no escaping).
json_array() {
    local sep="" word
    printf '['
    for word in "$@"; do
        printf '%s"%s"' "$sep" "$word"
        sep=","
    done
    printf ']\n'
}

# A runtime cell's runtime and init: runtime-runsc-tini -> "runsc tini".
runtime_and_init() {
    local rest=${1#runtime-}
    case $rest in
        *-*) echo "${rest%%-*} ${rest#*-}" ;;
        *) echo "$rest" ;;
    esac
}

# Whether kernel NAME of fixtures/kernels.yaml is built from a source
# package (its entry has `build:`).
builds_from_source() {
    awk -v name="$1" '
        /^  - name:/ { gsub(/"/, "", $3); this = ($3 == name) }
        this && /^    build:/ { found = 1 }
        END { exit !found }' "$repo/fixtures/kernels.yaml"
}

# The Debian packages a cell needs beyond the Rust toolchain.
packages_for() {
    local cell=$1
    # libc.a for the statically linked agent, and setpriv.
    printf '%s\n' libc6-dev gcc util-linux
    case $cell in
        host) ;;
        # QEMU and what `orphanage kernels fetch` uses to fetch and verify a
        # Debian kernel package and unpack it (apt and dpkg are essential,
        # always there); for a kernel built from source, what the build runs
        # (BUILD_PROGRAMS and BUILD_HEADERS in runner/harness/src/kernel_build.rs).
        kernel-*)
            printf '%s\n' qemu-system-x86 debian-archive-keyring xz-utils zstd
            if builds_from_source "${cell#kernel-}"; then
                printf '%s\n' make flex bison bc libelf-dev
            fi
            ;;
        runtime-*)
            local runtime init
            read -r runtime init <<<"$(runtime_and_init "$cell")"
            echo "$runtime"
            [ -z "$init" ] || echo "$init"
            ;;
        *) die "unknown kind of cell \`$cell\` (host, kernel-NAME or runtime-RT[-INIT])" ;;
    esac
}

# The command line of a cell, one argument a line: the binary, the target,
# the report and JUnit paths in DIR, then ARGs.
cell_argv() {
    local cell=$1 dir=$2
    shift 2
    echo "$orphanage"
    case $cell in
        host) ;;
        # Through the kernels file, not --kernel IMAGE: an entry's qemu_args,
        # cmdline and results port apply, and the report's cell is named
        # after the kernel.
        kernel-*) printf '%s\n' --kernels "$repo/fixtures/kernels.yaml" --only-kernel "${cell#kernel-}" ;;
        runtime-*)
            local runtime init
            read -r runtime init <<<"$(runtime_and_init "$cell")"
            printf '%s\n' --runtime "$runtime"
            [ -z "$init" ] || printf '%s\n' --init "$init"
            # Known differences from Linux are judged, not failed.
            local expected=$repo/fixtures/expected/$runtime.yaml
            [ ! -f "$expected" ] || printf '%s\n' --expected "$expected"
            ;;
        *) die "unknown kind of cell \`$cell\` (host, kernel-NAME or runtime-RT[-INIT])" ;;
    esac
    printf '%s\n' --report "$dir/$cell.json" --junit "$dir/$cell.xml"
    [ $# -eq 0 ] || printf '%s\n' "$@"
}

# The merge command line, one argument a line: REPORTs into DIR's pages.
merge_argv() {
    local dir=$1
    shift
    echo "$orphanage"
    echo merge
    printf '%s\n' "$@"
    printf '%s\n' --html "$dir/matrix.html" --markdown "$dir/matrix.md" --junit "$dir/all.xml"
}

# The reports to merge from DIR/cells: the listed cells' in the list's order
# (each missing one named on stderr), then any others (sorted), one a line.
merge_inputs() {
    local dir=$1 cell file
    local -A listed=()
    while read -r cell; do
        listed[$cell]=1
        file=$dir/cells/$cell.json
        if [ -f "$file" ]; then
            echo "$file"
        else
            echo "ci/run-matrix.sh: cell $cell has no report ($file): missing from the matrix" >&2
        fi
    done < <(printf '%s\n' "${cells[@]}")
    for file in "$dir"/cells/*.json; do
        [ -f "$file" ] || continue
        cell=$(basename "$file" .json)
        [ -n "${listed[$cell]:-}" ] || echo "$file"
    done
}

need_binary() {
    [ -x "$orphanage" ] || die "no orphanage at $orphanage: run \`ci/run-matrix.sh build\` (or set ORPHANAGE)"
}

# Whether this machine offers KVM at all. orphanage itself probes KVM before
# booting and falls back to TCG (--accel auto); this puts the device's state
# in the log, since a kernel cell's run time depends on it tenfold.
kvm_note() {
    local dev=$1
    if [ -c "$dev" ] && [ -r "$dev" ] && [ -w "$dev" ]; then
        echo "KVM: $dev is accessible: orphanage uses KVM if its probe answers (else TCG, and it says why)"
    elif [ -e "$dev" ]; then
        echo "KVM: $dev is not readable and writable by $(id -un): orphanage falls back to TCG"
    else
        echo "KVM: no $dev: orphanage falls back to TCG"
    fi
}

# crun (1.8) refuses a hybrid cgroup layout whose v2 hierarchy has any
# controller attached ("cgroups in hybrid mode not supported"); on the
# development machines that is hugetlb, at /sys/fs/cgroup/unified. Attach each
# such controller to a v1 hierarchy of its own instead: possible as root
# while no cgroup uses it, and a no-op once done (or on a host that is not hybrid).
attach_hybrid_controllers() {
    local unified=/sys/fs/cgroup/unified controller controllers=()
    # Read, not tested with -s: cgroupfs files have size 0 whatever they hold.
    if mountpoint -q "$unified"; then
        read -ra controllers <"$unified/cgroup.controllers" || true
        for controller in "${controllers[@]}"; do
            mkdir -p "/sys/fs/cgroup/$controller"
            mountpoint -q "/sys/fs/cgroup/$controller" ||
                mount -t cgroup -o "$controller" cgroup "/sys/fs/cgroup/$controller"
        done
    fi
}

cmd_install() {
    [ $# -gt 0 ] || die "install needs a cell, or all"
    [ "$*" != all ] || set -- "${cells[@]}"
    local cell packages=()
    for cell in "$@"; do
        is_cell "$cell" || die "no cell \`$cell\` in $cells_file"
        mapfile -t -O "${#packages[@]}" packages < <(packages_for "$cell")
    done
    mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
}

cmd_prepare() {
    [ $# -eq 1 ] || die "prepare needs one cell"
    is_cell "$1" || die "no cell \`$1\` in $cells_file"
    case $1 in
        kernel-*)
            need_binary
            (cd "$repo" && "$orphanage" kernels fetch "${1#kernel-}") || return
            kvm_note "$kvm_device"
            ;;
        runtime-crun | runtime-crun-*) attach_hybrid_controllers || return ;;
        *) ;;
    esac
}

cmd_command() {
    [ $# -gt 0 ] || die "command needs a cell, or merge"
    if [ "$1" = merge ]; then
        local dir=${2:-$out}
        local inputs
        mapfile -t inputs < <(merge_inputs "$dir" 2>/dev/null)
        merge_argv "$dir" "${inputs[@]}"
        return
    fi
    local cell=$1
    shift
    is_cell "$cell" || die "no cell \`$cell\` in $cells_file"
    cell_argv "$cell" "$out/cells" "$@"
}

cmd_cell() {
    [ $# -gt 0 ] || die "cell needs a cell"
    local cell=$1 argv status
    shift
    is_cell "$cell" || die "no cell \`$cell\` in $cells_file"
    need_binary
    mkdir -p "$out/cells"
    rm -f "$out/cells/$cell".{json,xml,log}
    mapfile -t argv < <(cell_argv "$cell" "$out/cells" "$@")
    echo "cell $cell: ${argv[*]}"
    # From the repository, where a runtime cell finds its suites and fixtures.
    set +e
    (cd "$repo" && "${argv[@]}") 2>&1 | tee "$out/cells/$cell.log"
    status=${PIPESTATUS[0]}
    set -e
    # A cell that wrote no report would vanish from the matrix; say so here.
    for file in "$out/cells/$cell.json" "$out/cells/$cell.xml"; do
        if [ ! -s "$file" ]; then
            echo "ci/run-matrix.sh: cell $cell wrote no $file (orphanage exited $status)" >&2
            [ "$status" -ne 0 ] || status=1
        fi
    done
    return "$status"
}

cmd_merge() {
    local dir=${1:-$out} inputs argv status cell missing=0
    [ $# -eq 0 ] || shift
    need_binary
    mapfile -t inputs < <(merge_inputs "$dir")
    [ ${#inputs[@]} -gt 0 ] || die "no report in $dir/cells to merge"
    for cell in "${cells[@]}"; do
        [ -f "$dir/cells/$cell.json" ] || missing=$((missing + 1))
    done
    mapfile -t argv < <(merge_argv "$dir" "${inputs[@]}")
    set +e
    "${argv[@]}" "$@"
    status=$?
    set -e
    [ "$status" -eq 0 ] || return "$status"
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$dir/matrix.md" ]; then
        cat "$dir/matrix.md" >>"$GITHUB_STEP_SUMMARY"
    fi
    if [ "$missing" -gt 0 ]; then
        echo "ci/run-matrix.sh: $missing listed cell(s) missing from the matrix" >&2
        return 1
    fi
}

cmd_all() {
    local cell failed=()
    # A binary given in ORPHANAGE is used as it is.
    [ -n "${ORPHANAGE:-}" ] || cmd_build
    while read -r cell; do
        if ! { cmd_prepare "$cell" && cmd_cell "$cell" "$@"; }; then
            failed+=("$cell")
        fi
    done < <(printf '%s\n' "${cells[@]}")
    cmd_merge "$out" || failed+=(merge)
    if [ ${#failed[@]} -gt 0 ]; then
        echo "matrix: failed: ${failed[*]}" >&2
        return 1
    fi
    echo "matrix: every cell ran; $out/matrix.html"
}

cmd_build() {
    (cd "$repo" && cargo build --release --locked -p orphanage)
}

verb=${1:-help}
[ $# -eq 0 ] || shift
# Read and checked once, here, so that a bad list stops every verb.
cells_text=$(read_cells)
[ -n "$cells_text" ] || die "$cells_file lists no cell"
mapfile -t cells <<<"$cells_text"
case $verb in
    list) [ $# -eq 0 ] || die "list takes no argument"; printf '%s\n' "${cells[@]}" ;;
    json) json_array "${cells[@]}" ;;
    github-output)
        [ -n "${GITHUB_OUTPUT:-}" ] || die "GITHUB_OUTPUT is not set (run by GitHub Actions)"
        echo "cells=$(json_array "${cells[@]}")" >>"$GITHUB_OUTPUT"
        ;;
    packages) [ $# -eq 1 ] || die "packages needs one cell"; is_cell "$1" || die "no cell \`$1\` in $cells_file"; packages_for "$1" ;;
    install) cmd_install "$@" ;;
    build) cmd_build ;;
    prepare) cmd_prepare "$@" ;;
    cgroups) attach_hybrid_controllers ;;
    kvm) kvm_note "$kvm_device" ;;
    command) cmd_command "$@" ;;
    cell) cmd_cell "$@" ;;
    merge) cmd_merge "$@" ;;
    all) cmd_all "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
esac
