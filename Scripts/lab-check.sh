#!/usr/bin/env bash
# Lab check (not part of CI; about 20-30 minutes under QEMU TCG): boots the x86 Xen lab
# from ../shared/xenlab/x86 with a self-contained xenctx-swift inside dom0, runs it next
# to upstream xenctx on the same paused PV guests (running and crashed), saves cores
# with --save-core, interrupts it with SIGINT/SIGTERM/SIGHUP while it holds a domain
# paused, hides Xen's libraries, then compares everything (Scripts/lab/compare.py).
#
# usage: Scripts/lab-check.sh [stages]     (default: "deps fetch extract dbg rootfs guest dom0 run collect")
# env:   LAB_CACHE (default ~/.cache/xenlab/x86, shared with the lab itself), XENLAB (default ../shared/xenlab),
#        KVER (default 6.1.0-56-amd64, the corpus maps' kernel), LAB_DOMS and QCPU as the lab takes them;
#        PVH guests: LAB_DOMS='pvh-crash:2:256:crash:0:pvh pvh-live:2:256:live:0:pvh' QCPU='qemu64,+svm,+npt'
#        (Xen needs SVM with nested paging in the emulated CPU; see the lab's REPORT-PVH.md);
#        32-bit guests: TYPE pvh32 or hvm32 (Debian's 686-pae kernel KVER32, default 6.1.0-50-686-pae),
#        e.g. LAB_DOMS='p32-crash:2:128:crash:0:pvh32 p32-live:2:128:live:0:pvh32';
#        HVM guests: TYPE hvm or hvm32 (dom0 gets qemu-system-xen; the same QCPU as PVH)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
export LAB_CACHE=${LAB_CACHE:-$HOME/.cache/xenlab/x86}
work=$LAB_CACHE/xenctx-swift-lab
[ -x "$xenlab/x86/build.sh" ] || { echo "no lab at $xenlab/x86" >&2; exit 2; }

cd "$here"
swift build -c release --static-swift-stdlib --product xenctx-swift
bin=$(swift build -c release --show-bin-path)/xenctx-swift

rm -rf "$work"; mkdir -p "$work"
cp -r "$xenlab/x86/." "$work/"
chmod -R u+w "$work"
cp "$bin" "$work/files/xenctx-swift"
cp Scripts/lab/swift-*.sh "$work/files/"
# dom0 gets the binary and the snippets; the scenario sources them.
sed -i 's|  install -m 755 "$HERE/files/scenario.sh" "$S/lab/scenario.sh"|&\n  install -m 755 "$HERE"/files/xenctx-swift "$HERE"/files/swift-*.sh "$S/lab/"|' "$work/build.sh"
sed -i 's|^  # ---- the core ----|  . /lab/swift-runs.sh\n&|' "$work/files/scenario.sh"
sed -i 's|^    run $D xl-unpause $XL unpause $id|&\n    . /lab/swift-signals.sh|' "$work/files/scenario.sh"
sed -i 's|^ts "scenario end"|. /lab/swift-nolibs.sh\n&|' "$work/files/scenario.sh"
# 32-bit guests (TYPE pvh32 or hvm32 in LAB_DOMS): Debian's i386 686-pae kernel and an i386
# busybox initramfs; the scenario gives them their own kernel, System.map and -k.
if [[ " ${LAB_DOMS:-} " == *:pvh32\ * || " ${LAB_DOMS:-} " == *:hvm32\ * ]]; then
  bash Scripts/lab/guest32.sh "$work" "${KVER32:-6.1.0-50-686-pae}"
  sed -i 's|  install -m 755 "$HERE"/files/xenctx-swift |&"$HERE"/files/vmlinuz32 "$HERE"/files/guest-initrd32.cpio.gz "$HERE"/files/System.map32 |' "$work/build.sh"
fi
# HVM, PVH and 32-bit guests: the device model in dom0, each domain's xl configuration,
# console, System.map and crash wait (shared with Scripts/lab-tasks.sh)
. "$here/Scripts/lab/guest-types.sh"
grep -c "swift-" "$work/files/scenario.sh" "$work/build.sh"

export KVER=${KVER:-6.1.0-56-amd64}
stages=${*:-"deps fetch extract dbg rootfs guest dom0 run collect"}
FORCE= bash "$work/build.sh" $stages
python3 Scripts/lab/compare.py "$LAB_CACHE/results/latest" "$bin"
