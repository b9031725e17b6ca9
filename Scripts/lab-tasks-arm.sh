#!/usr/bin/env bash
# ARM task lab (not part of CI; 30-60 minutes under QEMU TCG, most of it the first download
# and the -dbg packages' extraction): runs the arm64 Xen lab of ../shared/xenlab/arm with the
# complete-core writer of ../shared/xenlab/arm-fullcore, its crash guests patched to start
# known sleeping tasks (sleep, a pipe, FIFO readers) and dump every task with sysrq-t to the
# console before they crash: the truth for `--tasks` and task stacks on AArch64 and ARM32.
#
# usage: Scripts/lab-tasks-arm.sh        env: LAB_GUESTS (default "a64-crash a32-crash-smp"),
#        ARM_LAB_CACHE (default ~/.cache/xenlab/arm), XENLAB (default ../shared/xenlab)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
export CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm}
work=$HOME/.cache/xenlab/xenctx-swift-tasks-arm
[ -x "$xenlab/arm/build.sh" ] || { echo "no lab at $xenlab/arm" >&2; exit 2; }
rm -rf "$work"; mkdir -p "$work"
cp -r "$xenlab/arm" "$xenlab/arm-fullcore" "$work/"
chmod -R u+w "$work"
# crash guests: known tasks and a sysrq-t dump before the crash
python3 - "$work/arm/guest-init.sh" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
old = 'crash)\n    sleep "$delay"\n'
assert old in s, "guest-init.sh changed: patch it by hand"
s = s.replace(old, '''crash)
    sleep 1000 &
    echo "LABGUEST task: sleep 1000 pid $!"
    cat /dev/zero | sleep 999 &
    echo "LABGUEST task: cat /dev/zero | sleep 999 pid $!"
    mkfifo /tmp/labfifo
    sh -c 'read labx < /tmp/labfifo' &
    echo "LABGUEST task: fifo reader (blocked in open) pid $!"
    mkfifo /tmp/labfifo2
    sh -c 'exec 3<>/tmp/labfifo2; read laby <&3' &
    echo "LABGUEST task: fifo reader (blocked in read) pid $!"
    sleep 3
    echo "LABGUEST ps:"; ps
    echo "LABGUEST sysrq-t (all task stacks)"
    echo t > /proc/sysrq-trigger
    sleep 3
    sleep "$delay"
''')
open(p, "w").write(s)
PY
grep -c LABGUEST "$work/arm/guest-init.sh"
# apt needs the guests' architectures to download their packages
for a in arm64 armhf; do dpkg --print-foreign-architectures | grep -qx $a || { dpkg --add-architecture $a; apt-get update -q; }; done
# the ARM lab's cached inputs, with this guest init in the guest initramfs
bash "$work/arm/build.sh" deps download extract sysmap initramfs disk
export LAB_GUESTS=${LAB_GUESTS:-"a64-crash a32-crash-smp"}
export CACHE=$HOME/.cache/xenlab/arm-tasks
ARM_LAB_CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm} bash "$work/arm-fullcore/run-fullcore-lab.sh"
echo "results: $CACHE/results/files"
