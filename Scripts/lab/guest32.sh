#!/usr/bin/env bash
# Prepares a 32-bit x86 guest for the x86 lab (used by Scripts/lab-check.sh when LAB_DOMS
# names a `pvh32` domain): Debian's i386 686-pae kernel, an i386 busybox initramfs with the
# lab's own guest /init, and the kernel's real System.map from its -dbg package.
# usage: guest32.sh LAB_COPY [KVER32]   writes LAB_COPY/files/{vmlinuz32,guest-initrd32.cpio.gz,System.map32}
# KSUITE32=bullseye takes the kernel (KVER32, default the newest 5.10.0-*-686-pae with a -dbg
# package there) from bullseye and bullseye-security through a private apt configuration under
# $C/apt-bullseye (i386 only; the host's apt sources are not touched); busybox stays bookworm's.
set -euo pipefail
work=$1 kver=${2:-}
C=${LAB_CACHE:-$HOME/.cache/xenlab/x86}/guest32
mkdir -p "$C/debs"
# runs before the lab's own deps stage, on a machine that may have none of them yet
command -v cpio >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y cpio
cd "$C/debs"
dpkg --print-foreign-architectures | grep -qx i386 || { dpkg --add-architecture i386; apt-get update -q || true; }
kapt() { apt-get download "$@"; }
case ${KSUITE32:-} in
  '') kver=${kver:-6.1.0-50-686-pae} ;;
  bullseye)
    d=$C/apt-bullseye
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
    printf '%s\n' "deb [arch=i386] http://deb.debian.org/debian bullseye main" \
      "deb [arch=i386] http://deb.debian.org/debian-security bullseye-security main" > "$d/sources.list"
    sapt32() { local c=$1; shift; "$c" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
      -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o APT::Architectures::=i386 "$@"; }
    sapt32 apt-get -q update
    if [ -z "$kver" ]; then
      kver=$(sapt32 apt-cache search --names-only '^linux-image-5\.10\.0-[0-9]+-686-pae-dbg$' | awk '{print $1}' \
             | sed 's/^linux-image-//; s/-dbg$//' | sort -V | tail -1)
      [ -n "$kver" ] || { echo "guest32: no 5.10 686-pae kernel with -dbg in bullseye" >&2; exit 1; }
    fi
    kapt() { case $1 in linux-image-*) sapt32 apt-get -q download "$@";; *) apt-get download "$@";; esac; } ;;
  *) echo "guest32: KSUITE32 is bullseye or unset, not $KSUITE32" >&2; exit 2 ;;
esac
for p in linux-image-$kver busybox-static linux-image-$kver-dbg; do
  ls ${p}_*_i386.deb >/dev/null 2>&1 || kapt $p:i386
done
if [ ! -e "$C/.done-$kver" ]; then
  rm -rf "$C/x"; mkdir -p "$C/x"
  dpkg -x linux-image-${kver}_*_i386.deb "$C/x"
  dpkg -x busybox-static_*_i386.deb "$C/x"
  # the plain package ships a stub System.map; the real one is in -dbg (with a 300 MB vmlinux)
  dpkg --fsys-tarfile linux-image-${kver}-dbg_*_i386.deb | tar -x -C "$C/x" ./usr/lib/debug/boot/
  touch "$C/.done-$kver"
fi
G=$C/stage
rm -rf "$G"; mkdir -p "$G"/{bin,proc,sys,dev,tmp,root}
cp "$C/x/bin/busybox" "$G/bin/busybox"
ln -s busybox "$G/bin/sh"
install -m 755 "$work/files/guest-init.sh" "$G/init"
(cd "$G" && find . | cpio -o -H newc --quiet | gzip -9) > "$work/files/guest-initrd32.cpio.gz"
cp "$C/x/boot/vmlinuz-$kver" "$work/files/vmlinuz32"
cp "$C/x/usr/lib/debug/boot/System.map-$kver" "$work/files/System.map32"
echo "$kver" > "$work/files/kver32.txt"
file "$work/files/vmlinuz32" "$C/x/bin/busybox"
