#!/usr/bin/env bash
# ARM task lab (not part of CI; 30-60 minutes under QEMU TCG, most of it the first download
# and the -dbg packages' extraction): runs the arm64 Xen lab of ../shared/xenlab/arm with the
# complete-core writer of ../shared/xenlab/arm-fullcore, its crash guests patched to start
# known sleeping tasks (sleep, a pipe, FIFO readers) and dump every task with sysrq-t to the
# console before they crash: the truth for `--tasks` and task stacks on AArch64 and ARM32.
#
# Other Debian guest kernels: KSUITE=trixie downloads the guests' kernels and their -dbg packages
# from trixie (and trixie-security) with a private apt configuration under $KCACHE/apt (the host's
# apt sources are not touched): linux-image-$KBASE-arm64 and -arm64-16k (arm64) and
# -armmp-lpae (armhf). KBASE defaults to the newest 6.12.*+deb13* with an arm64 -dbg package;
# GK64, GK64K, GK32 name other KVERs per flavour. The real System.map and vmlinux are taken
# from each -dbg package's usr/lib/debug/boot into $KCACHE/dbg. Only the guests change: Xen 4.17,
# dom0 (6.1.0-50-arm64), its tools and the guests' busybox initramfs stay bookworm's (the guest
# initramfs loads no module: hvc0, devtmpfs and Xen's drivers are built into these kernels).
# The trixie kernels, their maps and a 2-vCPU 16 KiB-page guest `a64-16k-crash` are laid over
# the lab disk's inputs; the scenario gives that guest its own map. Results go to
# ~/.cache/xenlab/arm-tasks-$KSUITE/results/$FILES (default files).
#
# usage: Scripts/lab-tasks-arm.sh        env: LAB_GUESTS (default "a64-crash a32-crash-smp",
#        with KSUITE "a64-crash a32-crash-smp a64-16k-crash"), ARM_LAB_CACHE (default
#        ~/.cache/xenlab/arm), XENLAB (default ../shared/xenlab), KSUITE (trixie), KBASE, GK64,
#        GK64K, GK32, KCACHE (default ~/.cache/xenlab/arm-$KSUITE), QEMU_CPU (default cortex-a57;
#        cortex-a57 has no 16 KiB translation granule), FILES, PREPARE_ONLY=1 (stop before QEMU)
# e.g.:  KSUITE=trixie Scripts/lab-tasks-arm.sh
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
if [ -n "${KSUITE:-}" ]; then
  # guest kernels from another Debian suite, downloaded with a private apt configuration
  kc=${KCACHE:-$HOME/.cache/xenlab/arm-$KSUITE}
  case $KSUITE in
    trixie) kre='6\.12\.[0-9]+\+deb13(\.[0-9]+)?' ;;
    *) echo "KSUITE: trixie, not $KSUITE" >&2; exit 2 ;;
  esac
  mkdir -p "$kc/apt/lists/partial" "$kc/apt/cache/archives/partial" "$kc/debs" "$kc/x" "$kc/dbg" "$kc/maps" "$kc/in"
  printf '%s\n' "deb [arch=arm64,armhf] http://deb.debian.org/debian $KSUITE main" \
    "deb [arch=arm64,armhf] http://deb.debian.org/debian-security $KSUITE-security main" > "$kc/apt/sources.list"
  kapt() { # kapt apt-get|apt-cache ARGS...: apt with only $KSUITE's sources and its own lists/cache
    local c=$1; shift
    "$c" -o Dir::Etc::SourceList="$kc/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
      -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$kc/apt/lists" \
      -o Dir::Cache="$kc/apt/cache" -o APT::Architectures::=arm64 -o APT::Architectures::=armhf "$@"
  }
  kapt apt-get -q update
  if [ -z "${KBASE:-}" ]; then
    KBASE=$(kapt apt-cache search --names-only "^linux-image-$kre-arm64-dbg\$" | awk '{print $1}' \
            | sed 's/^linux-image-//; s/-arm64-dbg$//' | sort -V | tail -1)
    [ -n "$KBASE" ] || { echo "no arm64 -dbg kernel in $KSUITE" >&2; exit 1; }
  fi
  GK64=${GK64:-$KBASE-arm64} GK64K=${GK64K:-$KBASE-arm64-16k} GK32=${GK32:-$KBASE-armmp-lpae}
  echo "guest kernels: $GK64 $GK64K $GK32 (dom0 stays the lab's)"
  ( cd "$kc/debs"
    for pa in "$GK64:arm64" "$GK64K:arm64" "$GK32:armhf"; do
      for p in linux-image-${pa%%:*} linux-image-${pa%%:*}-dbg; do
        ls ${p}_*_${pa##*:}.deb >/dev/null 2>&1 || kapt apt-get -q download "$p:${pa##*:}"
      done
    done )
  # kernel images (raw arm64 Image, armhf zImage) and the real System.map and vmlinux
  # (the plain package's /boot/System.map is a stub); both dbg files go to $kc/dbg
  for pa in "$GK64:arm64:Image-arm64" "$GK64K:arm64:Image-arm64-16k" "$GK32:armhf:zImage-armhf"; do
    kv=${pa%%:*}; r=${pa#*:}; ar=${r%%:*}; img=${r#*:}
    d=$kc/dbg/usr/lib/debug/boot
    if [ ! -f "$kc/x/.done-$kv" ]; then
      rm -rf "$kc/x/$kv"; mkdir -p "$kc/x/$kv"
      dpkg-deb --fsys-tarfile "$(ls "$kc"/debs/linux-image-${kv}_*_$ar.deb)" | tar -x -C "$kc/x/$kv" ./boot
      touch "$kc/x/.done-$kv"
    fi
    if [ ! -f "$kc/dbg/.done-$kv" ]; then
      echo "extracting System.map/vmlinux-$kv from its -dbg package (slow)"
      dpkg-deb --fsys-tarfile "$(ls "$kc"/debs/linux-image-$kv-dbg_*_$ar.deb)" | \
        tar -x -C "$kc/dbg" "./usr/lib/debug/boot/vmlinux-$kv" "./usr/lib/debug/boot/System.map-$kv"
      touch "$kc/dbg/.done-$kv"
    fi
    for sym in _text _stext linux_banner init_task; do  # the map must be the vmlinux's
      a=$(awk -v s=$sym '$3==s && !f{print $1; f=1}' "$d/System.map-$kv")
      b=$(nm "$d/vmlinux-$kv" | awk -v s=$sym '$3==s && !f{print $1; f=1}')
      [ -n "$a" ] && [ "$a" = "$b" ] || { echo "System.map/vmlinux mismatch for $kv $sym: $a vs $b" >&2; exit 1; }
    done
    cp "$d/System.map-$kv" "$kc/maps/System.map-$kv"
    cp "$kc/x/$kv/boot/vmlinuz-$kv" "$kc/in/$img"
    cp "$d/System.map-$kv" "$kc/in/System.map-${img#*-}"
  done
  # the 16 KiB-page guest: like a64-crash (2 vCPUs, 128 MiB) with its own kernel
  cat > "$kc/in/a64-16k-crash.cfg" <<EOF
name = "a64-16k-crash"
kernel = "/mnt/in/Image-arm64-16k"
ramdisk = "/mnt/in/guest-initrd-arm64.cpio.gz"
memory = 128
maxmem = 128
vcpus = 2
extra = "console=hvc0 rdinit=/init nokaslr loglevel=7 lab_mode=crash"
on_poweroff = "preserve"
on_reboot = "preserve"
on_crash = "preserve"
EOF
  printf '%s\n' "KSUITE=$KSUITE" "GK64=$GK64" "GK64K=$GK64K" "GK32=$GK32" > "$kc/in/guest-kernels.txt"
  ls -l "$kc/in"
  # the scenario takes the 16k guest's map; the full-core run lays $kc/in over the lab disk's
  # inputs, keeps these maps with the results and can run another emulated CPU
  sed -i 's#^    case $g in a64\*) map=#    case $g in a64-16k*) map=$IN/System.map-arm64-16k; kstart=0xffff800000000000;;\n               a64*) map=#' "$work/arm/scenario.sh"
  grep -q 'System.map-arm64-16k' "$work/arm/scenario.sh" || { echo "scenario.sh changed: patch it by hand" >&2; exit 1; }
  f=$work/arm-fullcore/run-fullcore-lab.sh
  sed -i -e 's#^\(D=$B/disk; rm -rf "$D"; mkdir -p "$D/out"; cp -a "$A/build/disk/in" "$D/in"\)$#\1\n[ -z "${GUEST_IN:-}" ] || cp -a "$GUEST_IN/." "$D/in/"#' \
    -e 's#^cp "$A/build/System.map-$K64" "$A/build/System.map-$K32" "$RES/$FILES/"$#if [ -n "${GUEST_MAPS:-}" ]; then cp "$GUEST_MAPS"/System.map-* "$GUEST_IN/guest-kernels.txt" "$RES/$FILES/"; else &; fi#' \
    -e 's# -cpu cortex-a57 # -cpu "${QEMU_CPU:-cortex-a57}" #' "$f"
  [ "$(grep -c 'GUEST_IN\|GUEST_MAPS\|QEMU_CPU' "$f")" = 3 ] || { echo "run-fullcore-lab.sh changed: patch it by hand" >&2; exit 1; }
  export GUEST_IN=$kc/in GUEST_MAPS=$kc/maps
fi
# apt needs the guests' architectures to download their packages
for a in arm64 armhf; do dpkg --print-foreign-architectures | grep -qx $a || { dpkg --add-architecture $a; apt-get update -q; }; done
# the ARM lab's cached inputs, with this guest init in the guest initramfs
bash "$work/arm/build.sh" deps download extract sysmap initramfs disk
export LAB_GUESTS=${LAB_GUESTS:-"a64-crash a32-crash-smp${KSUITE:+ a64-16k-crash}"}
export CACHE=$HOME/.cache/xenlab/arm-tasks${KSUITE:+-$KSUITE}
[ -z "${PREPARE_ONLY:-}" ] || { echo "prepared; not starting QEMU"; exit 0; }
ARM_LAB_CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm} bash "$work/arm-fullcore/run-fullcore-lab.sh"
echo "results: $CACHE/results/files"
