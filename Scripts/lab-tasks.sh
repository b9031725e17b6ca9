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
# (trixie: 6.12.*+deb13*-amd64, bullseye: 5.10.0-*-amd64). The same kernel runs dom0 and guest;
# Xen, its tools and dom0's rootfs stay bookworm's. Modules are taken from /lib/modules or
# /usr/lib/modules (trixie), compressed (*.ko.xz, *.ko.zst) or not; the guest gets rfkill.ko
# decompressed, for busybox's insmod.
#
# usage: Scripts/lab-tasks.sh [stages]   (default: "deps fetch extract dbg rootfs guest dom0 run collect")
# env:   LAB_CACHE (default ~/.cache/xenlab/x86), XENLAB (default ../shared/xenlab),
#        KVER (default 6.1.0-56-amd64 from the host's bookworm apt), KSUITE (trixie|bullseye)
# e.g.:  KSUITE=trixie LAB_CACHE=~/.cache/xenlab/x86-612 Scripts/lab-tasks.sh
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
# (from lib/modules or usr/lib/modules; a compressed module is decompressed for busybox's insmod)
cat > "$work/guest-rfkill.snippet" <<'SNIP'
  for m in $(find "$C/extract/lib/modules/$KVER" "$C/extract/usr/lib/modules/$KVER" -name "rfkill.ko*" 2>/dev/null); do
    case $m in *.ko.xz) xz -dc "$m" > "$G/rfkill.ko";; *.ko.zst) zstd -q -dc "$m" > "$G/rfkill.ko";; *) cp "$m" "$G/";; esac
  done
  ls -l "$G"/rfkill.ko*
SNIP
sed -i '/^  install -m 755 "\$HERE\/files\/guest-init.sh" "\$G\/init"$/r '"$work/guest-rfkill.snippet" "$work/build.sh"
# dom0's modules: copy from whichever of lib/modules and usr/lib/modules the package used, and
# prune compressed modules too (dom0's bookworm kmod loads .ko.xz)
sed -i 's|^  cp -a "\$E/lib/modules/\$KVER" "\$S/lib/modules/"$|  if [ -d "$E/lib/modules/$KVER" ]; then cp -a "$E/lib/modules/$KVER" "$S/lib/modules/"; else cp -a "$E/usr/lib/modules/$KVER" "$S/lib/modules/"; fi|' "$work/build.sh"
sed -i "s|^  find \"\$S/lib/modules/\$KVER\" -name '\*.ko' |  find \"\$S/lib/modules/\$KVER\" \\\\( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \\\\) |" "$work/build.sh"
# ... and loads it, with a reader asleep in module code, before the known tasks start
sed -i 's|^    sleep 1000 &$|    insmod /rfkill.ko* \&\& echo "LAB-GUEST: insmod rfkill ok"; grep rfkill /proc/modules\n    cat /dev/rfkill \&\n    echo "LAB-GUEST: cat /dev/rfkill pid $!"\n&|' "$work/files/guest-init.sh"
grep -c rfkill "$work/build.sh" "$work/files/guest-init.sh"
grep -c 'usr/lib/modules' "$work/build.sh"
grep -c "ko.zst' " "$work/build.sh"

if [ -n "${KSUITE:-}" ]; then
  # a kernel from another Debian suite, downloaded with a private apt configuration
  apt_dir=$LAB_CACHE/apt-$KSUITE
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$LAB_CACHE/debs"
  case $KSUITE in
    trixie)   kpat='^linux-image-6\.12\.[0-9]+\+deb13(\.[0-9]+)?-amd64-dbg$' ;;
    bullseye) kpat='^linux-image-5\.10\.0-[0-9]+-amd64-dbg$' ;;
    *) echo "KSUITE: trixie or bullseye, not $KSUITE" >&2; exit 2 ;;
  esac
  printf '%s\n' "deb http://deb.debian.org/debian $KSUITE main" \
    "deb http://deb.debian.org/debian-security $KSUITE-security main" > "$apt_dir/sources.list"
  kapt() { # kapt apt-get|apt-cache ARGS...: apt with only $KSUITE's sources and its own lists/cache
    local c=$1; shift
    "$c" -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
      -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$apt_dir/lists" \
      -o Dir::Cache="$apt_dir/cache" "$@"
  }
  kapt apt-get -q update
  if [ -z "${KVER:-}" ]; then
    KVER=$(kapt apt-cache search --names-only "$kpat" | awk '{print $1}' \
           | sed 's/^linux-image-//; s/-dbg$//' | sort -V | tail -1)
    [ -n "$KVER" ] || { echo "no kernel matching $kpat in $KSUITE" >&2; exit 1; }
  fi
  ( cd "$LAB_CACHE/debs"
    for p in linux-image-$KVER linux-image-$KVER-dbg; do
      ls ${p}_*.deb >/dev/null 2>&1 || kapt apt-get -q download "$p"
    done
    ls -l linux-image-"$KVER"*_*.deb )
fi
# the corpus maps are for this kernel; the lab would otherwise take the newest in apt
export KVER=${KVER:-6.1.0-56-amd64}
echo "KVER=$KVER"
export LAB_DOMS=${LAB_DOMS:-"lab-crash:2:256:crash:0:pv"}
stages=${*:-"deps fetch extract dbg rootfs guest dom0 run collect"}
FORCE= bash "$work/build.sh" $stages
echo "results: $LAB_CACHE/results/latest"
