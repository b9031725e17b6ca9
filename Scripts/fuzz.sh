#!/usr/bin/env bash
# Fuzzes every parser and walker in-process: libFuzzer with AddressSanitizer, seeded from
# real cases (Fuzz/FuzzTargets: Seeds.swift cuts them from corpus/).
#   Scripts/fuzz.sh [SECONDS per target, default 60] [TARGET…]
# Prints executions and coverage per target; exits 1 if any target found a crash, leak,
# timeout or out-of-memory (the input is kept under .build-fuzz/findings/).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-core report systemmap elf vmcoreinfo kallsyms printk pagetables unwind btf tasks locators printkring layouts kerneloffset cfi}

# libFuzzer without its main (SwiftPM gives the executable its own), from the toolchain.
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")
runtime=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -1)
[ -n "$runtime" ] || { echo "no libclang_rt.fuzzer_no_main in the Swift toolchain at $toolchain" >&2; exit 2; }
swift build -c release --product xenctx-fuzz --scratch-path .build-fuzz \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xlinker -u -Xlinker LLVMFuzzerRunDriver -Xlinker "$runtime" -Xlinker -lstdc++ >&2
fuzz=.build-fuzz/release/xenctx-fuzz

# Seeds from the corpus's real cores and maps, made again whenever the targets change.
cache=${XENCTX_CORPUS_CACHE:-.build/corpus-cache}
seeds=.build-fuzz/seeds
stamp=$(cat Fuzz/FuzzTargets/*.swift | sha256sum | cut -c1-16)
if [ "$(cat "$seeds/.made-from" 2>/dev/null)" != "$stamp" ]; then
    rm -rf "$seeds"
    cores=()
    for c in x86-run1-lab-crash/lab-crash arm-full-a64-crash/a64-crash arm-full-a32-crash/a32-crash arm-full-a32-crash-smp-bootoops1/a32-crash-smp-bootoops1 \
             x86-run10-pv612-crash-tasks/lab-crash arm-tasks612-a64-crash/a64-crash; do
        mkdir -p "$cache/$(dirname $c)"
        [ -f "$cache/$c.core" ] || xz -dc "corpus/cases/$c.core.xz" > "$cache/$c.core"
        cores+=("$cache/$c.core")
    done
    maps=()
    for m in corpus/maps/*.xz; do
        out="$cache/maps/$(basename "$m" .xz)"
        mkdir -p "$cache/maps"
        [ -f "$out" ] || xz -dc "$m" > "$out"
        maps+=("$out")
    done
    ASAN_OPTIONS=detect_leaks=0 "$fuzz" --make-seeds "$seeds" --cores "${cores[@]}" --maps "${maps[@]}" >&2
    # A small executable with a .symtab, for the elf target's --vmlinux path.
    printf 'int data_v = 1;\nint f(int x) { return x * data_v; }\nvoid _start(void) { f(2); for (;;) {} }\n' > .build-fuzz/tiny.c
    gcc -O2 -fno-pie -no-pie -nostdlib -static -o "$seeds/elf/tiny-x86_64.elf" .build-fuzz/tiny.c
    echo "$stamp" > "$seeds/.made-from"
fi

mkdir -p .build-fuzz/findings
status=0
total=0
for t in $targets; do
    case $t in core|report) maxlen=131072 ;; systemmap|layouts) maxlen=32768 ;; cfi) maxlen=16384 ;; *) maxlen=20000 ;; esac
    dict=()
    [ -f "Fuzz/dict/$t.dict" ] && dict=(-dict="Fuzz/dict/$t.dict")
    work=.build-fuzz/corpus/$t
    mkdir -p "$work"
    # Seeds cut from the cases, and seeds kept in the tree (made by a script beside their
    # sources, e.g. Fuzz/cfi/make-seeds.py).
    kept=()
    [ -d "$seeds/$t" ] && kept+=("$seeds/$t")
    [ -d "Fuzz/seeds/$t" ] && kept+=("Fuzz/seeds/$t")
    log=.build-fuzz/$t.log
    set +e
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$fuzz" "$t" -max_total_time="$seconds" -max_len=$maxlen \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=.build-fuzz/findings/$t- "${dict[@]}" \
        "$work" "${kept[@]}" > "$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo 0)
    total=$((total + ${runs:-0}))
    if [ $rc -ne 0 ]; then
        echo "fuzz $t: FINDING (exit $rc) after ${runs:-?} runs; see $log and .build-fuzz/findings/"
        grep -E "ERROR|SUMMARY|Test unit written" "$log" | head -5
        status=1
    else
        echo "fuzz $t: ${runs:-0} runs in ${seconds}s, coverage ${cov:-0} edges, no finding"
    fi
done
echo "fuzz: $total runs in all"
exit $status
