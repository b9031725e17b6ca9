#!/usr/bin/env bash
# ARM live lab (not part of CI): proves xenctx-swift's LIVE path (`xenctx-swift DOMID` in dom0)
# on real arm64 Xen 4.20 under QEMU TCG, beside upstream xenctx, on the guests of the ARM lab
# (../shared/xenlab/arm). The lab is copied to $WORK and patched (../shared is not touched):
# - dom0 is Debian trixie's: xen-hypervisor-4.20-arm64, xen-utils-4.20, xen-utils-common,
#   xenstore-utils, the libxen* libraries, libc6 and the rest of their NEEDED closure, plus
#   what xenctx-swift needs (libstdc++6, libgcc-s1, libelf1t64, libdw1t64 and their deps) and
#   GNU env (coreutils, for --default-signal), fetched with a private apt configuration under
#   $LIVE/trixie/apt (the host's apt sources are not touched) and unpacked with `dpkg -x`;
#   the dom0 KERNEL and the guests stay bookworm's 6.1.0-50 (arm64, armmp-lpae) with their
#   real System.maps from the -dbg packages, as the lab has them.
# - xenctx-swift goes into the dom0 root from its arm64 .deb (`dpkg -x`, /usr/bin/xenctx-swift)
#   when XENCTX_SWIFT_DEB names one (default: the newest /tmp/arm-deb/xenctx-swift_*_arm64.deb),
#   else the binary XENCTX_SWIFT_BIN (default /tmp/armsrc/.build-native/release/xenctx-swift).
# - scenario.sh sources Scripts/lab/arm-live-swift.sh: on each paused guest, after upstream
#   xenctx's 7 option sets, xenctx-swift mirrors them with --unwind scan, runs its own views
#   (-C, --summary, --tasks, --log, -s MAP -C, --describe), --save-core (read back in dom0 with
#   --core, a second --save-core to the same file must be refused); on running guests (alive,
#   busy) SIGINT/SIGTERM/SIGHUP while it holds the pause (XENCTX_SWIFT_HOLD_PAUSE_MS=40000),
#   then 10 pause windows beside upstream's whole run; at the end, libxenctrl hidden.
# - The complete-core writer of ../shared/xenlab/arm-fullcore (fullcore.c, patched for Xen 4.18's
#   removal of xc_domain_getinfo and cross-compiled against trixie's libxen-dev) goes into dom0 as
#   /usr/bin/fullcore; on each paused guest it writes the same moment's core beside --save-core's
#   and dom0 compares the two with cmp.
# - a32-crash-smp (2 vCPUs) is capped at one pCPU (cap = 100), so a guest that hangs while booting
#   cannot starve dom0.
# - On the host: Scripts/lab/compare-arm.py (PASS/FAIL per check, `N passed, M failed`), which
#   also runs the host's xenctx-swift (HOST_XENCTX_SWIFT, default .build/debug/xenctx-swift)
#   on every saved core and compares with dom0's live output.
#
# usage: Scripts/lab-live-arm.sh [stages]   stages: prepare run collect compare (default all four)
# env:   LAB_GUESTS (default "a64-crash a64-busy a32-crash-smp a32-busy a64-alive a32-crash a32-alive"),
#        ARM_LAB_CACHE (bookworm downloads/extracts, shared with the lab; ~/.cache/xenlab/arm),
#        LIVE_CACHE (~/.cache/xenlab/arm-live: trixie debs, build, run, results), XENLAB,
#        XENCTX_SWIFT_DEB, XENCTX_SWIFT_BIN, HOST_XENCTX_SWIFT, QEMU_TIMEOUT (default 5400),
#        DOM0_MEM (default 768M), LAB_WORK (the patched lab copy; ~/.cache/xenlab/xenctx-swift-live-arm)
# results: $LIVE_CACHE/results/latest (files/: every output, console/, cores and .xz;
#          serial.log; compare.txt; timings.txt)
# Measured on 2026-12-06 (2 host cores shared with a compile, QEMU 7.2 TCG, no KVM):
# - prepare with the bookworm lab's downloads cached: 20 s (from nothing: ~31 s of bookworm
#   downloads, ~100 s extracting the two -dbg packages, a few s of trixie downloads);
# - Xen 4.20 + the trixie dom0 (6.1.0-50-arm64 kernel) to a running toolstack: 17 s;
# - a64-crash: 127 s in all (guest ready 37 s; xenctx-swift's 13 runs ~50 s; --save-core of
#   128 MiB 16.6 s against `xl dump-core` 3.9 s, which on ARM still writes no RAM: 0 valid pfns);
# - a64-busy: 714 s, ~580 s of them the 10 pause-window rounds (each xenctx-swift run takes
#   26-54 s of analysis after unpausing, while the guest spins on the emulated CPUs);
# - a32-crash-smp: hung in /init (as the lab's REPORT.md describes) with both vCPUs spinning;
#   dom0 was starved and the scenario made no progress for 13 minutes: the run was stopped and
#   the ARM32 guests rerun separately (LAB_GUESTS="a32-crash a32-busy", LIVE_CACHE, LAB_WORK).
# - that rerun (a32-crash a32-busy): 460 s of QEMU in all; a32-crash 146 s (--save-core 20.4 s,
#   xl dump-core 4.4 s), a32-busy 289 s (1 vCPU: each xenctx-swift run 4-8 s);
# - collect ~25 s (xz of the cores), compare ~1-2 min (the host build reads every core).
# - run 5 (2026-12-06/07, all six guests, a32-crash-smp last and capped): QEMU 1 798 s; prepare
#   with everything cached 28 s (376 s on a new machine, most of it the -dbg extraction); per guest
#   89-196 s (a64), 135 s (a32-crash), 554 s (a32-busy, the host compiling), 626 s (a32-crash-smp,
#   which sat out the 300 s ready and 120 s panic waits: it never boots, see corpus/lab/README.md);
#   collect 121 s.
# - run 7 (2026-12-07, a64-crash a64-busy a32-busy a64-alive, idle host, xenctx-swift from the .deb):
#   prepare 29 s (cached), QEMU 827 s (per guest 105, 244, 255, 206 s), collect 96 s, compare ~1 min.
# Leave a32-crash-smp out under time pressure; a busy/alive guest costs 5-12 minutes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
xenlab=${XENLAB:-$here/../shared/xenlab}
export CACHE=${ARM_LAB_CACHE:-$HOME/.cache/xenlab/arm}
LIVE=${LIVE_CACHE:-$HOME/.cache/xenlab/arm-live}
WORK=${LAB_WORK:-$HOME/.cache/xenlab/xenctx-swift-live-arm}
TC=$LIVE/trixie
export LIVE_CACHE=$LIVE
export LAB_GUESTS=${LAB_GUESTS:-"a64-crash a64-busy a32-crash-smp a32-busy a64-alive a32-crash a32-alive"}
export QEMU_TIMEOUT=${QEMU_TIMEOUT:-5400}
DOM0_MEM=${DOM0_MEM:-768M}
HOST_BIN=${HOST_XENCTX_SWIFT:-$here/.build/debug/xenctx-swift}
SWIFT_BIN=${XENCTX_SWIFT_BIN:-/tmp/armsrc/.build-native/release/xenctx-swift}
SWIFT_DEB=${XENCTX_SWIFT_DEB:-$(ls -t /tmp/arm-deb/xenctx-swift_*_arm64.deb 2>/dev/null | head -1 || true)}
[ -x "$xenlab/arm/build.sh" ] || { echo "no lab at $xenlab/arm" >&2; exit 2; }
mkdir -p "$LIVE"
stamp() { echo "$(date -Is) $*" >> "$LIVE/timings.txt"; echo "[$(date +%H:%M:%S)] $*" >&2; }

# trixie packages for dom0 (hypervisor separately)
TPKGS="xen-utils-4.20 xen-utils-common xenstore-utils libxenmisc4.20 libxencall1 libxendevicemodel1
  libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenhypfs1 libxenstore4 libxentoolcore1
  libxentoollog1 libyajl2 libc6 gcc-14-base libgcc-s1 libstdc++6 libelf1t64 libdw1t64 zlib1g
  liblzma5 libbz2-1.0 libzstd1 libext2fs2t64 libcom-err2 libfdt1 libncurses6 libtinfo6 libuuid1"
kapt() { # kapt apt-get|apt-cache ARGS...: apt with only trixie's sources and its own lists/cache
    local c=$1; shift
    "$c" -o Dir::Etc::SourceList="$TC/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
      -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$TC/apt/lists" \
      -o Dir::Cache="$TC/apt/cache" -o APT::Architectures::=arm64 -o APT::Architectures::=armhf "$@"
}

patch_lab() {
    rm -rf "$WORK"; mkdir -p "$WORK"
    cp -r "$xenlab/arm" "$WORK/"
    chmod -R u+w "$WORK"
    cp "$here/Scripts/lab/arm-live-swift.sh" "$WORK/arm/"
    python3 - "$WORK/arm" "$DOM0_MEM" <<'PY'
import sys
lab, dom0_mem = sys.argv[1], sys.argv[2]
def patch(name, pairs):
    p = f"{lab}/{name}"; s = open(p).read()
    for old, new in pairs:
        assert old in s, f"{name} changed: patch it by hand ({old!r})"
        s = s.replace(old, new)
    open(p, "w").write(s)
patch("build.sh", [
    # bookworm downloads and extracts (dom0 kernel, guests, busybox, -dbg maps) stay in $CACHE;
    # everything this lab builds or runs goes to $LIVE_CACHE
    ('B=$CACHE/build\nRUN=$CACHE/run\nRES=$CACHE/results\n',
     'B=$LIVE_CACHE/build\nRUN=$LIVE_CACHE/run\nRES=$LIVE_CACHE/results\nTX=$LIVE_CACHE/trixie/x\n'),
    ('TIMINGS=$CACHE/timings.txt', 'TIMINGS=$LIVE_CACHE/timings.txt'),
    # the dom0 root is trixie's (merged /usr: /lib is usr/lib)
    ('    cp -a "$X/root/." "$R/"\n', '    cp -a "$TX/root/." "$R/"\n    ln -s usr/lib "$R/lib"\n'),
    ('"$R/usr/lib/xen-4.17/bin/oxenstored"', '"$R/usr/lib/xen-4.20/bin/oxenstored" "$R/usr/sbin/oxenstored" "$R/usr/lib/xen-4.20/lib/python" "$R/usr/lib/python3"'),
    ('    install -m 0755 "$LAB/scenario.sh" "$D/in/scenario.sh"\n',
     '    install -m 0755 "$LAB/scenario.sh" "$D/in/scenario.sh"\n    install -m 0644 "$LAB/arm-live-swift.sh" "$D/in/arm-live-swift.sh"\n'
     # armmp has no BTF: --tasks on ARM32 takes the types from the -dbg vmlinux's DWARF
     '    cp "$X/dbg/usr/lib/debug/boot/vmlinux-$K32" "$D/in/vmlinux-armhf"\n'),
    ('local XEN=$X/xen/boot/xen-4.17-arm64', 'local XEN=$TX/xen/boot/xen-4.20-arm64'),
    ('dom0_mem=512M,max:512M', f'dom0_mem={dom0_mem},max:{dom0_mem}'),
    # a 2-vCPU armmp guest that hangs while booting spins on both pCPUs and starved dom0 for
    # 13 minutes (2026-12-06): cap it at one pCPU (credit2's cap) so the scenario goes on
    ('        guest_cfg $a-crash-smp $k $r crash 2 128 > "$D/in/$a-crash-smp.cfg"\n',
     '        guest_cfg $a-crash-smp $k $r crash 2 128 > "$D/in/$a-crash-smp.cfg"\n'
     '        echo "cap = 100" >> "$D/in/$a-crash-smp.cfg"\n'),
    # no NIC (the virt machine's default virtio-net wants efi-virtio.rom, which a host
    # without ipxe-qemu lacks; the lab uses no network)
    ('-display none -monitor none -no-reboot', '-display none -monitor none -no-reboot -nic none'),
])
patch("dom0-init.sh", [("/usr/lib/xen-4.17/bin:", "/usr/lib/xen-4.20/bin:")])
patch("scenario.sh", [
    ('log() { echo "LABSCN [$(( $(now) - T0 ))s] $*"; }\n',
     'log() { echo "LABSCN [$(( $(now) - T0 ))s] $*"; }\n. $IN/arm-live-swift.sh\n'),
    ('    run_xenctx $tag $domid $map $kstart\n',
     '    run_xenctx $tag $domid $map $kstart\n    swift_inspect $tag $domid $map $kstart\n'),
    ('    t2=$(now)\n    xl dump-core $g $OUT/$tag.core > $OUT/$tag.dump-core.log 2>&1; echo "rc=$?" >> $OUT/$tag.dump-core.log\n',
     '    t2=$(now); t2c=$(up_cs)\n    xl dump-core $g $OUT/$tag.core > $OUT/$tag.dump-core.log 2>&1; echo "rc=$?" >> $OUT/$tag.dump-core.log\n'
     '    echo "$(( ($(up_cs) - t2c) * 10 ))" > $OUT/$tag.swift/xl-dump-core.ms\n'),
    ('        xl destroy $g\n        log "=== $g finished',
     '        [ $mode = crash ] || swift_live $g $(xl domid $g) $map\n        xl destroy $g\n        log "=== $g finished'),
    ('xl dmesg > $OUT/xl-dmesg.txt 2>&1\n', 'swift_nolibs\nxl dmesg > $OUT/xl-dmesg.txt 2>&1\n'),
])
PY
    # the scenario's xenctx-after-dump check is upstream's; keep it
    grep -c swift_ "$WORK/arm/scenario.sh" >&2
}

# The complete-core writer of ../shared/xenlab/arm-fullcore, cross-compiled against trixie's
# Xen 4.20 headers (a patched copy: xc_domain_getinfo went away in Xen 4.18), so dom0 can
# write the same moment's core beside `--save-core` and the two be compared byte for byte.
build_fullcore() {
    local S=$TC/fullcore-sysroot src=$xenlab/arm-fullcore/fullcore.c
    [ -f "$src" ] || { echo "no complete-core writer at $src: the byte comparison is skipped" >&2; return 0; }
    command -v aarch64-linux-gnu-gcc >/dev/null ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
    ls "$TC"/debs/libxen-dev_*_arm64.deb >/dev/null 2>&1 || (cd "$TC/debs" && kapt apt-get -q download libxen-dev:arm64)
    rm -rf "$S"; mkdir -p "$S"
    for d in "$TC"/debs/*_arm64.deb; do dpkg -x "$d" "$S"; done
    python3 - "$src" "$S/fullcore.c" <<'PY'
import sys
s = open(sys.argv[1]).read()
for old, new in [
    ("xc_dominfo_t info;", "xc_domaininfo_t info;"),
    ("xc_domain_getinfo(xch, domid, 1, &info) != 1 || info.domid != domid",
     "xc_domain_getinfo_single(xch, domid, &info) != 0 || info.domain != domid"),
    ("xc_domain_getinfo(xch, domid, 1, &info);", "xc_domain_getinfo_single(xch, domid, &info);"),
    ("info.nr_pages", "(unsigned long)info.tot_pages"),
    ("info.hvm ?", "(info.flags & XEN_DOMINF_hvm_guest) ?"),
]:
    assert old in s, f"fullcore.c changed: patch it by hand ({old!r})"
    s = s.replace(old, new)
open(sys.argv[2], "w").write(s)
PY
    local L=$S/usr/lib/aarch64-linux-gnu
    # bookworm's cross glibc is older than trixie's: what the Xen libraries need of libc is
    # theirs to find at run time, in the trixie dom0
    aarch64-linux-gnu-gcc -O2 -Wall -std=gnu11 -I"$S/usr/include" -o "$TC/fullcore" "$S/fullcore.c" \
        -L"$L" -Wl,-rpath-link,"$L" -Wl,--allow-shlib-undefined -lxenctrl -lxenforeignmemory
    install -D -m 0755 "$TC/fullcore" "$TC/x/root/usr/bin/fullcore"
    file "$TC/fullcore" >&2
}

stage_prepare() {
    # the host needs the guests' architectures to download the bookworm packages
    for a in arm64 armhf; do dpkg --print-foreign-architectures | grep -qx $a || { dpkg --add-architecture $a; apt-get update -q; }; done
    patch_lab
    bash "$WORK/arm/build.sh" deps download extract sysmap
    # trixie dom0 packages
    mkdir -p "$TC/apt/lists/partial" "$TC/apt/cache/archives/partial" "$TC/debs" "$TC/extra"
    printf '%s\n' "deb [arch=arm64,armhf] http://deb.debian.org/debian trixie main" \
      "deb [arch=arm64,armhf] http://deb.debian.org/debian-security trixie-security main" > "$TC/apt/sources.list"
    [ -n "$(ls "$TC/apt/lists" | grep -m1 Packages || true)" ] || kapt apt-get -q update
    local want=""
    for p in xen-hypervisor-4.20-arm64 $TPKGS; do ls "$TC/debs/${p}"_*.deb >/dev/null 2>&1 || want="$want $p:arm64"; done
    [ -z "$want" ] || (cd "$TC/debs" && kapt apt-get -q download $want)
    ls "$TC"/extra/coreutils_*_arm64.deb >/dev/null 2>&1 || (cd "$TC/extra" && kapt apt-get -q download coreutils:arm64)
    # the trixie root: every package but the hypervisor, then GNU env and xenctx-swift
    rm -rf "$TC/x"; mkdir -p "$TC/x/root" "$TC/x/xen" "$TC/x/cu"
    for p in $TPKGS; do dpkg -x "$(ls "$TC/debs/${p}"_*_arm64.deb | head -1)" "$TC/x/root"; done
    dpkg -x "$(ls "$TC"/debs/xen-hypervisor-4.20-arm64_*_arm64.deb)" "$TC/x/xen"
    dpkg -x "$(ls "$TC"/extra/coreutils_*_arm64.deb)" "$TC/x/cu"
    install -D -m 0755 "$TC/x/cu/usr/bin/env" "$TC/x/root/usr/lib/xenctx-lab/env"
    if [ -n "$SWIFT_DEB" ] && [ -f "$SWIFT_DEB" ]; then
        dpkg -x "$SWIFT_DEB" "$TC/x/root"
        echo "xenctx-swift from $SWIFT_DEB" > "$LIVE/tool-source.txt"
    else
        [ -x "$SWIFT_BIN" ] || { echo "no xenctx-swift for arm64: $SWIFT_BIN (or XENCTX_SWIFT_DEB)" >&2; exit 1; }
        install -D -m 0755 "$SWIFT_BIN" "$TC/x/root/usr/bin/xenctx-swift"
        echo "xenctx-swift binary $SWIFT_BIN (no .deb)" > "$LIVE/tool-source.txt"
    fi
    file "$TC/x/root/usr/bin/xenctx-swift" | tee -a "$LIVE/tool-source.txt"
    build_fullcore
    sha256sum "$TC/x/root/usr/bin/xenctx-swift" >> "$LIVE/tool-source.txt"
    # every NEEDED library of every dom0 ELF must be in the root (the lab's check, merged /usr)
    local R=$TC/x/root miss=0
    for f in $(find "$R" -type f \( -path '*/bin/*' -o -path '*/sbin/*' -o -name '*.so*' -o -path '*/xenctx-lab/*' \)); do
        case "$(file -b "$f")" in ELF*) ;; *) continue;; esac
        for n in $(readelf -d "$f" 2>/dev/null | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p'); do
            [ -e "$R/usr/lib/aarch64-linux-gnu/$n" ] || [ -e "$R/usr/lib/$n" ] || echo "MISSING $n for ${f#$R}"
        done
    done | grep -vE 'xenfsimage|python|gconv' | sort -u > "$LIVE/missing.txt" || true
    cat "$LIVE/missing.txt" >&2
    [ ! -s "$LIVE/missing.txt" ] || { echo "dom0 root has unresolved libraries (above)" >&2; exit 1; }
    echo "MISSING: none (xen tools, xenctx-swift, GNU env)" >&2
    bash "$WORK/arm/build.sh" initramfs disk
    ls -l "$LIVE/build/dom0-initrd.cpio.gz" >&2
}

stage_run() {
    [ -d "$WORK/arm" ] || patch_lab
    stamp "run: start (guests: $LAB_GUESTS)"
    bash "$WORK/arm/build.sh" run
    stamp "run: end"
}

stage_collect() {
    bash "$WORK/arm/build.sh" collect
    local O=$LIVE/results/latest
    cp "$LIVE/tool-source.txt" "$LIVE/missing.txt" "$O/" 2>/dev/null || true
    cp "$LIVE/timings.txt" "$O/" 2>/dev/null || true
    grep -a 'LABSCN\|LABDOM0' "$O/serial.log" > "$O/scenario-serial.txt" || true
}

stage_compare() {
    local O=$LIVE/results/latest
    python3 "$here/Scripts/lab/compare-arm.py" "$O" "$HOST_BIN" | tee "$O/compare.txt"
}

stages=${*:-"prepare run collect compare"}
for s in $stages; do
    t0=$(date +%s)
    "stage_$s"
    stamp "stage $s: $(( $(date +%s) - t0 )) s"
done
