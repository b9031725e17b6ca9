#!/usr/bin/env bash
# ARM why lab (issue #25 item 8; not part of CI; about 20-40 minutes under QEMU TCG once the ARM
# lab's packages are cached): Scripts/lab-tasks-arm.sh's AArch64 crash guest (Debian 6.1.0-50-arm64,
# 2 vCPUs, 128 MiB, the known sleeping tasks, sysrq-t, a complete core from the arm-fullcore
# writer) with, before the crash, the kernel's own reports of why a guest hangs or dies, as
# Scripts/lab-why.sh does on x86 (read its header for the details), in this order:
#  1. hung tasks: test_lockup (insmod, asleep in S) holds /tmp/labdir/labfile's i_rwsem; `sh -c
#     'echo more >> labfile'`, `rm labfile` (holding /tmp/labdir's i_rwsem) and `touch
#     /tmp/labdir/newfile` wait in D; kernel.hung_task_timeout_secs=5 until each has one report;
#  2. a soft lockup: test_lockup_soft spins 8 s with preemption off on vCPU 1, watchdog_thresh=3;
#  3. an OOM kill of `tail /dev/zero` (oom_score_adj 1000, vm.overcommit_memory=1);
#  4. busybox ps, sysrq-m, sysrq-w, sysrq-t, then sysrq-c.
# The guest boots with log_buf_len=1M. test_lockup.ko and test_lockup_soft.ko (xz-compressed in
# the guest, so that busybox's insmod runs its init once) are the kernel's own lib/test_lockup.c
# from Debian's linux-source of the guest kernel's version, cross-built with gcc-12 for aarch64
# against Debian's linux-headers-<guest kernel>:arm64 and the build host's linux-kbuild (Debian's
# arm64 kernels lack CONFIG_TEST_LOCKUP too); they taint the guest kernel (O, E).
# Only the AArch64 guest runs (no module is built for armmp-lpae). The ARM lab's build phases
# run in its cache (ARM_LAB_CACHE, as lab-tasks-arm.sh does); the QEMU run and its results go to
# ~/.cache/xenlab/arm-why (CACHE, results/files).
#
# usage: Scripts/lab-why-arm.sh     env: ARM_LAB_CACHE (default ~/.cache/xenlab/arm), XENLAB
#        (default ../shared/xenlab), WHY_CACHE (default ~/.cache/xenlab/arm-why), QEMU_TIMEOUT,
#        PREPARE_ONLY=1 (stop before QEMU)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
export CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm}
whycache=${WHY_CACHE:-$HOME/.cache/xenlab/arm-why}
why=$whycache/why
work=$HOME/.cache/xenlab/xenctx-swift-why-arm
[ -x "$xenlab/arm/build.sh" ] || { echo "no lab at $xenlab/arm" >&2; exit 2; }
kabi=$(sed -n 's/^KABI=//p' "$xenlab/arm/build.sh")
K64=$kabi-arm64
echo "guest kernel $K64"
rm -rf "$work"; mkdir -p "$work"
cp -r "$xenlab/arm" "$xenlab/arm-fullcore" "$work/"
chmod -R u+w "$work"
# apt needs the guests' architectures to download their packages
for a in arm64 armhf; do dpkg --print-foreign-architectures | grep -x $a >/dev/null || { dpkg --add-architecture $a; apt-get update -q; }; done
# the ARM lab's packages and extracted trees (cached phases are skipped)
bash "$work/arm/build.sh" deps download extract sysmap

# ---- test_lockup.ko and test_lockup_soft.ko for $K64 ----
need=""
for p in make gcc-12-aarch64-linux-gnu binutils-aarch64-linux-gnu xz-utils; do dpkg -s $p >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then apt-get update -q || true; apt-get -o DPkg::Lock::Timeout=600 install -y $need; fi
mkdir -p "$why/debs"
kpkgver=$(dpkg-deb -f "$(ls "$CACHE"/debs/linux-image-"$K64"_*_arm64.deb | head -1)" Version)
kmm=$(echo "$kpkgver" | cut -d. -f1-2)
echo "linux-image-$K64 $kpkgver"
( cd "$why/debs"
  for p in "linux-headers-$K64:arm64=$kpkgver" "linux-headers-$kabi-common=$kpkgver" "linux-kbuild-$kmm:amd64=$kpkgver"; do
    n=${p%%=*}; ls "${n%%:*}"_*.deb >/dev/null 2>&1 || apt-get -q download "$p"
  done )
src=$why/test_lockup-$kpkgver.c
if [ ! -s "$src" ]; then
  ( cd "$why/debs"; apt-get -q download "linux-source-$kmm=$kpkgver" )
  sdeb=$(ls "$why"/debs/linux-source-"${kmm}"_*.deb | head -1)
  rm -rf "$why/srcx"; mkdir -p "$why/srcx"
  dpkg-deb --fsys-tarfile "$sdeb" | tar -x -C "$why/srcx" "./usr/src/linux-source-$kmm.tar.xz"
  tar -xJf "$why/srcx/usr/src/linux-source-$kmm.tar.xz" -C "$why/srcx" \
    "linux-source-$kmm/lib/test_lockup.c" "linux-source-$kmm/Makefile"
  head -5 "$why/srcx/linux-source-$kmm/Makefile"
  cp "$why/srcx/linux-source-$kmm/lib/test_lockup.c" "$src"
  rm -rf "$why/srcx" "$sdeb"
fi
kb=$why/kbuild-$K64
rm -rf "$kb"; mkdir -p "$kb"
for d in "$why"/debs/linux-headers-"$K64"_*_arm64.deb "$why"/debs/linux-headers-"$kabi"-common_*.deb \
         "$why"/debs/linux-kbuild-"$kmm"_*_amd64.deb; do
  dpkg -x "$d" "$kb"
done
hdr=$kb/usr/src/linux-headers-$K64
sed -i "s|^include /usr/src/|include $kb/usr/src/|" "$hdr/Makefile"
grep -q "^include $kb/" "$hdr/Makefile" || { echo "lab-why-arm: cannot point $hdr/Makefile at its copy" >&2; exit 2; }
m=$why/mod-$K64
rm -rf "$m"; mkdir -p "$m"
cp "$src" "$m/test_lockup.c"; cp "$src" "$m/test_lockup_soft.c"
echo 'obj-m := test_lockup.o test_lockup_soft.o' > "$m/Kbuild"
make -s -C "$hdr" M="$m" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- modules
for k in test_lockup test_lockup_soft; do aarch64-linux-gnu-strip --strip-debug -o "$why/$k.ko" "$m/$k.ko"; done
modinfo -F vermagic "$why/test_lockup.ko" | grep -q "^$K64 " || { echo "lab-why-arm: test_lockup.ko is not for $K64" >&2; exit 1; }
file "$why/test_lockup.ko"
sha256sum "$src" "$why"/test_lockup*.ko | tee "$why/modules.sha256"
cp "$why/test_lockup.ko" "$why/test_lockup_soft.ko" "$why/modules.sha256" "$work/arm/"

# ---- the guest: modules in the arm64 initramfs, a 1 MiB log ring, the scenario ----
sed -i 's|^        install -m 0755 "\$LAB/guest-init.sh" "\$G/init"$|&\n        [ "${a%%:*}" != arm64 ] \|\| { cp "$LAB/test_lockup.ko" "$G/"; xz -c "$LAB/test_lockup_soft.ko" > "$G/test_lockup_soft.ko.xz"; }|' "$work/arm/build.sh"
grep -q 'test_lockup_soft.ko.xz' "$work/arm/build.sh" || { echo "lab-why-arm: cannot give the guest its modules" >&2; exit 2; }
sed -i 's|^extra = "console=hvc0 rdinit=/init nokaslr loglevel=7 lab_mode=\$4"$|extra = "console=hvc0 rdinit=/init nokaslr loglevel=7 log_buf_len=1M lab_mode=$4"|' "$work/arm/build.sh"
grep -q 'log_buf_len=1M lab_mode=' "$work/arm/build.sh" || { echo "lab-why-arm: cannot set log_buf_len" >&2; exit 2; }
# the dom0 scenario waits for the panic longer: the guest's steps take minutes under TCG
sed -i 's|"end Kernel panic" 120 |"end Kernel panic" 900 |' "$work/arm/scenario.sh"
grep -q '"end Kernel panic" 900' "$work/arm/scenario.sh" || { echo "lab-why-arm: cannot lengthen the scenario's wait" >&2; exit 2; }
cat > "$work/why-steps.snippet" <<'SNIP'
crash)
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
    # ---- why a guest hangs or dies (Scripts/lab-why-arm.sh) ----
    lab_state() { awk '$1=="State:"{print $2}' /proc/$1/status 2>/dev/null; }
    lab_wait_state() { # PID STATE SECONDS
      _n=0
      while [ $_n -lt $3 ]; do [ "$(lab_state $1)" = "$2" ] && return 0; sleep 1; _n=$((_n+1)); done
      echo "LABGUEST why: pid $1 not in state $2 after $3 s (state $(lab_state $1))"; return 1
    }
    lab_wait_log() { # PATTERN SECONDS
      _n=0
      while [ $_n -lt $2 ]; do dmesg | grep -q "$1" && return 0; sleep 1; _n=$((_n+1)); done
      echo "LABGUEST why: no '$1' in the kernel log after $2 s"; return 1
    }
    echo "LABGUEST why 1: hung tasks: test_lockup holds /tmp/labdir/labfile's i_rwsem, writers wait"
    echo 0 > /proc/sys/kernel/hung_task_panic
    echo "LABGUEST why: hung_task_timeout_secs was $(cat /proc/sys/kernel/hung_task_timeout_secs), hung_task_warnings $(cat /proc/sys/kernel/hung_task_warnings)"
    mkdir -p /tmp/labdir
    echo lab > /tmp/labdir/labfile
    insmod /test_lockup.ko file_path=/tmp/labdir/labfile lock_inode=1 state=S time_secs=600 &
    labowner=$!
    lab_wait_log 'test_lockup: lock rw_semaphore' 60
    lab_wait_state $labowner S 30
    sleep 1
    echo "LABGUEST why: owner: insmod test_lockup.ko pid $labowner holds labfile's i_rwsem (write), asleep in state $(lab_state $labowner) for 600 s"
    sh -c 'echo more >> /tmp/labdir/labfile' &
    labw1=$!
    lab_wait_state $labw1 D 30
    echo "LABGUEST why: waiter 1: sh -c 'echo more >> /tmp/labdir/labfile' pid $labw1 waits for labfile's i_rwsem (state $(lab_state $labw1))"
    rm /tmp/labdir/labfile &
    labw2=$!
    lab_wait_state $labw2 D 30
    echo "LABGUEST why: waiter 2: rm /tmp/labdir/labfile pid $labw2 holds /tmp/labdir's i_rwsem, waits for labfile's (state $(lab_state $labw2))"
    touch /tmp/labdir/newfile &
    labw3=$!
    lab_wait_state $labw3 D 30
    echo "LABGUEST why: waiter 3: touch /tmp/labdir/newfile pid $labw3 waits for /tmp/labdir's i_rwsem, held by rm (state $(lab_state $labw3))"
    echo 5 > /proc/sys/kernel/hung_task_timeout_secs
    echo "LABGUEST why: hung_task_timeout_secs=5"
    for p in $labw1 $labw2 $labw3; do lab_wait_log ":$p blocked for more than" 120; done
    echo 0 > /proc/sys/kernel/hung_task_timeout_secs
    echo "LABGUEST why: hung_task_timeout_secs=0 after $(dmesg | grep -c 'blocked for more than') hung-task reports"
    echo "LABGUEST why 2: soft lockup: test_lockup_soft spins 8 s with preemption off"
    echo 0 > /proc/sys/kernel/softlockup_panic
    echo 3 > /proc/sys/kernel/watchdog_thresh
    labcpu=0; [ "$(nproc)" -gt 1 ] && labcpu=1
    taskset $((1 << labcpu)) insmod /test_lockup_soft.ko.xz time_secs=8 disable_preempt=1 &
    labsoft=$!
    echo "LABGUEST why: insmod test_lockup_soft.ko.xz time_secs=8 disable_preempt=1 pid $labsoft on cpu $labcpu, watchdog_thresh=3"
    wait $labsoft
    echo "LABGUEST why: insmod test_lockup_soft exited $? (test_lockup always fails its init: EAGAIN)"
    lab_wait_log 'soft lockup - CPU#' 30
    echo 10 > /proc/sys/kernel/watchdog_thresh
    echo "LABGUEST why: watchdog_thresh=10 after $(dmesg | grep -c 'soft lockup - CPU#') soft-lockup reports"
    echo "LABGUEST why 3: OOM: tail /dev/zero with oom_score_adj 1000, vm.overcommit_memory=1"
    echo 1 > /proc/sys/vm/overcommit_memory
    echo 0 > /proc/sys/vm/panic_on_oom
    grep -E '^(MemTotal|MemFree|MemAvailable):' /proc/meminfo
    sh -c 'echo 1000 > /proc/self/oom_score_adj; tail /dev/zero; echo "LABGUEST why: tail /dev/zero ended: status $?"' &
    laboom=$!
    echo "LABGUEST why: sh -c '... tail /dev/zero' pid $laboom"
    wait $laboom
    lab_wait_log 'Out of memory: Killed process' 30
    echo "LABGUEST why: survived the OOM kill: $(dmesg | grep 'Out of memory: Killed process' | head -1)"
    grep -E '^(MemTotal|MemFree|MemAvailable):' /proc/meminfo
    echo "LABGUEST why: pids: owner $labowner waiters $labw1 $labw2 $labw3 soft-lockup $labsoft oom $laboom"
    sleep 3
    echo "LABGUEST ps:"; ps
    echo "LABGUEST sysrq-m (memory report)"
    echo m > /proc/sysrq-trigger
    sleep 3
    echo "LABGUEST sysrq-w (blocked tasks)"
    echo w > /proc/sysrq-trigger
    sleep 3
    echo "LABGUEST sysrq-t (all task stacks)"
    echo t > /proc/sysrq-trigger
    sleep 3
    sleep "$delay"
SNIP
python3 - "$work/arm/guest-init.sh" "$work/why-steps.snippet" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
old = 'crash)\n    sleep "$delay"\n'
assert s.count(old) == 1, "guest-init.sh changed: patch it by hand"
s = s.replace(old, open(sys.argv[2]).read())
open(p, "w").write(s)
PY
g=$work/arm/guest-init.sh
grep -nE 'why [123]:|LABGUEST (ps|sysrq-[mwt]|crashing)' "$g"
sh -n "$g"

# the ARM lab's inputs (initramfs with the modules, lab disk), then QEMU with the complete-core writer
bash "$work/arm/build.sh" initramfs disk
export LAB_GUESTS=${LAB_GUESTS:-"a64-crash"}
export CACHE=$whycache
[ -z "${PREPARE_ONLY:-}" ] || { echo "prepared; not starting QEMU"; exit 0; }
ARM_LAB_CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm} bash "$work/arm-fullcore/run-fullcore-lab.sh"
echo "results: $CACHE/results/files"
