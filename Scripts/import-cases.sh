#!/usr/bin/env bash
# Copies the lab's real cases into corpus/ (run by a developer, never by tests or CI).
# Usage: Scripts/import-cases.sh [SHARED_CASES_DIR]   (default ../shared/cases)
# Each case keeps its core (xz), console log, case.json and upstream xenctx outputs;
# System.map files are stored once per kernel under corpus/maps/ (cases name theirs in case.json "map").
set -euo pipefail
src=${1:-"$(dirname "$0")/../../shared/cases"}
dst="$(dirname "$0")/../corpus"
mkdir -p "$dst/maps" "$dst/cases"
for dir in "$src"/*/; do
    name=$(basename "$dir")
    kernel=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel"])' "$dir/case.json")
    map="$dst/maps/$kernel.System.map.xz"
    if [ ! -f "$map" ]; then cp "$dir/System.map.xz" "$map"; fi
    cmp -s "$dir/System.map.xz" "$map" || { echo "$name: System.map differs from $map" >&2; exit 1; }
    mkdir -p "$dst/cases/$name/upstream"
    cp "$dir"/*.core.xz "$dir/console.log" "$dir/case.json" "$dst/cases/$name/"
    cp "$dir"/upstream/* "$dst/cases/$name/upstream/"
    if [ -f "$dir/xen-hvmctx.txt" ]; then cp "$dir/xen-hvmctx.txt" "$dst/cases/$name/"; fi
    echo "$kernel" > "$dst/cases/$name/kernel"
done
echo "imported $(ls "$dst/cases" | wc -l) cases"
