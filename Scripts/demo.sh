#!/usr/bin/env bash
# Runs xenctx-swift on a bundled real case: a 32-bit ARM guest on arm64 Xen 4.17 after
# `echo c > /proc/sysrq-trigger` (corpus/cases/arm-full-a32-crash), all vCPUs, with symbols.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
cache=${XENCTX_CORPUS_CACHE:-.build/corpus-cache}
mkdir -p "$cache/maps" "$cache/arm-full-a32-crash"
core="$cache/arm-full-a32-crash/a32-crash.core"
map="$cache/maps/6.1.0-50-armmp-lpae.System.map"
[ -f "$core" ] || xz -dc corpus/cases/arm-full-a32-crash/a32-crash.core.xz > "$core"
[ -f "$map" ] || xz -dc corpus/maps/6.1.0-50-armmp-lpae.System.map.xz > "$map"
swift build -c release --product xenctx-swift >&2
"$(swift build -c release --show-bin-path)/xenctx-swift" --describe -s "$map" -C --core "$core" "$@"
