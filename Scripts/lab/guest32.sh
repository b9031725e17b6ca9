#!/usr/bin/env bash
# Prepares a 32-bit x86 guest for the x86 lab (used by Scripts/lab-check.sh when LAB_DOMS
# names a `pvh32` domain): Debian's i386 686-pae kernel, an i386 busybox initramfs with the
# lab's own guest /init, and the kernel's real System.map from its -dbg package.
# usage: guest32.sh LAB_COPY KVER32     writes LAB_COPY/files/{vmlinuz32,guest-initrd32.cpio.gz,System.map32}
set -euo pipefail
work=$1 kver=$2
C=${LAB_CACHE:-$HOME/.cache/xenlab/x86}/guest32
mkdir -p "$C/debs"
# runs before the lab's own deps stage, on a machine that may have none of them yet
command -v cpio >/dev/null || apt-get -o DPkg::Lock::Timeout=600 install -y cpio
cd "$C/debs"
dpkg --print-foreign-architectures | grep -qx i386 || { dpkg --add-architecture i386; apt-get update -q || true; }
for p in linux-image-$kver busybox-static linux-image-$kver-dbg; do
  ls ${p}_*_i386.deb >/dev/null 2>&1 || apt-get download $p:i386
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
