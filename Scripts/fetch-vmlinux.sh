#!/usr/bin/env bash
# Fetches a Debian kernel's -dbg vmlinux (DWARF) into a cache outside the repository and
# prints its path. usage: Scripts/fetch-vmlinux.sh 6.1.0-56-amd64
# env: VMLINUX_CACHE (default ~/.cache/xenctx-swift/vmlinux)
set -euo pipefail
kver=${1:?usage: fetch-vmlinux.sh KERNEL-VERSION (e.g. 6.1.0-56-amd64)}
cache=${VMLINUX_CACHE:-$HOME/.cache/xenctx-swift/vmlinux}
out="$cache/$kver/vmlinux-$kver"
if [ ! -s "$out" ]; then
    mkdir -p "$cache/$kver"
    cd "$cache/$kver"
    pkg="linux-image-$kver-dbg"
    # 32-bit x86 kernels (686, 686-pae) are i386 packages: apt must know that architecture.
    case $kver in *-686|*-686-pae)
        pkg="$pkg:i386"
        dpkg --print-foreign-architectures | grep -qx i386 || dpkg --add-architecture i386 ;;
    esac
    ls linux-image-"$kver"-dbg_*.deb >/dev/null 2>&1 || { apt-get update -qq; apt-get download "$pkg" >&2; }
    dpkg --fsys-tarfile linux-image-"$kver"-dbg_*.deb | tar -xO "./usr/lib/debug/boot/vmlinux-$kver" > "$out.partial"
    mv "$out.partial" "$out"
    rm -f linux-image-"$kver"-dbg_*.deb
fi
echo "$out"
