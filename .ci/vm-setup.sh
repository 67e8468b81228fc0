#!/usr/bin/env bash
# Prepares this machine for lvslab-vm: installs qemu, a static busybox (the guest's first
# stage), kmod (depmod; modprobe in the guest) and ipvsadm, then fetches the newest Debian
# amd64 kernel into the VM cache (${LVSLAB_VM_CACHE:-/var/cache/lvslab/vm}).
# Idempotent and quiet: a second run installs and downloads nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt_opts=(-qq -o DPkg::Lock::Timeout=600)
updated=0
apt_update_once() {
    if [ "$updated" = 0 ]; then
        apt-get "${apt_opts[@]}" update >/dev/null
        updated=1
    fi
}

missing=()
for pkg in qemu-system-x86 busybox-static kmod ipvsadm; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_update_once
    apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

cache="${LVSLAB_VM_CACHE:-/var/cache/lvslab/vm}"
if [ ! -s "$cache/current" ]; then
    # Stale package lists name kernels the mirror no longer has.
    apt_update_once
fi
# Instant when the kernel is already cached.
cargo run -q -p lvslab-vm --example vm -- fetch >/dev/null
