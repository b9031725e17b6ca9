#!/usr/bin/env bash
# Task lab (not part of CI; about 20-40 minutes under QEMU TCG, most of it the first download):
# runs the x86 Xen lab from ../shared/xenlab/x86 with one crashing 64-bit PV guest whose
# initramfs also carries Debian's rfkill module. Before crashing, the guest loads the module,
# starts a reader blocked inside it (`cat /dev/rfkill`, asleep in rfkill_fop_read), the lab's
# known sleeping tasks (sleep, a pipe, FIFO readers, a busy loop on vCPU 1), then dumps every
# task with sysrq-t to its console. That console is the truth for `--tasks` and task stacks.
#
# usage: Scripts/lab-tasks.sh [stages]   (default: "deps fetch extract dbg rootfs guest dom0 run collect")
# env:   LAB_CACHE (default ~/.cache/xenlab/x86), XENLAB (default ../shared/xenlab)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
export LAB_CACHE=${LAB_CACHE:-$HOME/.cache/xenlab/x86}
work=$LAB_CACHE/xenctx-swift-tasks
[ -x "$xenlab/x86/build.sh" ] || { echo "no lab at $xenlab/x86" >&2; exit 2; }

rm -rf "$work"; mkdir -p "$work"
cp -r "$xenlab/x86/." "$work/"
chmod -R u+w "$work"
# the guest initramfs gets rfkill.ko from the kernel package the lab extracted
sed -i 's|^  install -m 755 "$HERE/files/guest-init.sh" "$G/init"|&\n  find "$C/extract/lib/modules" -name "rfkill.ko*" -exec cp {} "$G/" \\;\n  ls -l "$G"/rfkill.ko*|' "$work/build.sh"
# ... and loads it, with a reader asleep in module code, before the known tasks start
sed -i 's|^    sleep 1000 &$|    insmod /rfkill.ko* \&\& echo "LAB-GUEST: insmod rfkill ok"; grep rfkill /proc/modules\n    cat /dev/rfkill \&\n    echo "LAB-GUEST: cat /dev/rfkill pid $!"\n&|' "$work/files/guest-init.sh"
grep -c rfkill "$work/build.sh" "$work/files/guest-init.sh"

# the corpus maps are for this kernel; the lab would otherwise take the newest in apt
export KVER=${KVER:-6.1.0-56-amd64}
export LAB_DOMS=${LAB_DOMS:-"lab-crash:2:256:crash:0:pv"}
stages=${*:-"deps fetch extract dbg rootfs guest dom0 run collect"}
FORCE= bash "$work/build.sh" $stages
echo "results: $LAB_CACHE/results/latest"
