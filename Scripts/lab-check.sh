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
# HVM guests (TYPE hvm or hvm32) need Xen's device model, QEMU built for Xen, in dom0.
if [[ " ${LAB_DOMS:-} " == *:hvm* ]]; then
  sed -i 's|,procps,file \\$|,procps,file,qemu-system-xen \\|' "$work/build.sh"
  grep -q 'file,qemu-system-xen' "$work/build.sh" || { echo "lab-check: the lab's build.sh changed; cannot add qemu-system-xen" >&2; exit 2; }
fi
# 32-bit guests (TYPE pvh32 or hvm32 in LAB_DOMS): Debian's i386 686-pae kernel and an i386
# busybox initramfs; the scenario gives them their own kernel, System.map and -k.
if [[ " ${LAB_DOMS:-} " == *:pvh32\ * || " ${LAB_DOMS:-} " == *:hvm32\ * ]]; then
  bash Scripts/lab/guest32.sh "$work" "${KVER32:-6.1.0-50-686-pae}"
  sed -i 's|  install -m 755 "$HERE"/files/xenctx-swift |&"$HERE"/files/vmlinuz32 "$HERE"/files/guest-initrd32.cpio.gz "$HERE"/files/System.map32 |' "$work/build.sh"
fi
# Per domain: the xl type, kernel and ramdisk (pvh32 = a pvh domain with the 32-bit kernel),
# and the System.map, -k and addresses upstream's options use (kept beside its outputs).
# HVM guests: no emulated display; the kernel's console on the emulated serial port too (its
# early boot, before the PV console hvc0 is up), written by the device model to a file.
sed -i 's|^  cat > /lab/$name.cfg <<EOT|  xltype=$gtype kern=/lab/vmlinuz rd=/lab/guest-initrd.cpio.gz con=console=hvc0 hvmlines=\n  case $gtype in *32) xltype=${gtype%32}; kern=/lab/vmlinuz32; rd=/lab/guest-initrd32.cpio.gz;; esac\n  case $gtype in hvm*) con="console=ttyS0,115200 console=hvc0"; hvmlines=$(printf '"'"'vga = "none"\\nvnc = 0\\nserial = "file:%s/console/serial-%s.log"'"'"' $OUT $name);; esac\n&|; s|^type = "$gtype"$|type = "$xltype"\n$hvmlines|; s|^kernel = "/lab/vmlinuz"$|kernel = "$kern"|; s|^ramdisk = "/lab/guest-initrd.cpio.gz"$|ramdisk = "$rd"|; s|^cmdline = "console=hvc0 |cmdline = "$con |' "$work/files/scenario.sh"
sed -i 's|^  echo $gtype > $D/type.txt$|&\n  case $gtype in *32) MAP=/lab/System.map32 kstart=0xc1000000;; *) MAP=/lab/System.map kstart=0xffff800000000000;; esac\n  banner=0x$(awk '"'"'$3=="linux_banner"{print $1}'"'"' $MAP); inittask=0x$(awk '"'"'$3=="init_task"{print $1}'"'"' $MAP)\n  cp $MAP $D/System.map|' "$work/files/scenario.sh"
for want in 'type = "$xltype"' '$hvmlines' 'cmdline = "$con ' 'kernel = "$kern"' 'ramdisk = "$rd"' 'cp $MAP $D/System.map' 'kern=/lab/vmlinuz32'; do
  grep -qF "$want" "$work/files/scenario.sh" || { echo "lab-check: the lab's scenario.sh changed; cannot add: $want" >&2; exit 2; }
done
# The 686 (non-PAE) kernel (KVER32=6.1.0-50-686) has no Xen support at all (Linux's Xen code
# needs PAE): as an HVM guest it is a plain PC kernel whose only console is the serial port.
case ${KVER32:-6.1.0-50-686-pae} in *-pae) ;; *)
  sed -i 's|^  case $gtype in hvm\*) con=.*|&\n  case $gtype in hvm32) con="console=ttyS0,115200";; esac|' "$work/files/scenario.sh"
  grep -q 'hvm32) con="console=ttyS0,115200"' "$work/files/scenario.sh" || { echo "lab-check: cannot set the 686 kernel's console" >&2; exit 2; } ;;
esac
# A guest kernel with no Xen support (686) panics without telling Xen: the domain never shows
# state c. Its serial console says it, and the crash wait counts that too.
sed -i 's|^  \[ "${n:-0}" -ge "${want:-0}" \] 2>/dev/null \&\& break$|  p=$(for c in $crashnames; do grep -qs "end Kernel panic" $OUT/console/serial-$c.log \&\& echo $c; done \| wc -l); [ "$p" -gt "${n:-0}" ] \&\& n=$p\n&|' "$work/files/scenario.sh"
grep -q 'end Kernel panic' "$work/files/scenario.sh" || { echo "lab-check: cannot add the console crash check" >&2; exit 2; }
grep -c "swift-" "$work/files/scenario.sh" "$work/build.sh"

export KVER=${KVER:-6.1.0-56-amd64}
stages=${*:-"deps fetch extract dbg rootfs guest dom0 run collect"}
FORCE= bash "$work/build.sh" $stages
python3 Scripts/lab/compare.py "$LAB_CACHE/results/latest" "$bin"
