#!/usr/bin/env bash
# Why lab (issue #25 item 8; not part of CI; about 15-25 minutes under QEMU TCG once the packages
# are cached): the task lab of Scripts/lab-tasks.sh (one crashing 64-bit PV guest, 2 vCPUs,
# 256 MiB, Debian's rfkill module with a reader asleep in it, the known sleeping tasks, sysrq-t)
# with, before the crash, the kernel's own reports of why a guest hangs or dies, in this order:
#  1. hung tasks: test_lockup (insmod, asleep in state S) holds /tmp/labdir/labfile's i_rwsem;
#     `sh -c 'echo more >> labfile'` waits for it (D), `rm labfile` takes /tmp/labdir's i_rwsem and
#     waits for labfile's (D), `touch /tmp/labdir/newfile` waits for /tmp/labdir's (D): a chain.
#     kernel.hung_task_timeout_secs=5 until each waiter has its "INFO: task …:PID blocked for more
#     than N seconds." report, then 0 (one report each: kernel.hung_task_warnings=3 stops a second
#     scan's reports, which 6.12 printed 5 s later, before the guest had seen all three);
#  2. a soft lockup: test_lockup_soft spins 8 s in mdelay with preemption off on vCPU 1 (longer
#     under the emulation: its TSC runs slow), kernel.watchdog_thresh=3 (reports after 6 s),
#     kernel.softlockup_panic=0. On 6.12 (KSUITE=trixie) mdelay(8000) took 30-54 s under the
#     emulation (six reports and an RCU stall): the guest first loads test_lockup_soft with
#     time_secs=1 and preemption on (no lockup), reads how long that took from its "Finish on
#     CPU1 in N ns", and spins round(11 s / N) seconds, so that the watchdog reports it once;
#  3. an OOM kill: `tail /dev/zero` (oom_score_adj 1000, vm.overcommit_memory=1) is killed, the
#     guest lives on;
#  4. busybox ps, sysrq-m, sysrq-w, sysrq-t on the console (each after a LAB-GUEST: line), then
#     sysrq-c on vCPU 0; the lab pauses the domain, runs upstream xenctx and `xl dump-core`.
# The guest boots with log_buf_len=1M, so that its printk ring (what `--log` reads from the core)
# still holds the first hung-task report when it panics.
#
# WHY_MUTEX=1 (default 0: the run15/run16 cases were made without it) adds two steps after the OOM
# kill, as Scripts/lab-why-arm.sh does on 6.12 (its header tells the three failed ARM runs behind
# the precautions), with a third build of lib/test_lockup.c, test_lockup_mutex.ko (in the guest
# xz-compressed as test_lockup_mutex.ko.xz, like test_lockup_soft):
#  4. a mutex: test_lockup_mutex (insmod, asleep in S for 600 s) holds cgroup_mutex (its address
#     from /proc/kallsyms, lock_mutex_ptr=), and `mkdir` of a group in a cgroup2 mount on
#     /tmp/labcg waits for it in D (cgroup_mkdir -> cgroup_kn_lock_live -> mutex_lock): a sleeping
#     owner and a waiter on a plain mutex, as against step 1's rw_semaphores; hung_task_timeout_secs
#     is 0 by then, so no hung-task report names them;
#  5. an unreported lockup: test_lockup_soft spins on vCPU 1 with preemption off in 0.5 s pieces
#     (iterations=2000, touch_softlockup=1: it touches the softlockup watchdog between them, and
#     rcu_cpu_stall_suppress=1), so the kernel never reports it; sysrq-c comes on vCPU 0 about a
#     minute into the spin (a sleep of 30 s, ps and the sysrqs), and only the tasks' run times in
#     the core tell that vCPU 1 has run the same task all that time: a lockup inferred, not reported;
# and the guest prints /proc/meminfo (`LABGUEST meminfo: ` lines, the ARM case's prefix) right
# before sysrq-c: the truth for MemTotal, MemFree, MemAvailable etc. at the dump. As on ARM, the
# lab's tasks of steps 4-5 get oom_score_adj -1000, vm.watermark_boost_factor=0 and a rewritten
# min_free_kbytes clear the zone's watermark boost left by step 3's OOM kill, init stays on vCPU 0,
# and step 5 forks little (vCPU 1 holds off RCU's grace periods: what exits free through RCU stays
# allocated). The task lab's busy loop on vCPU 1 is left out: vCPU 1 is the spinner's. First run
# (2026-12-06, QEMU 938 s, case x86-run17-why-mutex-lockup): no OOM kill but step 3's; step 2's
# mdelay(8000) took 69.8 s there (seven soft-lockup reports and one RCU stall; run15: 8.3 s, one
# report), and upstream `xenctx -s MAP -f -C` looped on vCPU 1 (rbp points at itself in delay_tsc)
# until LAB_CMD_TIMEOUT (600 s).
#
# test_lockup: Debian's kernels are built without CONFIG_TEST_LOCKUP, so this script builds the
# kernel's own lib/test_lockup.c, from Debian's linux-source-<major.minor> of the guest kernel's
# version, as an out-of-tree module against Debian's linux-headers-$KVER (gcc-12, as Debian builds
# its kernels), twice: as test_lockup.ko and, the same source under another module name, as
# test_lockup_soft.ko (the first is still in its init, holding the lock, when the second loads;
# two loads of one name would wait for each other). test_lockup's init always fails (EAGAIN, so
# that it never stays loaded), and busybox's insmod, when finit_module fails, tries again with
# init_module: the guest gets test_lockup_soft xz-compressed, so that finit_module refuses the
# file (the kernel logs "Invalid ELF header magic") and the init runs once, from busybox's
# decompressed copy. The modules are unsigned and out of tree:
# loading them taints the kernel (O, E). Header and source packages come through apt from the
# host's sources into $LAB_CACHE/why/; only test_lockup.c is kept of the source package.
#
# Debian 13's 6.12 (KSUITE=trixie): the guest's (and dom0's) kernel, linux-image-$KVER, and the
# headers, kbuild and source packages come from trixie (and trixie-security) through a private apt
# configuration under $LAB_CACHE/apt-trixie, as in Scripts/lab-tasks.sh; the host's apt sources and
# installs stay bookworm's. KVER defaults to 6.12.118+deb13-amd64, the kernel of the corpus's other
# 6.12 cases (its map is in corpus/maps). trixie's linux-kbuild needs glibc 2.38 and its kernels are
# built with gcc-14, neither of which bookworm has: the modules are built in a minimal trixie chroot,
# $LAB_CACHE/why/trixie-root (debootstrap --variant=minbase with gcc-14, make, libc6-dev, binutils,
# pahole and kbuild's libraries, about 500 MB, made once and cached: delete it to make it again),
# into which the headers, common headers and kbuild packages are unpacked with dpkg -x. trixie
# ships modules under /usr/lib/modules as *.ko.xz: dom0's module stage takes them from there and
# prunes compressed modules too (as lab-tasks.sh does; a no-op for 6.1).
#
# System.map: when $LAB_CACHE/debs has no linux-image-$KVER-dbg package and corpus/maps has the
# kernel's map (taken from that -dbg package), the lab uses the corpus map and skips the -dbg
# download (about 900 MB); collect's vmlinux link then points nowhere.
#
# usage: Scripts/lab-why.sh [stages]   (default: "deps fetch extract dbg rootfs guest dom0 run collect")
# env:   LAB_CACHE (default ~/.cache/xenlab/x86), XENLAB (default ../shared/xenlab),
#        KVER (default 6.1.0-56-amd64; a bookworm amd64 kernel in the host's apt; with KSUITE=trixie
#        6.12.118+deb13-amd64), KSUITE (trixie: the guest kernel from Debian 13, see above),
#        LAB_DOMS (default "lab-why:2:256:crash:0:pv"), LAB_CRASH_WAIT (default 1200), QCPU,
#        LAB_CMD_TIMEOUT, WHY_MUTEX (1: steps 4-5 and meminfo above; default 0)
# e.g.:  LAB_CACHE=~/.cache/xenlab/x86-why Scripts/lab-why.sh
#        WHY_MUTEX=1 LAB_CACHE=~/.cache/xenlab/x86-why-mutex Scripts/lab-why.sh
#        KSUITE=trixie LAB_CACHE=~/.cache/xenlab/x86-why612 Scripts/lab-why.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
export LAB_CACHE=${LAB_CACHE:-$HOME/.cache/xenlab/x86}
case ${KSUITE:-} in
  '') export KVER=${KVER:-6.1.0-56-amd64} ;;
  trixie) export KVER=${KVER:-6.12.118+deb13-amd64} ;;
  *) echo "KSUITE: trixie, not $KSUITE" >&2; exit 2 ;;
esac
WHY_MUTEX=${WHY_MUTEX:-0}
case $WHY_MUTEX in 0|1) ;; *) echo "WHY_MUTEX: 0 or 1, not $WHY_MUTEX" >&2; exit 2 ;; esac
# the modules built from lib/test_lockup.c (one source, several module names)
lmods="test_lockup test_lockup_soft"; [ "$WHY_MUTEX" = 0 ] || lmods="$lmods test_lockup_mutex"
work=$LAB_CACHE/xenctx-swift-why
why=$LAB_CACHE/why
[ -x "$xenlab/x86/build.sh" ] || { echo "no lab at $xenlab/x86" >&2; exit 2; }
echo "KVER=$KVER LAB_CACHE=$LAB_CACHE WHY_MUTEX=$WHY_MUTEX"

# sapt SUITE apt-get|apt-cache ARGS...: apt with only SUITE's sources (and SUITE-security's), its own
# lists and cache under $LAB_CACHE/apt-SUITE (as Scripts/lab-tasks.sh); the host's apt is not touched.
sapt() {
  local suite=$1 c=$2; shift 2
  local d=$LAB_CACHE/apt-$suite
  "$c" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$d/lists" \
    -o Dir::Cache="$d/cache" "$@"
}
sapt_update() {
  local d=$LAB_CACHE/apt-$1
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  printf '%s\n' "deb [arch=amd64] http://deb.debian.org/debian $1 main" \
    "deb [arch=amd64] http://deb.debian.org/debian-security $1-security main" > "$d/sources.list"
  sapt "$1" apt-get -q update
}
# kapt apt-get|apt-cache ARGS...: apt for the guest kernel's suite (the host's, or KSUITE's)
kapt() { if [ -n "${KSUITE:-}" ]; then sapt "$KSUITE" "$@"; else "$@"; fi; }

# ---- test_lockup.ko and test_lockup_soft.ko for $KVER (WHY_MUTEX=1: and test_lockup_mutex.ko) ----
need=""
hostpkgs="make gcc-12 binutils xz-utils kmod"; [ -z "${KSUITE:-}" ] || hostpkgs="debootstrap xz-utils kmod"
for p in $hostpkgs; do dpkg -s $p >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then apt-get update -q || true; apt-get -o DPkg::Lock::Timeout=600 install -y $need; fi
mkdir -p "$LAB_CACHE/debs" "$why/debs"
cmap=$here/corpus/maps/$KVER.System.map.xz
if [ -n "${KSUITE:-}" ]; then
  sapt_update "$KSUITE"
  # the kernel package for the lab's fetch stage (which asks the host's apt only for what is not
  # cached); its -dbg package (about 1 GB) only when corpus/maps has no map of this kernel
  ( cd "$LAB_CACHE/debs"
    kp="linux-image-$KVER"; [ -s "$cmap" ] || kp="$kp linux-image-$KVER-dbg"
    for p in $kp; do ls ${p}_*.deb >/dev/null 2>&1 || sapt "$KSUITE" apt-get -q download "$p"; done
    ls -l linux-image-"$KVER"*_*.deb )
fi
# the guest kernel's Debian version: the cached package's, else the one apt would fetch
kdeb=$(ls "$LAB_CACHE"/debs/linux-image-"${KVER}"_*.deb 2>/dev/null | head -1 || true)
if [ -n "$kdeb" ]; then kpkgver=$(dpkg-deb -f "$kdeb" Version)
else kpkgver=$(kapt apt-cache policy "linux-image-$KVER" | awk '$1=="Candidate:"{print $2}'); fi
[ -n "$kpkgver" ] && [ "$kpkgver" != "(none)" ] || { echo "lab-why: no linux-image-$KVER in apt" >&2; exit 1; }
kmm=$(echo "$kpkgver" | cut -d. -f1-2)          # 6.1, 6.12
kabi=${KVER%-*}                                  # 6.1.0-56, 6.12.118+deb13
echo "linux-image-$KVER $kpkgver"
( cd "$why/debs"
  for p in "linux-headers-$KVER=$kpkgver" "linux-headers-$kabi-common=$kpkgver"; do
    ls "${p%%=*}"_"${kpkgver#*:}"_*.deb >/dev/null 2>&1 || kapt apt-get -q download "$p"
  done
  # the kbuild package the headers depend on (bookworm: linux-kbuild-6.1, trixie: linux-kbuild-6.12.118+deb13)
  kbp=$(dpkg-deb -f "$(ls linux-headers-"$KVER"_"${kpkgver#*:}"_*.deb | head -1)" Depends | grep -o 'linux-kbuild-[^ ,]*' | head -1)
  echo "$kbp" > kbuild-package
  ls "$kbp"_*.deb >/dev/null 2>&1 || kapt apt-get -q download "$kbp" )
kbp=$(cat "$why/debs/kbuild-package")
src=$why/test_lockup-$kpkgver.c
if [ ! -s "$src" ]; then
  ( cd "$why/debs"; kapt apt-get -q download "linux-source-$kmm=$kpkgver" )
  sdeb=$(ls "$why"/debs/linux-source-"${kmm}"_*.deb | head -1)
  rm -rf "$why/srcx"; mkdir -p "$why/srcx"
  dpkg-deb --fsys-tarfile "$sdeb" | tar -x -C "$why/srcx" "./usr/src/linux-source-$kmm.tar.xz"
  tar -xJf "$why/srcx/usr/src/linux-source-$kmm.tar.xz" -C "$why/srcx" \
    "linux-source-$kmm/lib/test_lockup.c" "linux-source-$kmm/Makefile"
  head -5 "$why/srcx/linux-source-$kmm/Makefile"
  cp "$why/srcx/linux-source-$kmm/lib/test_lockup.c" "$src"
  rm -rf "$why/srcx" "$sdeb"
fi
hdebs=$(ls "$why"/debs/linux-headers-"$KVER"_"${kpkgver#*:}"_*.deb "$why"/debs/linux-headers-"$kabi"-common_"${kpkgver#*:}"_*.deb \
         "$why"/debs/"$kbp"_*.deb)
if [ -z "${KSUITE:-}" ]; then
  # bookworm: the host's gcc-12 and a copy of the headers
  kb=$why/kbuild-$KVER
  rm -rf "$kb"; mkdir -p "$kb"
  for d in $hdebs; do dpkg -x "$d" "$kb"; done
  hdr=$kb/usr/src/linux-headers-$KVER
  # the flavour's Makefile includes the common one by its installed path: point it at this copy
  sed -i "s|^include /usr/src/|include $kb/usr/src/|" "$hdr/Makefile"
  grep -q "^include $kb/" "$hdr/Makefile" || { echo "lab-why: cannot point $hdr/Makefile at its copy" >&2; exit 2; }
  m=$why/mod-$KVER
  rm -rf "$m"; mkdir -p "$m"
  for k in $lmods; do cp "$src" "$m/$k.c"; done
  echo "obj-m :=$(printf ' %s.o' $lmods)" > "$m/Kbuild"
  make -s -C "$hdr" M="$m" modules
  for k in $lmods; do strip --strip-debug -o "$why/$k.ko" "$m/$k.ko"; done
else
  # trixie: gcc-14 and kbuild in a minimal trixie chroot, the headers unpacked at their own paths
  tr=$why/$KSUITE-root
  if [ ! -e "$tr/.done" ]; then
    rm -rf "$tr"; mkdir -p "$tr"
    debootstrap --variant=minbase \
      --include=gcc-14,make,libc6-dev,binutils,libelf1t64,libssl3t64,zlib1g,pahole,kmod,xz-utils \
      "$KSUITE" "$tr" http://deb.debian.org/debian
    touch "$tr/.done"
  fi
  for d in $hdebs; do dpkg -x "$d" "$tr"; done
  chroot "$tr" dpkg-query -W gcc-14 make binutils | tee "$why/chroot-packages.txt"
  rm -rf "$tr/mod-$KVER"; mkdir -p "$tr/mod-$KVER"
  for k in $lmods; do cp "$src" "$tr/mod-$KVER/$k.c"; done
  echo "obj-m :=$(printf ' %s.o' $lmods)" > "$tr/mod-$KVER/Kbuild"
  chroot "$tr" make -s -C "/usr/src/linux-headers-$KVER" M="/mod-$KVER" modules
  for k in $lmods; do chroot "$tr" strip --strip-debug -o "/mod-$KVER/$k.stripped.ko" "/mod-$KVER/$k.ko"; cp "$tr/mod-$KVER/$k.stripped.ko" "$why/$k.ko"; done
fi
modinfo -F vermagic "$why/test_lockup.ko" | grep -q "^$KVER " || { echo "lab-why: test_lockup.ko is not for $KVER" >&2; exit 1; }
[ "$WHY_MUTEX" = 1 ] || rm -f "$why/test_lockup_mutex.ko"
sha256sum "$src" "$why"/test_lockup*.ko | tee "$why/modules.sha256"

# ---- the lab: a copy of the shared one, patched ----
rm -rf "$work"; mkdir -p "$work"
cp -r "$xenlab/x86/." "$work/"
chmod -R u+w "$work"
cp "$why/test_lockup.ko" "$why/test_lockup_soft.ko" "$why/modules.sha256" "$work/files/"
[ "$WHY_MUTEX" = 0 ] || cp "$why/test_lockup_mutex.ko" "$work/files/"
# the guest initramfs gets rfkill.ko from the kernel package the lab extracted (as lab-tasks.sh)
# and the two test_lockup modules
cat > "$work/guest-why.snippet" <<'SNIP'
  for m in $(find "$C/extract/lib/modules/$KVER" "$C/extract/usr/lib/modules/$KVER" -name "rfkill.ko*" 2>/dev/null); do
    case $m in *.ko.xz) xz -dc "$m" > "$G/rfkill.ko";; *.ko.zst) zstd -q -dc "$m" > "$G/rfkill.ko";; *) cp "$m" "$G/";; esac
  done
  cp "$HERE/files/test_lockup.ko" "$G/"
  xz -c "$HERE/files/test_lockup_soft.ko" > "$G/test_lockup_soft.ko.xz"
  ls -l "$G"/rfkill.ko* "$G"/test_lockup*.ko*
SNIP
sed -i '/^  install -m 755 "\$HERE\/files\/guest-init.sh" "\$G\/init"$/r '"$work/guest-why.snippet" "$work/build.sh"
[ "$(grep -c 'test_lockup_soft.ko' "$work/build.sh")" = 1 ] || { echo "lab-why: cannot give the guest its modules" >&2; exit 2; }
if [ "$WHY_MUTEX" = 1 ]; then
  sed -i 's|^  xz -c "\$HERE/files/test_lockup_soft.ko" > "\$G/test_lockup_soft.ko.xz"$|&\n  xz -c "$HERE/files/test_lockup_mutex.ko" > "$G/test_lockup_mutex.ko.xz"|' "$work/build.sh"
  [ "$(grep -c 'test_lockup_mutex.ko.xz' "$work/build.sh")" = 1 ] || { echo "lab-why: cannot give the guest test_lockup_mutex" >&2; exit 2; }
fi
# dom0's modules (the same kernel): from whichever of lib/modules and usr/lib/modules the package
# used, and prune compressed modules too (as lab-tasks.sh)
sed -i 's|^  cp -a "\$E/lib/modules/\$KVER" "\$S/lib/modules/"$|  if [ -d "$E/lib/modules/$KVER" ]; then cp -a "$E/lib/modules/$KVER" "$S/lib/modules/"; else cp -a "$E/usr/lib/modules/$KVER" "$S/lib/modules/"; fi|' "$work/build.sh"
sed -i "s|^  find \"\$S/lib/modules/\$KVER\" -name '\*.ko' |  find \"\$S/lib/modules/\$KVER\" \\\\( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \\\\) |" "$work/build.sh"
grep -q 'usr/lib/modules/\$KVER" "\$S/lib/modules/"; fi$' "$work/build.sh" && grep -q "ko.zst' " "$work/build.sh" \
  || { echo "lab-why: cannot make dom0's module stage take $KVER's modules" >&2; exit 2; }
# the corpus map instead of the -dbg package, when that package is not cached
if ! ls "$LAB_CACHE"/debs/linux-image-"$KVER"-dbg_*.deb >/dev/null 2>&1 && [ -s "$cmap" ]; then
  B=$LAB_CACHE/dbg/usr/lib/debug/boot
  mkdir -p "$B"
  [ -s "$B/System.map-$KVER" ] || xz -dc "$cmap" > "$B/System.map-$KVER"
  sed -i 's|^  for p in xen-hypervisor-\$XENVER-amd64 xen-utils-\$XENVER linux-image-\$KVER busybox-static linux-image-\$KVER-dbg; do$|  for p in xen-hypervisor-$XENVER-amd64 xen-utils-$XENVER linux-image-$KVER busybox-static; do|' "$work/build.sh"
  grep -q 'linux-image-\$KVER busybox-static; do$' "$work/build.sh" || { echo "lab-why: cannot skip the -dbg download" >&2; exit 2; }
  echo "System.map: $cmap (no -dbg package cached)"
fi
# the guest kernel's log ring: 1 MiB (the default 128 KiB would lose the hung-task reports
# under the OOM report and sysrq-t)
sed -i 's|^cmdline = "console=hvc0 loglevel=7 lab_mode=|cmdline = "console=hvc0 loglevel=7 log_buf_len=1M lab_mode=|' "$work/files/scenario.sh"
grep -q 'log_buf_len=1M lab_mode=' "$work/files/scenario.sh" || { echo "lab-why: cannot set log_buf_len" >&2; exit 2; }

# the guest: rfkill and its reader before the known tasks (as lab-tasks.sh) ...
sed -i 's|^    sleep 1000 &$|    insmod /rfkill.ko* \&\& echo "LAB-GUEST: insmod rfkill ok"; grep rfkill /proc/modules\n    cat /dev/rfkill \&\n    echo "LAB-GUEST: cat /dev/rfkill pid $!"\n&|' "$work/files/guest-init.sh"
# ... the scenario after them, before the busy loop on vCPU 1 ...
cat > "$work/guest-why-steps.snippet" <<'SNIP'
    # ---- why a guest hangs or dies (Scripts/lab-why.sh) ----
    lab_state() { awk '$1=="State:"{print $2}' /proc/$1/status 2>/dev/null; }
    lab_wait_state() { # PID STATE SECONDS
      _n=0
      while [ $_n -lt $3 ]; do [ "$(lab_state $1)" = "$2" ] && return 0; sleep 1; _n=$((_n+1)); done
      echo "LAB-GUEST: why: pid $1 not in state $2 after $3 s (state $(lab_state $1))"; return 1
    }
    lab_wait_log() { # PATTERN SECONDS
      _n=0
      while [ $_n -lt $2 ]; do dmesg | grep -q "$1" && return 0; sleep 1; _n=$((_n+1)); done
      echo "LAB-GUEST: why: no '$1' in the kernel log after $2 s"; return 1
    }
    echo "LAB-GUEST: why 1: hung tasks: test_lockup holds /tmp/labdir/labfile's i_rwsem, writers wait"
    echo 0 > /proc/sys/kernel/hung_task_panic
    echo "LAB-GUEST: why: hung_task_timeout_secs was $(cat /proc/sys/kernel/hung_task_timeout_secs), hung_task_warnings $(cat /proc/sys/kernel/hung_task_warnings)"
    mkdir -p /tmp/labdir
    echo lab > /tmp/labdir/labfile
    insmod /test_lockup.ko file_path=/tmp/labdir/labfile lock_inode=1 state=S time_secs=600 &
    labowner=$!
    lab_wait_log 'test_lockup: lock rw_semaphore' 60
    lab_wait_state $labowner S 30
    sleep 1
    echo "LAB-GUEST: why: owner: insmod test_lockup.ko pid $labowner holds labfile's i_rwsem (write), asleep in state $(lab_state $labowner) for 600 s"
    sh -c 'echo more >> /tmp/labdir/labfile' &
    labw1=$!
    lab_wait_state $labw1 D 30
    echo "LAB-GUEST: why: waiter 1: sh -c 'echo more >> /tmp/labdir/labfile' pid $labw1 waits for labfile's i_rwsem (state $(lab_state $labw1))"
    rm /tmp/labdir/labfile &
    labw2=$!
    lab_wait_state $labw2 D 30
    echo "LAB-GUEST: why: waiter 2: rm /tmp/labdir/labfile pid $labw2 holds /tmp/labdir's i_rwsem, waits for labfile's (state $(lab_state $labw2))"
    touch /tmp/labdir/newfile &
    labw3=$!
    lab_wait_state $labw3 D 30
    echo "LAB-GUEST: why: waiter 3: touch /tmp/labdir/newfile pid $labw3 waits for /tmp/labdir's i_rwsem, held by rm (state $(lab_state $labw3))"
    # at most three reports: the guest may not see all three in its log before the detector's
    # next scan (6.12 under the emulation reported each waiter twice, 5 s apart)
    echo 3 > /proc/sys/kernel/hung_task_warnings
    echo 5 > /proc/sys/kernel/hung_task_timeout_secs
    echo "LAB-GUEST: why: hung_task_warnings=3, hung_task_timeout_secs=5"
    for p in $labw1 $labw2 $labw3; do lab_wait_log ":$p blocked for more than" 120; done
    echo 0 > /proc/sys/kernel/hung_task_timeout_secs
    echo "LAB-GUEST: why: hung_task_timeout_secs=0 after $(dmesg | grep -c 'blocked for more than') hung-task reports"
    labsecs=8
    echo "LAB-GUEST: why 2: soft lockup: test_lockup_soft spins with preemption off"
    echo 0 > /proc/sys/kernel/softlockup_panic
    labcpu=0; [ "$(nproc)" -gt 1 ] && labcpu=1
    labsoftcal=0
    if [ $labsoftcal = 1 ]; then
      # how long mdelay(1000) takes on that vCPU (preemption on: no lockup), from the module's
      # own "Finish on CPU1 in N ns"; then as many seconds as make the spin last about 11 s
      taskset $((1 << labcpu)) insmod /test_lockup_soft.ko.xz time_secs=1
      labns=$(dmesg | sed -n 's/.*test_lockup_soft: Finish on CPU[0-9]* in \([0-9]*\) ns.*/\1/p' | tail -1)
      [ -n "$labns" ] && [ "$labns" -gt 0 ] && labsecs=$(( (11000000000 + labns / 2) / labns ))
      [ "$labsecs" -ge 1 ] || labsecs=1
      echo "LAB-GUEST: why: calibration: mdelay of 1 s took ${labns:-?} ns: time_secs=$labsecs"
    fi
    echo 3 > /proc/sys/kernel/watchdog_thresh
    taskset $((1 << labcpu)) insmod /test_lockup_soft.ko.xz time_secs=$labsecs disable_preempt=1 &
    labsoft=$!
    echo "LAB-GUEST: why: insmod test_lockup_soft.ko.xz time_secs=$labsecs disable_preempt=1 pid $labsoft on cpu $labcpu, watchdog_thresh=3"
    wait $labsoft
    echo "LAB-GUEST: why: insmod test_lockup_soft exited $? (test_lockup always fails its init: EAGAIN)"
    lab_wait_log 'soft lockup - CPU#' 30
    echo 10 > /proc/sys/kernel/watchdog_thresh
    echo "LAB-GUEST: why: watchdog_thresh=10 after $(dmesg | grep -c 'soft lockup - CPU#') soft-lockup reports"
    echo "LAB-GUEST: why 3: OOM: tail /dev/zero with oom_score_adj 1000, vm.overcommit_memory=1"
    echo 1 > /proc/sys/vm/overcommit_memory
    echo 0 > /proc/sys/vm/panic_on_oom
    grep -E '^(MemTotal|MemFree|MemAvailable):' /proc/meminfo
    sh -c 'echo 1000 > /proc/self/oom_score_adj; tail /dev/zero; echo "LAB-GUEST: why: tail /dev/zero ended: status $?"' &
    laboom=$!
    echo "LAB-GUEST: why: sh -c '... tail /dev/zero' pid $laboom"
    wait $laboom
    lab_wait_log 'Out of memory: Killed process' 30
    echo "LAB-GUEST: why: survived the OOM kill: $(dmesg | grep 'Out of memory: Killed process' | head -1)"
    grep -E '^(MemTotal|MemFree|MemAvailable):' /proc/meminfo
    echo "LAB-GUEST: why: pids: owner $labowner waiters $labw1 $labw2 $labw3 soft-lockup $labsoft oom $laboom"
SNIP
sed -i '/^    echo "LAB-GUEST: fifo reader (blocked in read) pid \$!"$/r '"$work/guest-why-steps.snippet" "$work/files/guest-init.sh"
# ... and sysrq-m, sysrq-w, sysrq-t in that order before the crash
sed -i '/^    echo "LAB-GUEST: sysrq-w (blocked tasks)"$/,/^    sleep 2$/d' "$work/files/guest-init.sh"
cat > "$work/guest-why-sysrq.snippet" <<'SNIP'
    echo "LAB-GUEST: sysrq-m (memory report)"
    echo m > /proc/sysrq-trigger
    sleep 2
    echo "LAB-GUEST: sysrq-w (blocked tasks)"
    echo w > /proc/sysrq-trigger
    sleep 2
SNIP
sed -i '/^    ps -o pid,ppid,stat,comm,args 2>\/dev\/null || ps$/r '"$work/guest-why-sysrq.snippet" "$work/files/guest-init.sh"
g=$work/files/guest-init.sh
# 6.12 under the emulation: mdelay(8000) with preemption off took 30-54 s (six soft-lockup
# reports and an RCU stall; 6.1: 8.3 s): calibrate the spin in the guest first
if [ -n "${KSUITE:-}" ]; then
  sed -i 's|^    labsoftcal=0$|    labsoftcal=1|' "$g"
  grep -q '^    labsoftcal=1$' "$g" || { echo "lab-why: cannot calibrate the soft lockup" >&2; exit 2; }
fi
if [ "$WHY_MUTEX" = 1 ]; then
  # steps 4 (a mutex: owner asleep, a waiter in D) and 5 (a lockup that the kernel does not
  # report) after the pids of steps 1-3, as Scripts/lab-why-arm.sh's why612-mutex-lockup.snippet
  cat > "$work/guest-why-mutex-lockup.snippet" <<'SNIP'
    echo "LAB-GUEST: why 4: mutex: test_lockup_mutex holds cgroup_mutex asleep, mkdir in a cgroup2 waits"
    echo "LAB-GUEST: why: hung_task_timeout_secs $(cat /proc/sys/kernel/hung_task_timeout_secs)"
    # After the OOM kill the zone's watermark may stay boosted, and the next allocations can call
    # the OOM killer on the lab's own tasks (ARM, 2026-12-06): rewriting min_free_kbytes
    # recomputes the watermarks (setup_per_zone_wmarks) and clears the boost, and
    # watermark_boost_factor=0 keeps the next unmovable allocation from boosting it again.
    echo 0 > /proc/sys/vm/watermark_boost_factor
    echo "LAB-GUEST: why: before the watermark reset: $(grep -E '^(MemFree|MemAvailable):' /proc/meminfo | tr -s ' \n' ' ')"
    cat /proc/sys/vm/min_free_kbytes > /tmp/labmfk; cat /tmp/labmfk > /proc/sys/vm/min_free_kbytes
    echo "LAB-GUEST: why: min_free_kbytes $(cat /proc/sys/vm/min_free_kbytes) rewritten, watermark_boost_factor $(cat /proc/sys/vm/watermark_boost_factor): watermark boost cleared; zone watermarks (pages): $(grep -E '^ +(min|low|high) ' /proc/zoneinfo | tr -s ' \n' ' ')"
    mkdir -p /tmp/labcg
    mount -t cgroup2 none /tmp/labcg
    labmtx=$(awk '$3=="cgroup_mutex"{print $1}' /proc/kallsyms)
    echo "LAB-GUEST: why: cgroup_mutex at 0x$labmtx (/proc/kallsyms)"
    # the lab's tasks are spared by the OOM killer (oom_score_adj -1000; exec keeps the pid)
    sh -c 'echo -1000 > /proc/self/oom_score_adj; exec insmod /test_lockup_mutex.ko.xz "$@"' sh lock_mutex_ptr=0x$labmtx state=S time_secs=600 &
    labmowner=$!
    lab_wait_log 'test_lockup_mutex: lock mutex' 60
    lab_wait_state $labmowner S 30
    sleep 1
    echo "LAB-GUEST: why: mutex owner: insmod test_lockup_mutex.ko.xz lock_mutex_ptr=0x$labmtx pid $labmowner holds cgroup_mutex, asleep in state $(lab_state $labmowner) for 600 s"
    dmesg | grep 'test_lockup_mutex: lock mutex' | sed 's/^/LAB-GUEST: why: module said: /'
    sh -c 'echo -1000 > /proc/self/oom_score_adj; exec mkdir /tmp/labcg/labgroup' &
    labmw=$!
    lab_wait_state $labmw D 30
    echo "LAB-GUEST: why: mutex waiter: mkdir /tmp/labcg/labgroup pid $labmw waits for cgroup_mutex (cgroup_mkdir, state $(lab_state $labmw))"
    echo "LAB-GUEST: why 5: unreported lockup: test_lockup_soft spins on vCPU 1 with preemption off, touching the watchdog"
    # test_lockup touches the watchdog only between iterations: many short spins (0.5 s each;
    # the report needs 2 x watchdog_thresh = 20 s of one spin)
    labcpu=0; [ "$(nproc)" -gt 1 ] && labcpu=1
    taskset -p 1 $$ >/dev/null
    echo "LAB-GUEST: why: init (pid $$) kept on cpu 0: $(taskset -p $$)"
    # RCU's stall reports off: the module parameter (6.1 and 6.12), else the sysctl
    for labrcu in /sys/module/rcupdate/parameters/rcu_cpu_stall_suppress /proc/sys/kernel/rcu_cpu_stall_suppress; do
      [ -e $labrcu ] && { echo 1 > $labrcu; break; }
    done
    echo "LAB-GUEST: why: watchdog_thresh $(cat /proc/sys/kernel/watchdog_thresh), softlockup_panic $(cat /proc/sys/kernel/softlockup_panic), rcu_cpu_stall_suppress $(cat $labrcu) ($labrcu; sysctl: $(cat /proc/sys/kernel/rcu_cpu_stall_suppress 2>/dev/null || echo none))"
    echo "LAB-GUEST: why: before the spin: soft-lockup reports $(dmesg | grep -c 'soft lockup - CPU#'), rcu stall reports $(dmesg | grep -c 'rcu: INFO')"
    labt0=$(cut -d' ' -f1 /proc/uptime)
    taskset $((1 << labcpu)) sh -c 'echo -1000 > /proc/self/oom_score_adj; exec insmod /test_lockup_soft.ko.xz "$@"' sh time_secs=0 time_nsecs=500000000 iterations=2000 disable_preempt=1 touch_softlockup=1 &
    labspin=$!
    echo "LAB-GUEST: why: insmod test_lockup_soft.ko.xz time_nsecs=500000000 iterations=2000 disable_preempt=1 touch_softlockup=1 pid $labspin on cpu $labcpu, started at uptime $labt0"
    # From here on vCPU 1 holds off RCU's grace periods (preemption off in the kernel, as a real
    # lockup does), so what every fork and exit frees through RCU stays allocated: few forks, one
    # sleep of 30 s before ps, sysrq and the crash.
    sleep 30
    dmesg | grep -A1 "test_lockup_soft: START pid=$labspin " | sed 's/^/LAB-GUEST: why: module said: /'
    echo "LAB-GUEST: why: spin running since uptime $labt0, now $(cut -d' ' -f1 /proc/uptime); pid $labspin state $(lab_state $labspin) on cpu $(cut -d' ' -f39 /proc/$labspin/stat); soft-lockup reports $(dmesg | grep -c 'soft lockup - CPU#'), rcu stall reports $(dmesg | grep -c 'rcu: INFO')"
    echo "LAB-GUEST: why: pids: mutex owner $labmowner mutex waiter $labmw unreported lockup $labspin"
SNIP
  python3 - "$g" "$work/guest-why-mutex-lockup.snippet" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
for old, new in (
    ('    echo "LAB-GUEST: why: pids: owner $labowner waiters $labw1 $labw2 $labw3 soft-lockup $labsoft oom $laboom"\n',
     open(sys.argv[2]).read()),
    # vCPU 1 is the spinner's: no busy loop there
    ("    # keep vcpu1 (if any) busy in user space, then panic on $crashcpu\n    [ \"$(nproc)\" -gt 1 ] && taskset 2 sh -c 'while :; do :; done' &\n",
     '    echo "LAB-GUEST: why: no busy loop on vCPU 1 (WHY_MUTEX=1: insmod $labspin spins there)"\n'),
    # the last look before the crash, and /proc/meminfo
    ('    echo "LAB-GUEST: triggering sysrq-c on cpu $crashcpu"\n',
     '    echo "LAB-GUEST: why: at sysrq-c: uptime $(cut -d\' \' -f1 /proc/uptime); pid $labspin state $(lab_state $labspin) on cpu $(cut -d\' \' -f39 /proc/$labspin/stat); soft-lockup reports $(dmesg | grep -c \'soft lockup - CPU#\'), rcu stall reports $(dmesg | grep -c \'rcu: INFO\')"\n'
     "    sed 's/^/LABGUEST meminfo: /' /proc/meminfo\n")):
    assert s.count(old) == 1, "guest-init.sh changed: patch it by hand: " + old
    s = s.replace(old, new if 'busy' in old else old + new)
open(p, "w").write(s)
PY
fi
nsoft=2; nbusy=2; [ "$WHY_MUTEX" = 0 ] || { nsoft=3; nbusy=1; }
for want in 'insmod /rfkill.ko:1' 'why 1: hung tasks:1' "insmod /test_lockup_soft.ko.xz:$nsoft" 'tail /dev/zero;:1' \
            'sysrq-m (memory report):1' 'echo w > /proc/sysrq-trigger:1' 'echo t > /proc/sysrq-trigger:1' \
            "echo c > /proc/sysrq-trigger:1" "while :; do :; done:$nbusy" "insmod /test_lockup_mutex.ko.xz:$WHY_MUTEX" \
            "LABGUEST meminfo: :$WHY_MUTEX" "why 5: unreported lockup:$WHY_MUTEX"; do
  [ "$(grep -cF "${want%:*}" "$g")" = "${want##*:}" ] || { echo "lab-why: guest-init.sh: '${want%:*}' not ${want##*:} time(s)" >&2; exit 2; }
done
# the order the guest runs them in
grep -nE 'sleep 1000 &|why [12345]:|LAB-GUEST: (ps|sysrq-[mwtc]|triggering)|LABGUEST meminfo|no busy loop' "$g"
sh -n "$g"

export LAB_DOMS=${LAB_DOMS:-"lab-why:2:256:crash:0:pv"}
export LAB_CRASH_WAIT=${LAB_CRASH_WAIT:-1200}
stages=${*:-"deps fetch extract dbg rootfs guest dom0 run collect"}
FORCE= bash "$work/build.sh" $stages
echo "results: $LAB_CACHE/results/latest"
