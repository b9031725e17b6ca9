#!/usr/bin/env bash
# Benchmarks: prints figures, asserts nothing (see Benchmarks/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${XENCTX_CORPUS_CACHE:-.build/corpus-cache}
mkdir -p "$cache/maps" "$cache/x86-run1-lab-crash"
unpack() { [ -f "$2" ] || xz -dc "$1" > "$2"; }
unpack corpus/maps/6.1.0-56-amd64.System.map.xz "$cache/maps/6.1.0-56-amd64.System.map"
unpack corpus/cases/x86-run1-lab-crash/lab-crash.core.xz "$cache/x86-run1-lab-crash/lab-crash.core"
for c in arm-full-a64-crash/a64-crash arm-full-a32-crash/a32-crash arm-full-a32-crash-smp-bootoops1/a32-crash-smp-bootoops1; do
    mkdir -p "$cache/$(dirname $c)"
    unpack "corpus/cases/$c.core.xz" "$cache/$c.core"
done
swift build -c release --product xenctx-bench >/dev/null
swift build -c release --product xenctx-swift >/dev/null
bin=$(swift build -c release --show-bin-path)
map="$cache/maps/6.1.0-56-amd64.System.map"
core="$cache/x86-run1-lab-crash/lab-crash.core"
echo "machine: $(nproc) cores, $(uname -m); $(swift --version 2>&1 | head -1)"
"$bin/xenctx-bench" open
"$bin/xenctx-bench" map "$map"
"$bin/xenctx-bench" report "$core" "$map"
# What the guest says about itself (VMCOREINFO, kallsyms, the log), phase by phase.
for c in x86-run1-lab-crash/lab-crash arm-full-a64-crash/a64-crash arm-full-a32-crash/a32-crash arm-full-a32-crash-smp-bootoops1/a32-crash-smp-bootoops1; do
    "$bin/xenctx-bench" kernel "$cache/$c.core"
done
# Finding VMCOREINFO must not grow with RAM: the same guests in 4 GiB and 64 GiB cores.
"$bin/xenctx-bench" grow "$cache/arm-full-a64-crash/a64-crash.core"
"$bin/xenctx-bench" grow "$cache/x86-run1-lab-crash/lab-crash.core"
# Issue #11's rows: the whole -C command on grown and fragmented cores (real pages read).
"$bin/xenctx-bench" frames "$bin/xenctx-swift" "$cache/x86-run1-lab-crash/lab-crash.core" "$cache/arm-full-a64-crash/a64-crash.core"
# Triage throughput (#26): 100 cores (25 links to each of the four real cores above), one at a
# time and one per CPU; cores per second and peak RSS (GNU time).
tri=/tmp/xenctx-bench-triage; rm -rf "$tri"; mkdir -p "$tri"
for i in $(seq 1 25); do
    for c in x86-run1-lab-crash/lab-crash arm-full-a64-crash/a64-crash arm-full-a32-crash/a32-crash arm-full-a32-crash-smp-bootoops1/a32-crash-smp-bootoops1; do
        ln -s "$(realpath "$cache/$c.core")" "$tri/$(basename $c)-$i.core"
    done
done
for jobs in 1 $(nproc); do
    /usr/bin/time -f "%e %M" -o /tmp/xenctx-bench-triage.time "$bin/xenctx-swift" triage --jobs "$jobs" "$tri" > /dev/null || true
    read -r secs rss < /tmp/xenctx-bench-triage.time
    echo "triage of 100 cores, --jobs $jobs: $secs s ($(python3 -c "print(f'{100/$secs:.1f}')") cores/s), peak RSS $((rss / 1024)) MiB"
done
rm -rf "$tri"

# hf RUNS NAME CMD [NAME CMD]...: hyperfine, printed as medians (this VM's timings have
# long outliers that move means) with each command's ratio to the first.
hf() {
    local runs=$1; shift
    local args=()
    while [ $# -gt 0 ]; do args+=(-n "$1" "$2"); shift 2; done
    if command -v python3 >/dev/null; then
        rm -f /tmp/xenctx-bench-hf.json
        if ! hyperfine --warmup 2 --runs "$runs" -N --style none --export-json /tmp/xenctx-bench-hf.json "${args[@]}" >/tmp/xenctx-bench-hf.log 2>&1; then
            echo "  (not timed: a command failed) $(grep -m1 -i error /tmp/xenctx-bench-hf.log)"
            return 0
        fi
        python3 - /tmp/xenctx-bench-hf.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = r[0]["median"]
for x in r:
    print(f"  {x['command']}: median {x['median']*1e3:.1f} ms, min {x['min']*1e3:.1f} ms ({x['median']/base:.2f}x the first)")
PY
    else
        hyperfine --warmup 2 --runs "$runs" -N --style basic "${args[@]}" 2>&1 | grep -E "Time|Range|faster"
    fi
}

if ! command -v hyperfine >/dev/null; then
    echo "(install hyperfine to time the whole command and its peers)"
    exit 0
fi
# System.map: loading it against merely reading and splitting it once (awk).
echo "System.map inside the whole command, against awk reading and splitting it once:"
hf 30 "xenctx-swift -s MAP (load the map, then a registers-only view)" "$bin/xenctx-swift -s $map --unwind scan -l 0 0 --core $core" \
      "xenctx-swift, no map, same view" "$bin/xenctx-swift --unwind scan -l 0 0 --core $core" \
      "awk: read and split the map once" "awk '{n++} END {print n}' $map"
echo "whole commands on x86-run1-lab-crash:"
# The static build is how a release is shipped (no Swift runtime libraries to load).
swift build -c release --static-swift-stdlib --product xenctx-swift --scratch-path .build-static >/dev/null
static=$(swift build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/xenctx-swift
hf 30 "System.map: --unwind auto -C -s MAP" "$bin/xenctx-swift --unwind auto -C -s $map --core $core" \
      "the same, static build" "$static --unwind auto -C -s $map --core $core" \
      "kallsyms from guest memory: --unwind auto -C" "$bin/xenctx-swift --unwind auto -C --core $core" \
      "upstream's options: -s MAP -S -C" "$bin/xenctx-swift -s $map -S -C --core $core"

# --vmlinux against eu-addr2line and llvm-symbolizer, on the same machine and addresses
# (when the -dbg vmlinux is cached).
vmlinux=${XENCTX_VMLINUX:-$HOME/.cache/xenctx-swift/vmlinux/6.1.0-56-amd64/vmlinux-6.1.0-56-amd64}
if [ -s "$vmlinux" ]; then
    "$bin/xenctx-bench" vmlinux "$vmlinux"
    addrs=$("$bin/xenctx-swift" --core "$core" --vmlinux "$vmlinux" --unwind auto -C -l 0 | grep -o '\[<[0-9a-f]*>\]' | tr -d '[<>]' | sort -u | sed 's/^/0x/' | tr '\n' ' ')
    echo "symbolising $(echo $addrs | wc -w) distinct addresses of the x86 crash trace against $(du -h "$vmlinux" | cut -f1) vmlinux:"
    peers=()
    command -v eu-addr2line >/dev/null && peers+=("eu-addr2line -f -i (the same addresses only)" "eu-addr2line -f -i -e $vmlinux $addrs")
    command -v llvm-symbolizer >/dev/null && peers+=("llvm-symbolizer --inlining (the same addresses only)" "llvm-symbolizer --obj=$vmlinux --inlining $addrs")
    hf 20 "xenctx-swift (whole report: core, ORC unwind, DWARF lines, inlines)" "$bin/xenctx-swift --core $core --vmlinux $vmlinux --unwind auto -C -l 0" \
          "the same, static build" "$static --core $core --vmlinux $vmlinux --unwind auto -C -l 0" "${peers[@]}"
else
    echo "(no -dbg vmlinux cached: Scripts/fetch-vmlinux.sh 6.1.0-56-amd64, then rerun for the --vmlinux figures)"
fi

# crash (Debian's crash 8), which reads xl cores of x86_64 PV guests, on the same core and vmlinux.
if [ -s "$vmlinux" ] && command -v crash >/dev/null; then
    printf 'bt -a\nquit\n' > /tmp/xenctx-bench-crash.cmd
    echo "against crash (bt -a) on the same core and vmlinux:"
    hf 3 "xenctx-swift --vmlinux --unwind auto -C" "$bin/xenctx-swift --core $core --vmlinux $vmlinux --unwind auto -C -l 0" \
         "crash -s vmlinux core, bt -a" "crash -s $vmlinux $core -i /tmp/xenctx-bench-crash.cmd"
fi
