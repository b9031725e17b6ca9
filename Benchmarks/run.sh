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
# System.map: loading it against merely reading and splitting it once (awk).
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 3 --runs 30 --style basic -N \
        -n "xenctx-swift -s MAP (load the map, then a registers-only view)" "$bin/xenctx-swift -s $map --unwind scan -l 0 0 --core $core" \
        -n "xenctx-swift, no map, same view" "$bin/xenctx-swift --unwind scan -l 0 0 --core $core" \
        -n "awk: read and split the map once" "awk '{n++} END {print n}' $map" 2>&1 | grep -E "Time|Range|xenctx|awk"
fi
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 2 --runs 20 --style basic -N \
        "$bin/xenctx-swift -s $map -S -C --core $core" 2>&1 | grep -E "Time|Range"
    # Symbols from guest memory against the System.map, whole command, same report.
    hyperfine --warmup 3 --runs 30 --style basic -N \
        -n "kallsyms from guest memory: --unwind auto -C" "$bin/xenctx-swift --unwind auto -C --core $core" \
        -n "System.map: --unwind auto -C -s MAP" "$bin/xenctx-swift --unwind auto -C -s $map --core $core" 2>&1 | grep -E "Time|Range|faster|kallsyms|System.map"
else
    echo "(install hyperfine to time the whole command)"
fi

# --vmlinux against eu-addr2line, on the same machine and addresses (when the -dbg vmlinux is cached).
vmlinux=${XENCTX_VMLINUX:-$HOME/.cache/xenctx-swift/vmlinux/6.1.0-56-amd64/vmlinux-6.1.0-56-amd64}
if [ -s "$vmlinux" ] && command -v hyperfine >/dev/null && command -v eu-addr2line >/dev/null; then
    addrs=$("$bin/xenctx-swift" --core "$core" --vmlinux "$vmlinux" --unwind auto -C -l 0 | grep -o '\[<[0-9a-f]*>\]' | tr -d '[<>]' | sort -u | sed 's/^/0x/' | tr '\n' ' ')
    echo "symbolising $(echo $addrs | wc -w) distinct addresses of the x86 crash trace against $(du -h "$vmlinux" | cut -f1) vmlinux:"
    hyperfine --warmup 1 --runs 5 --style basic -N \
        -n "xenctx-swift (whole report: core, ORC unwind, DWARF lines, inlines)" "$bin/xenctx-swift --core $core --vmlinux $vmlinux --unwind auto -C -l 0" \
        -n "eu-addr2line -f -i (the same addresses only)" "eu-addr2line -f -i -e $vmlinux $addrs" 2>&1 | grep -E "Time|Range|xenctx-swift|eu-addr2line|faster"
else
    echo "(no -dbg vmlinux cached: Scripts/fetch-vmlinux.sh 6.1.0-56-amd64, then rerun for the --vmlinux figures)"
fi

# crash (Debian's crash 8), which reads xl cores of x86_64 PV guests, on the same core and vmlinux.
if [ -s "$vmlinux" ] && command -v crash >/dev/null && command -v hyperfine >/dev/null; then
    printf 'bt -a\nquit\n' > /tmp/xenctx-bench-crash.cmd
    hyperfine --runs 3 --style basic -N \
        -n "xenctx-swift --vmlinux --unwind auto -C" "$bin/xenctx-swift --core $core --vmlinux $vmlinux --unwind auto -C -l 0" \
        -n "crash -s vmlinux core, bt -a" "crash -s $vmlinux $core -i /tmp/xenctx-bench-crash.cmd" 2>&1 | grep -E "Time|Range|faster|xenctx-swift|crash"
fi
