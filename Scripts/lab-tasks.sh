#!/usr/bin/env bash
# Task lab (not part of CI; about 5-10 minutes under QEMU TCG once the packages are cached, 20-40 the first time):
# runs the x86 Xen lab from ../shared/xenlab/x86 with one crashing 64-bit PV guest whose
# initramfs also carries Debian's rfkill module. Before crashing, the guest loads the module,
# starts a reader blocked inside it (`cat /dev/rfkill`, asleep in rfkill_fop_read), the lab's
# known sleeping tasks (sleep, a pipe, FIFO readers, a busy loop on vCPU 1), then dumps every
# task with sysrq-t to its console. That console is the truth for `--tasks` and task stacks.
#
# Other Debian kernels: KSUITE=trixie|bullseye downloads linux-image-KVER and its -dbg package
# from that suite (plus its security suite) with a private apt configuration under
# $LAB_CACHE/apt-KSUITE (the host's apt sources are not touched) into $LAB_CACHE/debs, where the
# lab's fetch stage finds them. KVER defaults to the newest KVER that has a -dbg package there
# (trixie: 6.12.*+deb13*-amd64, bullseye: 5.10.0-*-amd64). The same kernel runs dom0 and guest.
# Modules are taken from /lib/modules or /usr/lib/modules (trixie), compressed (*.ko.xz,
# *.ko.zst) or not; the guest gets rfkill.ko decompressed, for busybox's insmod.
#
# Another Xen: XENSUITE=trixie runs Debian trixie's Xen 4.20 instead of bookworm's 4.17: the
# hypervisor and xen-utils .debs come through the same kind of private apt configuration
# ($LAB_CACHE/apt-trixie), dom0's root filesystem is debootstrapped from trixie (upgraded from
# trixie-security, so that tools == hypervisor) with xen-utils-4.20, and the lab's XENVER and
# /usr/lib/xen-4.17 paths become 4.20. KSUITE then defaults to trixie too, and LAB_CACHE to
# ~/.cache/xenlab/x86-420 (the trixie rootfs never replaces a bookworm one). Without XENSUITE,
# Xen, its tools and dom0's rootfs stay bookworm's. The guest's busybox-static is bookworm's either way.
#
# Guest types: LAB_DOMS as the lab takes it (NAME:VCPUS:MEM:MODE:CRASHCPU:TYPE); TYPE hvm gets
# Xen's device model (qemu-system-xen) in dom0 and its console on the emulated serial port too
# (console/serial-NAME.log), as in Scripts/lab-check.sh (Scripts/lab/guest-types.sh). HVM and PVH
# need QCPU='qemu64,+svm,+npt'; 64-bit HVM guests need 1 vCPU under this emulation (2 triple-fault).
#
# usage: Scripts/lab-tasks.sh [stages]   (default: "deps fetch extract dbg rootfs guest dom0 run collect")
# env:   LAB_CACHE (default ~/.cache/xenlab/x86, with XENSUITE=trixie ~/.cache/xenlab/x86-420),
#        XENLAB (default ../shared/xenlab), KVER (default 6.1.0-56-amd64 from the host's bookworm apt),
#        KSUITE (trixie|bullseye), XENSUITE (trixie), LAB_DOMS, QCPU, LAB_CMD_TIMEOUT, LAB_CRASH_WAIT,
#        KVER32 and KSUITE32 (bullseye) for TYPE pvh32/hvm32 guests (Scripts/lab/guest32.sh)
# e.g.:  KSUITE=trixie LAB_CACHE=~/.cache/xenlab/x86-612 Scripts/lab-tasks.sh
#        XENSUITE=trixie KVER=6.12.118+deb13-amd64 Scripts/lab-tasks.sh
#        XENSUITE=trixie KVER=6.12.118+deb13-amd64 QCPU='qemu64,+svm,+npt' \
#          LAB_DOMS='hvm-crash:1:256:crash:0:hvm' Scripts/lab-tasks.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
case ${XENSUITE:-} in
  '') ;;
  trixie) xenver=4.20; KSUITE=${KSUITE:-trixie}; export LAB_CACHE=${LAB_CACHE:-$HOME/.cache/xenlab/x86-420} ;;
  *) echo "XENSUITE: trixie, not $XENSUITE" >&2; exit 2 ;;
esac
export LAB_CACHE=${LAB_CACHE:-$HOME/.cache/xenlab/x86}
work=$LAB_CACHE/xenctx-swift-tasks
[ -x "$xenlab/x86/build.sh" ] || { echo "no lab at $xenlab/x86" >&2; exit 2; }

rm -rf "$work"; mkdir -p "$work"
cp -r "$xenlab/x86/." "$work/"
chmod -R u+w "$work"
# the guest initramfs gets rfkill.ko from the kernel package the lab extracted
# (from lib/modules or usr/lib/modules; a compressed module is decompressed for busybox's insmod)
cat > "$work/guest-rfkill.snippet" <<'SNIP'
  for m in $(find "$C/extract/lib/modules/$KVER" "$C/extract/usr/lib/modules/$KVER" -name "rfkill.ko*" 2>/dev/null); do
    case $m in *.ko.xz) xz -dc "$m" > "$G/rfkill.ko";; *.ko.zst) zstd -q -dc "$m" > "$G/rfkill.ko";; *) cp "$m" "$G/";; esac
  done
  ls -l "$G"/rfkill.ko*
SNIP
sed -i '/^  install -m 755 "\$HERE\/files\/guest-init.sh" "\$G\/init"$/r '"$work/guest-rfkill.snippet" "$work/build.sh"
# dom0's modules: copy from whichever of lib/modules and usr/lib/modules the package used, and
# prune compressed modules too (dom0's kmod loads .ko.xz)
sed -i 's|^  cp -a "\$E/lib/modules/\$KVER" "\$S/lib/modules/"$|  if [ -d "$E/lib/modules/$KVER" ]; then cp -a "$E/lib/modules/$KVER" "$S/lib/modules/"; else cp -a "$E/usr/lib/modules/$KVER" "$S/lib/modules/"; fi|' "$work/build.sh"
sed -i "s|^  find \"\$S/lib/modules/\$KVER\" -name '\*.ko' |  find \"\$S/lib/modules/\$KVER\" \\\\( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \\\\) |" "$work/build.sh"
# ... and loads it, with a reader asleep in module code, before the known tasks start
sed -i 's|^    sleep 1000 &$|    insmod /rfkill.ko* \&\& echo "LAB-GUEST: insmod rfkill ok"; grep rfkill /proc/modules\n    cat /dev/rfkill \&\n    echo "LAB-GUEST: cat /dev/rfkill pid $!"\n&|' "$work/files/guest-init.sh"
grep -c rfkill "$work/build.sh" "$work/files/guest-init.sh"
grep -c 'usr/lib/modules' "$work/build.sh"
grep -c "ko.zst' " "$work/build.sh"

# sapt SUITE apt-get|apt-cache ARGS...: apt with only SUITE's sources (and SUITE-security's), its own
# lists and cache under $LAB_CACHE/apt-SUITE; the host's apt configuration is not touched.
# sapt_update SUITE writes that sources.list and updates those lists (once per run).
sapt() {
  local suite=$1 c=$2; shift 2
  local d=$LAB_CACHE/apt-$suite
  "$c" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$d/lists" \
    -o Dir::Cache="$d/cache" "$@"
}
sapt_done=" "
sapt_update() {
  local d=$LAB_CACHE/apt-$1
  [[ $sapt_done == *" $1 "* ]] && return 0
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  # amd64 only: a host that also has armhf or arm64 (the ARM lab adds them) must not ask a suite for
  # architectures it may not carry (bullseye-security has no armhf)
  printf '%s\n' "deb [arch=amd64] http://deb.debian.org/debian $1 main" \
    "deb [arch=amd64] http://deb.debian.org/debian-security $1-security main" > "$d/sources.list"
  sapt "$1" apt-get -q update
  sapt_done="$sapt_done$1 "
}
mkdir -p "$LAB_CACHE/debs"
if [ -n "${KSUITE:-}" ]; then
  # a kernel from another Debian suite
  case $KSUITE in
    trixie)   kpat='^linux-image-6\.12\.[0-9]+\+deb13(\.[0-9]+)?-amd64-dbg$' ;;
    bullseye) kpat='^linux-image-5\.10\.0-[0-9]+-amd64-dbg$' ;;
    *) echo "KSUITE: trixie or bullseye, not $KSUITE" >&2; exit 2 ;;
  esac
  sapt_update "$KSUITE"
  if [ -z "${KVER:-}" ]; then
    KVER=$(sapt "$KSUITE" apt-cache search --names-only "$kpat" | awk '{print $1}' \
           | sed 's/^linux-image-//; s/-dbg$//' | sort -V | tail -1)
    [ -n "$KVER" ] || { echo "no kernel matching $kpat in $KSUITE" >&2; exit 1; }
  fi
  ( cd "$LAB_CACHE/debs"
    for p in linux-image-$KVER linux-image-$KVER-dbg; do
      ls ${p}_*.deb >/dev/null 2>&1 || sapt "$KSUITE" apt-get -q download "$p"
    done
    ls -l linux-image-"$KVER"*_*.deb )
fi
if [ -n "${XENSUITE:-}" ]; then
  # Xen from another Debian suite: the hypervisor and tools .debs for the lab's fetch and extract
  # stages (the dom0 rootfs gets its own xen-utils from the suite's archive through debootstrap)
  sapt_update "$XENSUITE"
  ( cd "$LAB_CACHE/debs"
    for p in xen-hypervisor-$xenver-amd64 xen-utils-$xenver; do
      ls ${p}_*.deb >/dev/null 2>&1 || sapt "$XENSUITE" apt-get -q download "$p"
    done
    ls -l xen-*_*.deb )
  sed -i "s|^XENVER=4\.17\$|XENVER=$xenver|" "$work/build.sh"
  sed -i "s|^    bookworm \"\$R\" http://deb.debian.org/debian\$|    $XENSUITE \"\$R\" http://deb.debian.org/debian|" "$work/build.sh"
  sed -i "s#^\(deb http://deb.debian.org/debian\(-security\)\?\) bookworm\(-updates\|-security\)\? main\$#\1 $XENSUITE\3 main#" "$work/build.sh"
  sed -i "s|/usr/lib/xen-4\.17/|/usr/lib/xen-$xenver/|g" "$work/files/scenario.sh"
  grep -qx "XENVER=$xenver" "$work/build.sh" || { echo "lab-tasks: cannot set XENVER in the lab's build.sh" >&2; exit 2; }
  [ "$(grep -c "^    $XENSUITE \"\$R\" \|^deb http://deb.debian.org/debian\(-security\)\? $XENSUITE\(-updates\|-security\)\? main\$" "$work/build.sh")" = 4 ] \
    || { echo "lab-tasks: cannot make the lab's dom0 rootfs $XENSUITE's" >&2; exit 2; }
  ! grep -n 'bookworm\|4\.17' "$work/build.sh" "$work/files/scenario.sh" | grep -v '^[^:]*:[0-9]*: *#' \
    || { echo "lab-tasks: bookworm or 4.17 left in the lab (above)" >&2; exit 2; }
  grep -c "xen-$xenver/" "$work/files/scenario.sh"
fi
export LAB_DOMS=${LAB_DOMS:-"lab-crash:2:256:crash:0:pv"}
# 32-bit guests (TYPE pvh32 or hvm32): Debian's i386 686-pae kernel (KVER32; KSUITE32=bullseye
# for 5.10) and an i386 busybox initramfs with the lab's patched /init, as Scripts/lab-check.sh
if [[ " $LAB_DOMS " == *:pvh32\ * || " $LAB_DOMS " == *:hvm32\ * ]]; then
  bash "$here/Scripts/lab/guest32.sh" "$work" "${KVER32:-}"
  sed -i 's|  install -m 755 "$HERE/files/scenario.sh" "$S/lab/scenario.sh"|&\n  install -m 644 "$HERE"/files/vmlinuz32 "$HERE"/files/guest-initrd32.cpio.gz "$HERE"/files/System.map32 "$S/lab/"|' "$work/build.sh"
  grep -q 'files/vmlinuz32' "$work/build.sh" || { echo "lab-tasks: cannot give dom0 the 32-bit guest" >&2; exit 2; }
fi
# HVM (and PVH) guests as Scripts/lab-check.sh runs them: device model, xl configuration, consoles
if [[ " $LAB_DOMS " == *:hvm* || " $LAB_DOMS " == *:pvh* ]]; then
  . "$here/Scripts/lab/guest-types.sh"
fi
# a cached dom0 rootfs without the device model HVM guests need is built again
if [[ " $LAB_DOMS " == *:hvm* ]] && [ -e "$LAB_CACHE/rootfs-dom0/.done" ] \
   && ! grep -qx 'Package: qemu-system-xen' "$LAB_CACHE/rootfs-dom0/var/lib/dpkg/status"; then
  echo "lab-tasks: the cached dom0 rootfs has no qemu-system-xen: building it again"
  rm -f "$LAB_CACHE/rootfs-dom0/.done"
fi
# the corpus maps are for this kernel; the lab would otherwise take the newest in apt
export KVER=${KVER:-6.1.0-56-amd64}
echo "KVER=$KVER"
stages=${*:-"deps fetch extract dbg rootfs guest dom0 run collect"}
FORCE= bash "$work/build.sh" $stages
echo "results: $LAB_CACHE/results/latest"
