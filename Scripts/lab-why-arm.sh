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
# Debian 13's 6.12 (KSUITE=trixie): the guest's kernel, linux-image-$KBASE-arm64, comes from trixie
# (and trixie-security) through a private apt configuration under $KCACHE/apt, as in
# Scripts/lab-tasks-arm.sh (the host's apt sources are not touched); KBASE defaults to the newest
# 6.12.*+deb13* with an arm64 -dbg package. Xen 4.17, dom0 (6.1.0-50-arm64), its tools and the
# guest's busybox stay bookworm's; the kernel and its map are laid over the lab disk's inputs. The
# map is corpus/maps' (taken from the -dbg package) when corpus/maps has it and $KCACHE/debs has no
# -dbg package, else the -dbg package's (downloaded, about 1 GB). The modules are built from
# trixie's linux-source-6.12 against linux-headers-$GK64 (arm64), its -common headers and the
# linux-kbuild they depend on, all of the kernel's Debian version. trixie's kbuild needs glibc 2.38,
# which bookworm lacks, so they are built in a minimal trixie chroot, $WHY_CACHE/why/trixie-root
# (debootstrap --variant=minbase with make and gcc-14-aarch64-linux-gnu, the cross compiler that
# the headers' .kernelvariables name and Debian built the kernel with; made once and cached: delete
# it to make it again), into which the header and kbuild packages are unpacked with dpkg -x.
# Two guest changes on 6.12, as Scripts/lab-why.sh makes on x86: kernel.hung_task_warnings=3 (one
# report per waiter), and the spin is timed first and then lasts round(11 s / that), so that the
# watchdog reports it once. The timing spin has preemption off too (time_secs=1, while
# watchdog_thresh is still 10: no report): on arm64 under the emulation a preemptible mdelay(1000)
# took 12.6 s, a non-preemptible one 3.5 s (first run, 2026-12-06: time_secs=1, no report).
# Two more steps on 6.12 only (the 6.1 case was made without them), after the OOM kill and before
# ps and the sysrqs, with a third build of lib/test_lockup.c, test_lockup_mutex.ko (in the guest
# xz-compressed as test_lockup_mutex.ko.xz, like test_lockup_soft):
#  4. a mutex: test_lockup_mutex (insmod, asleep in S for 600 s) holds cgroup_mutex (its address
#     from /proc/kallsyms, lock_mutex_ptr=), and `mkdir` of a group in a cgroup2 mount waits for it
#     in D (cgroup_mkdir -> cgroup_kn_lock_live -> mutex_lock): a sleeping owner and a waiter on a
#     plain mutex, as against step 1's rw_semaphore; hung_task_timeout_secs is 0 by then, so no
#     hung-task report names them;
#  5. an unreported lockup: test_lockup_soft spins on vCPU 1 with preemption off in 0.5 s pieces
#     (iterations=2000, touch_softlockup=1: it touches the softlockup watchdog between them, and
#     rcu_cpu_stall_suppress=1), so the kernel never reports it; sysrq-c comes about a minute into
#     the spin (a sleep of 30 s, ps and the sysrqs), and only the tasks' run times in the core tell
#     that vCPU 1 has run the same task all that time: a lockup inferred, not reported;
# and the guest prints /proc/meminfo (`LABGUEST meminfo: ` lines) right before sysrq-c: the truth
# for MemTotal, MemFree, MemAvailable etc. at the dump. Three failed runs (2026-12-06) led to the
# design: in the first the OOM killer killed the mutex owner's insmod (after step 3's OOM kill the
# zone's watermark stays boosted) and the spinning one; in the second (min_free_kbytes rewritten,
# which clears the boost) both insmods were OOM-killed during the spin (vCPU 1 holds off RCU's
# grace periods, and the guest polled once a second); in the third (the lab's tasks at
# oom_score_adj -1000) the owner lived but the OOM killer took step 1's insmod. So the lab's tasks
# get oom_score_adj -1000, watermark_boost_factor=0 keeps the boost cleared, init stays on vCPU 0,
# and step 5 forks little (one sleep of 30 s before ps, sysrq and the crash).
# Results go to ~/.cache/xenlab/arm-why-trixie (results/files).
#
# usage: Scripts/lab-why-arm.sh     env: ARM_LAB_CACHE (default ~/.cache/xenlab/arm), XENLAB
#        (default ../shared/xenlab), WHY_CACHE (default ~/.cache/xenlab/arm-why, with KSUITE
#        ~/.cache/xenlab/arm-why-$KSUITE), QEMU_TIMEOUT, PREPARE_ONLY=1 (stop before QEMU),
#        KSUITE (trixie), KBASE, GK64 (default $KBASE-arm64), KCACHE (default
#        ~/.cache/xenlab/arm-$KSUITE, shared with lab-tasks-arm.sh)
# e.g.:  KSUITE=trixie Scripts/lab-why-arm.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
export CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm}
case ${KSUITE:-} in
  '') ;;
  trixie) kre='6\.12\.[0-9]+\+deb13(\.[0-9]+)?' ;;
  *) echo "KSUITE: trixie, not $KSUITE" >&2; exit 2 ;;
esac
whycache=${WHY_CACHE:-$HOME/.cache/xenlab/arm-why${KSUITE:+-$KSUITE}}
why=$whycache/why
work=$HOME/.cache/xenlab/xenctx-swift-why-arm
[ -x "$xenlab/arm/build.sh" ] || { echo "no lab at $xenlab/arm" >&2; exit 2; }
kabi=$(sed -n 's/^KABI=//p' "$xenlab/arm/build.sh")
K64=$kabi-arm64
if [ -n "${KSUITE:-}" ]; then
  # the guest kernel from another Debian suite, through a private apt configuration (as
  # lab-tasks-arm.sh; amd64 too, for the kbuild package that the headers depend on)
  kc=${KCACHE:-$HOME/.cache/xenlab/arm-$KSUITE}
  mkdir -p "$kc/apt/lists/partial" "$kc/apt/cache/archives/partial" "$kc/debs"
  printf '%s\n' "deb [arch=arm64,armhf,amd64] http://deb.debian.org/debian $KSUITE main" \
    "deb [arch=arm64,armhf,amd64] http://deb.debian.org/debian-security $KSUITE-security main" > "$kc/apt/sources.list"
  kapt() { # kapt apt-get|apt-cache ARGS...: apt with only $KSUITE's sources and its own lists/cache
    local c=$1; shift
    "$c" -o Dir::Etc::SourceList="$kc/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
      -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$kc/apt/lists" \
      -o Dir::Cache="$kc/apt/cache" -o APT::Architectures::=arm64 -o APT::Architectures::=armhf \
      -o APT::Architectures::=amd64 "$@"
  }
  kapt apt-get -q update
  if [ -z "${KBASE:-}" ]; then
    KBASE=$(kapt apt-cache search --names-only "^linux-image-$kre-arm64-dbg\$" | awk '{print $1}' \
            | sed 's/^linux-image-//; s/-arm64-dbg$//' | sort -V | tail -1)
    [ -n "$KBASE" ] || { echo "no arm64 -dbg kernel in $KSUITE" >&2; exit 1; }
  fi
  GK64=${GK64:-$KBASE-arm64}
  echo "guest kernel $GK64 (from $KSUITE; dom0 stays $K64)"
else
  echo "guest kernel $K64"
fi
rm -rf "$work"; mkdir -p "$work"
cp -r "$xenlab/arm" "$xenlab/arm-fullcore" "$work/"
chmod -R u+w "$work"
# apt needs the guests' architectures to download their packages
for a in arm64 armhf; do dpkg --print-foreign-architectures | grep -x $a >/dev/null || { dpkg --add-architecture $a; apt-get update -q; }; done
# the ARM lab's packages and extracted trees (cached phases are skipped)
bash "$work/arm/build.sh" deps download extract sysmap

# ---- test_lockup.ko and test_lockup_soft.ko for $K64 (KSUITE: $GK64, and test_lockup_mutex.ko) ----
need=""
hostpkgs="make gcc-12-aarch64-linux-gnu binutils-aarch64-linux-gnu xz-utils"; [ -z "${KSUITE:-}" ] || hostpkgs="debootstrap xz-utils kmod"
# ipxe-qemu: QEMU's virt machine loads efi-virtio.rom for its default NIC (the lab installs
# qemu-system-arm without recommends; without it QEMU stops at once)
for p in $hostpkgs ipxe-qemu; do dpkg -s $p >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then apt-get update -q || true; apt-get -o DPkg::Lock::Timeout=600 install -y $need; fi
mkdir -p "$why/debs"
if [ -z "${KSUITE:-}" ]; then
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
else
# KSUITE: the kernel, its map, the headers, kbuild and source from $KSUITE; a $KSUITE chroot builds
kin=$why/in; rm -rf "$kin" "$why/maps"; mkdir -p "$kin" "$why/maps"
cmap=$here/corpus/maps/$GK64.System.map.xz
( cd "$kc/debs"
  kp="linux-image-$GK64"
  ls linux-image-"$GK64"-dbg_*_arm64.deb >/dev/null 2>&1 || [ -s "$cmap" ] || kp="$kp linux-image-$GK64-dbg"
  for p in $kp; do ls ${p}_*_arm64.deb >/dev/null 2>&1 || kapt apt-get -q download "$p:arm64"; done )
kdeb=$(ls "$kc"/debs/linux-image-"$GK64"_*_arm64.deb | head -1)
kpkgver=$(dpkg-deb -f "$kdeb" Version)
kmm=$(echo "$kpkgver" | cut -d. -f1-2)
echo "linux-image-$GK64 $kpkgver"
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -O "./boot/vmlinuz-$GK64" > "$kin/Image-arm64"
file "$kin/Image-arm64"
dbg=$(ls "$kc"/debs/linux-image-"$GK64"-dbg_*_arm64.deb 2>/dev/null | head -1 || true)
if [ -n "$dbg" ]; then
  d=$kc/dbg/usr/lib/debug/boot
  if [ ! -f "$kc/dbg/.done-$GK64" ]; then
    echo "extracting System.map/vmlinux-$GK64 from its -dbg package (slow)"
    mkdir -p "$kc/dbg"
    dpkg-deb --fsys-tarfile "$dbg" | tar -x -C "$kc/dbg" "./usr/lib/debug/boot/vmlinux-$GK64" "./usr/lib/debug/boot/System.map-$GK64"
    touch "$kc/dbg/.done-$GK64"
  fi
  cp "$d/System.map-$GK64" "$why/maps/System.map-$GK64"
  echo "System.map: $dbg"
else
  xz -dc "$cmap" > "$why/maps/System.map-$GK64"
  echo "System.map: $cmap (no -dbg package cached)"
fi
cp "$why/maps/System.map-$GK64" "$kin/System.map-arm64"
printf '%s\n' "KSUITE=$KSUITE" "GK64=$GK64" "linux-image-$GK64=$kpkgver" > "$kin/guest-kernels.txt"
( cd "$why/debs"
  for p in "linux-headers-$GK64:arm64" "linux-headers-$KBASE-common:all"; do
    n=${p%%:*}; ls "${n}_${kpkgver}"_*.deb >/dev/null 2>&1 || kapt apt-get -q download "$p=$kpkgver"
  done
  # the kbuild package that the headers depend on (linux-kbuild-6.12.118+deb13), for the build host
  kbp=$(dpkg-deb -f "$(ls linux-headers-"$GK64"_"$kpkgver"_arm64.deb)" Depends | grep -o 'linux-kbuild-[^ ,]*' | head -1)
  echo "$kbp" > kbuild-package
  ls "${kbp}_${kpkgver}"_amd64.deb >/dev/null 2>&1 || kapt apt-get -q download "$kbp:amd64=$kpkgver" )
kbp=$(cat "$why/debs/kbuild-package")
src=$why/test_lockup-$kpkgver.c
if [ ! -s "$src" ]; then
  ( cd "$why/debs"; kapt apt-get -q download "linux-source-$kmm:all=$kpkgver" )
  sdeb=$(ls "$why"/debs/linux-source-"${kmm}"_*.deb | head -1)
  rm -rf "$why/srcx"; mkdir -p "$why/srcx"
  dpkg-deb --fsys-tarfile "$sdeb" | tar -x -C "$why/srcx" "./usr/src/linux-source-$kmm.tar.xz"
  tar -xJf "$why/srcx/usr/src/linux-source-$kmm.tar.xz" -C "$why/srcx" \
    "linux-source-$kmm/lib/test_lockup.c" "linux-source-$kmm/Makefile"
  head -5 "$why/srcx/linux-source-$kmm/Makefile"
  cp "$why/srcx/linux-source-$kmm/lib/test_lockup.c" "$src"
  rm -rf "$why/srcx" "$sdeb"
fi
tr=$why/$KSUITE-root
if [ ! -e "$tr/.done" ]; then
  rm -rf "$tr"; mkdir -p "$tr"
  debootstrap --variant=minbase \
    --include=gcc-14-aarch64-linux-gnu,binutils-aarch64-linux-gnu,make,libelf1t64,libssl3t64,zlib1g,pahole,kmod,xz-utils \
    "$KSUITE" "$tr" http://deb.debian.org/debian
  touch "$tr/.done"
fi
for d in "$why"/debs/linux-headers-"$GK64"_"$kpkgver"_arm64.deb "$why"/debs/linux-headers-"$KBASE"-common_"$kpkgver"_all.deb \
         "$why"/debs/"$kbp"_"$kpkgver"_amd64.deb; do
  dpkg -x "$d" "$tr"
done
chroot "$tr" dpkg-query -W gcc-14-aarch64-linux-gnu binutils-aarch64-linux-gnu make | tee "$why/chroot-packages.txt"
# the headers' .kernelvariables set ARCH=arm64, CROSS_COMPILE=aarch64-linux-gnu- and
# CC=aarch64-linux-gnu-gcc-14: the compiler of the kernel's CONFIG_CC_VERSION_TEXT
grep -h '^CONFIG_CC_VERSION_TEXT=' "$tr/usr/src/linux-headers-$GK64/.config"
chroot "$tr" aarch64-linux-gnu-gcc-14 --version | head -1
m=/mod-$GK64
rm -rf "$tr$m"; mkdir -p "$tr$m"
cp "$src" "$tr$m/test_lockup.c"; cp "$src" "$tr$m/test_lockup_soft.c"; cp "$src" "$tr$m/test_lockup_mutex.c"
echo 'obj-m := test_lockup.o test_lockup_soft.o test_lockup_mutex.o' > "$tr$m/Kbuild"
chroot "$tr" make -s -C "/usr/src/linux-headers-$GK64" M="$m" modules
for k in test_lockup test_lockup_soft test_lockup_mutex; do
  chroot "$tr" aarch64-linux-gnu-strip --strip-debug -o "$m/$k.stripped.ko" "$m/$k.ko"
  cp "$tr$m/$k.stripped.ko" "$why/$k.ko"
done
K64=$GK64
fi
modinfo -F vermagic "$why/test_lockup.ko" | grep -q "^$K64 " || { echo "lab-why-arm: test_lockup.ko is not for $K64" >&2; exit 1; }
[ -z "${KSUITE:-}" ] || modinfo -F vermagic "$why/test_lockup.ko"
file "$why/test_lockup.ko"
sha256sum "$src" "$why"/test_lockup*.ko | tee "$why/modules.sha256"
cp "$why/test_lockup.ko" "$why/test_lockup_soft.ko" "$why/modules.sha256" "$work/arm/"
[ -z "${KSUITE:-}" ] || cp "$why/test_lockup_mutex.ko" "$work/arm/"

# ---- the guest: modules in the arm64 initramfs, a 1 MiB log ring, the scenario ----
sed -i 's|^        install -m 0755 "\$LAB/guest-init.sh" "\$G/init"$|&\n        [ "${a%%:*}" != arm64 ] \|\| { cp "$LAB/test_lockup.ko" "$G/"; xz -c "$LAB/test_lockup_soft.ko" > "$G/test_lockup_soft.ko.xz"; }|' "$work/arm/build.sh"
grep -q 'test_lockup_soft.ko.xz' "$work/arm/build.sh" || { echo "lab-why-arm: cannot give the guest its modules" >&2; exit 2; }
if [ -n "${KSUITE:-}" ]; then
  sed -i 's|xz -c "\$LAB/test_lockup_soft.ko" > "\$G/test_lockup_soft.ko.xz"; }$|xz -c "$LAB/test_lockup_soft.ko" > "$G/test_lockup_soft.ko.xz"; xz -c "$LAB/test_lockup_mutex.ko" > "$G/test_lockup_mutex.ko.xz"; }|' "$work/arm/build.sh"
  grep -q 'test_lockup_mutex.ko.xz' "$work/arm/build.sh" || { echo "lab-why-arm: cannot give the guest test_lockup_mutex" >&2; exit 2; }
fi
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
if [ -n "${KSUITE:-}" ]; then
  # 6.12, as Scripts/lab-why.sh on x86: one hung-task report per waiter (6.12 reported each waiter
  # twice, 5 s apart, before the guest had seen all three), and the spin timed in the guest first
  # (mdelay(8000) with preemption off took 30-54 s on x86 6.12 under the emulation)
  cat > "$work/why612-old1.snippet" <<'SNIP'
    echo 5 > /proc/sys/kernel/hung_task_timeout_secs
    echo "LABGUEST why: hung_task_timeout_secs=5"
SNIP
  cat > "$work/why612-new1.snippet" <<'SNIP'
    echo 3 > /proc/sys/kernel/hung_task_warnings
    echo 5 > /proc/sys/kernel/hung_task_timeout_secs
    echo "LABGUEST why: hung_task_warnings=3, hung_task_timeout_secs=5"
SNIP
  cat > "$work/why612-old2.snippet" <<'SNIP'
    echo 3 > /proc/sys/kernel/watchdog_thresh
    labcpu=0; [ "$(nproc)" -gt 1 ] && labcpu=1
    taskset $((1 << labcpu)) insmod /test_lockup_soft.ko.xz time_secs=8 disable_preempt=1 &
    labsoft=$!
    echo "LABGUEST why: insmod test_lockup_soft.ko.xz time_secs=8 disable_preempt=1 pid $labsoft on cpu $labcpu, watchdog_thresh=3"
SNIP
  cat > "$work/why612-new2.snippet" <<'SNIP'
    labcpu=0; [ "$(nproc)" -gt 1 ] && labcpu=1
    # how long mdelay(1000) with preemption off takes on that vCPU (watchdog_thresh still 10: no
    # report), from the module's own "Finish on CPU1 in N ns"; then as many seconds as make the
    # spin last about 11 s
    labsecs=8
    taskset $((1 << labcpu)) insmod /test_lockup_soft.ko.xz time_secs=1 disable_preempt=1
    labns=$(dmesg | sed -n 's/.*test_lockup_soft: Finish on CPU[0-9]* in \([0-9]*\) ns.*/\1/p' | tail -1)
    [ -n "$labns" ] && [ "$labns" -gt 0 ] && labsecs=$(( (11000000000 + labns / 2) / labns ))
    [ "$labsecs" -ge 1 ] || labsecs=1
    echo "LABGUEST why: calibration: mdelay of 1 s took ${labns:-?} ns: time_secs=$labsecs"
    echo 3 > /proc/sys/kernel/watchdog_thresh
    taskset $((1 << labcpu)) insmod /test_lockup_soft.ko.xz time_secs=$labsecs disable_preempt=1 &
    labsoft=$!
    echo "LABGUEST why: insmod test_lockup_soft.ko.xz time_secs=$labsecs disable_preempt=1 pid $labsoft on cpu $labcpu, watchdog_thresh=3"
SNIP
  python3 - "$g" "$work"/why612-old1.snippet "$work"/why612-new1.snippet "$work"/why612-old2.snippet "$work"/why612-new2.snippet <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
for o, n in ((2, 3), (4, 5)):
    old = open(sys.argv[o]).read()
    assert s.count(old) == 1, "guest-init.sh changed: patch it by hand"
    s = s.replace(old, open(sys.argv[n]).read())
open(p, "w").write(s)
PY
  # 6.12 only: steps 4 (a mutex: owner asleep, a waiter in D) and 5 (a lockup that the kernel does
  # not report), after the pids of steps 1-3; then /proc/meminfo right before sysrq-c
  cat > "$work/why612-mutex-lockup.snippet" <<'SNIP'
    echo "LABGUEST why 4: mutex: test_lockup_mutex holds cgroup_mutex asleep, mkdir in a cgroup2 waits"
    echo "LABGUEST why: hung_task_timeout_secs $(cat /proc/sys/kernel/hung_task_timeout_secs)"
    # After the OOM kill the zone's watermark stays boosted (kswapd has given up: nothing is
    # reclaimable) and the 64 MiB CMA area takes no kernel allocation, so the next insmod was
    # OOM-killed itself (first run, 2026-12-06): rewriting min_free_kbytes recomputes the
    # watermarks (setup_per_zone_wmarks) and clears the boost, and watermark_boost_factor=0 keeps
    # the next unmovable allocation from boosting it again (the third run only rewrote
    # min_free_kbytes: boosted again, the OOM killer took test_lockup's insmod for the module's
    # BTF relocation map).
    echo 0 > /proc/sys/vm/watermark_boost_factor
    echo "LABGUEST why: before the watermark reset: $(grep -E '^(MemFree|MemAvailable|CmaFree):' /proc/meminfo | tr -s ' \n' ' ')"
    cat /proc/sys/vm/min_free_kbytes > /tmp/labmfk; cat /tmp/labmfk > /proc/sys/vm/min_free_kbytes
    echo "LABGUEST why: min_free_kbytes $(cat /proc/sys/vm/min_free_kbytes) rewritten, watermark_boost_factor $(cat /proc/sys/vm/watermark_boost_factor): watermark boost cleared; zone watermarks (pages): $(grep -E '^ +(min|low|high) ' /proc/zoneinfo | tr -s ' \n' ' ')"
    mkdir -p /tmp/labcg
    mount -t cgroup2 none /tmp/labcg
    labmtx=$(awk '$3=="cgroup_mutex"{print $1}' /proc/kallsyms)
    echo "LABGUEST why: cgroup_mutex at 0x$labmtx (/proc/kallsyms)"
    # the lab's tasks are spared by the OOM killer (oom_score_adj -1000; exec keeps the pid)
    sh -c 'echo -1000 > /proc/self/oom_score_adj; exec insmod /test_lockup_mutex.ko.xz "$@"' sh lock_mutex_ptr=0x$labmtx state=S time_secs=600 &
    labmowner=$!
    lab_wait_log 'test_lockup_mutex: lock mutex' 60
    lab_wait_state $labmowner S 30
    sleep 1
    echo "LABGUEST why: mutex owner: insmod test_lockup_mutex.ko.xz lock_mutex_ptr=0x$labmtx pid $labmowner holds cgroup_mutex, asleep in state $(lab_state $labmowner) for 600 s"
    dmesg | grep 'test_lockup_mutex: lock mutex' | sed 's/^/LABGUEST why: module said: /'
    sh -c 'echo -1000 > /proc/self/oom_score_adj; exec mkdir /tmp/labcg/labgroup' &
    labmw=$!
    lab_wait_state $labmw D 30
    echo "LABGUEST why: mutex waiter: mkdir /tmp/labcg/labgroup pid $labmw waits for cgroup_mutex (cgroup_mkdir, state $(lab_state $labmw))"
    echo "LABGUEST why 5: unreported lockup: test_lockup_soft spins on vCPU 1 with preemption off, touching the watchdog"
    # test_lockup touches the watchdog only between iterations: many short spins (0.5 s each,
    # mdelay's 1 s took 3.4-9.5 s under the emulation; the report needs 2 x watchdog_thresh = 20 s)
    labcpu=0; [ "$(grep -c ^processor /proc/cpuinfo)" -gt 1 ] && labcpu=1
    taskset -p 1 $$ >/dev/null
    echo "LABGUEST why: init (pid $$) kept on cpu 0: $(taskset -p $$)"
    echo 1 > /sys/module/rcupdate/parameters/rcu_cpu_stall_suppress
    echo "LABGUEST why: watchdog_thresh $(cat /proc/sys/kernel/watchdog_thresh), softlockup_panic $(cat /proc/sys/kernel/softlockup_panic), rcu_cpu_stall_suppress $(cat /sys/module/rcupdate/parameters/rcu_cpu_stall_suppress)"
    labt0=$(cut -d' ' -f1 /proc/uptime)
    taskset $((1 << labcpu)) sh -c 'echo -1000 > /proc/self/oom_score_adj; exec insmod /test_lockup_soft.ko.xz "$@"' sh time_secs=0 time_nsecs=500000000 iterations=2000 disable_preempt=1 touch_softlockup=1 &
    labspin=$!
    echo "LABGUEST why: insmod test_lockup_soft.ko.xz time_nsecs=500000000 iterations=2000 disable_preempt=1 touch_softlockup=1 pid $labspin on cpu $labcpu, started at uptime $labt0"
    # From here on vCPU 1 holds off RCU's grace periods (preemption off in the kernel, as a real
    # lockup does), so what every fork and exit frees through RCU stays allocated: the second run
    # (2026-12-06) polled once a second and ran out of kernel memory 20 s into the spin (two OOM
    # kills, of both insmods). Few forks, then: one sleep of 30 s before ps, sysrq and the crash.
    sleep 30
    dmesg | grep -A1 "test_lockup_soft: START pid=$labspin " | sed 's/^/LABGUEST why: module said: /'
    echo "LABGUEST why: spin running since uptime $labt0, now $(cut -d' ' -f1 /proc/uptime); pid $labspin state $(lab_state $labspin); soft-lockup reports $(dmesg | grep -c 'soft lockup - CPU#'), rcu stall reports $(dmesg | grep -c 'rcu: INFO')"
    echo "LABGUEST why: pids: mutex owner $labmowner mutex waiter $labmw unreported lockup $labspin"
SNIP
  python3 - "$g" "$work"/why612-mutex-lockup.snippet <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
for old, new in (
    ('    echo "LABGUEST why: pids: owner $labowner waiters $labw1 $labw2 $labw3 soft-lockup $labsoft oom $laboom"\n',
     open(sys.argv[2]).read()),
    ('    echo "LABGUEST crashing now (echo c > /proc/sysrq-trigger)"\n',
     "    sed 's/^/LABGUEST meminfo: /' /proc/meminfo\n")):
    assert s.count(old) == 1, "guest-init.sh changed: patch it by hand"
    s = s.replace(old, old + new)
open(p, "w").write(s)
PY
fi
grep -nE 'why [12345]:|calibration:|LABGUEST (ps|sysrq-[mwt]|crashing|meminfo)' "$g"
sh -n "$g"

# the ARM lab's inputs (initramfs with the modules, lab disk), then QEMU with the complete-core writer
bash "$work/arm/build.sh" initramfs disk
export LAB_GUESTS=${LAB_GUESTS:-"a64-crash"}
export CACHE=$whycache
if [ -n "${KSUITE:-}" ]; then
  # the full-core run lays $kin (the kernel, its map) over the lab disk's inputs and keeps the map
  # with the results (lab-tasks-arm.sh's patch)
  f=$work/arm-fullcore/run-fullcore-lab.sh
  sed -i -e 's#^\(D=$B/disk; rm -rf "$D"; mkdir -p "$D/out"; cp -a "$A/build/disk/in" "$D/in"\)$#\1\n[ -z "${GUEST_IN:-}" ] || cp -a "$GUEST_IN/." "$D/in/"#' \
    -e 's#^cp "$A/build/System.map-$K64" "$A/build/System.map-$K32" "$RES/$FILES/"$#if [ -n "${GUEST_MAPS:-}" ]; then cp "$GUEST_MAPS"/System.map-* "$GUEST_IN/guest-kernels.txt" "$RES/$FILES/"; else &; fi#' \
    -e 's# -cpu cortex-a57 # -cpu "${QEMU_CPU:-cortex-a57}" #' "$f"
  [ "$(grep -c 'GUEST_IN\|GUEST_MAPS\|QEMU_CPU' "$f")" = 3 ] || { echo "run-fullcore-lab.sh changed: patch it by hand" >&2; exit 1; }
  export GUEST_IN=$kin GUEST_MAPS=$why/maps
  ls -l "$kin"
fi
[ -z "${PREPARE_ONLY:-}" ] || { echo "prepared; not starting QEMU"; exit 0; }
ARM_LAB_CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm} bash "$work/arm-fullcore/run-fullcore-lab.sh"
echo "results: $CACHE/results/files"
