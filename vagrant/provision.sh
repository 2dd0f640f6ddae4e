#!/usr/bin/env bash
# Provisions one box (run by Vagrant as root, inside it): the Rust toolchain
# and the runtimes from the distribution's own packages, then the suite as
# cells of the matrix. The reports go to /orphanage/out/vagrant/FAMILY/cells,
# the host's out/vagrant/FAMILY/cells through the synced folder.
# usage: provision.sh debian|ubuntu|fedora
set -euo pipefail
family=${1:?usage: provision.sh debian\|ubuntu\|fedora}

# Packages for each family: rustup (the distributions' Rust is older than
# the workspace's rust-version on some of them), a C toolchain and libc.a
# for the statically linked agent, setpriv, and the runtimes and the init
# under test. The cells each family runs follow what it packages.
case $family in
    debian | ubuntu)
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends rustup ca-certificates gcc libc6-dev \
            util-linux runc crun tini
        cells=(host runtime-runc runtime-runc-tini runtime-crun)
        ;;
    fedora)
        dnf install -y rustup gcc glibc-static util-linux runc crun
        cells=(host runtime-runc runtime-crun)
        ;;
    *)
        echo "provision.sh: unknown family $family (debian, ubuntu or fedora)" >&2
        exit 2
        ;;
esac

# Debian's and Ubuntu's rustup package is rustup itself; Fedora's installs
# it with rustup-init. Where each puts its cargo proxy differs, so the
# toolchain's own bin directory goes first on PATH.
export PATH=$HOME/.cargo/bin:$PATH
if ! command -v rustup >/dev/null && command -v rustup-init >/dev/null; then
    rustup-init -y --profile minimal --default-toolchain stable
fi
rustup toolchain install stable --profile minimal
PATH=$(dirname "$(rustup which --toolchain stable cargo)"):$PATH

# The build stays on the box's own disk: a synced folder is slow for it,
# and some kinds refuse the hard links cargo makes.
export CARGO_TARGET_DIR=/var/tmp/orphanage-target
export ORPHANAGE=$CARGO_TARGET_DIR/release/orphanage
export MATRIX_OUT=/orphanage/out/vagrant/$family
cd /orphanage
echo "box $family: kernel $(uname -r)"
ci/run-matrix.sh build

# Every cell runs, then the provisioning fails if any did, naming them.
failed=()
for cell in "${cells[@]}"; do
    ci/run-matrix.sh prepare "$cell" && ci/run-matrix.sh cell "$cell" || failed+=("$cell")
done
echo "box $family: reports in out/vagrant/$family/cells on the host"
if [ ${#failed[@]} -gt 0 ]; then
    echo "box $family: failed: ${failed[*]}" >&2
    exit 1
fi
