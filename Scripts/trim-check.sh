#!/usr/bin/env bash
# Trims every corpus case's core (`xenctx-swift trim`) and compares the views the copy serves
# (-C, --describe, --log --tasks --stack --modules, --json, --summary, --hung, --meminfo) on the
# copy against the core: stdout, stderr and exit status, with timings and the lines about the
# file itself (path, size, page count, the trim note) masked. Prints one line per case: what was
# kept, and DIFF[view] where a view differs. Not part of CI (about 3 minutes; the tests check
# one case of each kind of guest). Needs the corpus cores decompressed into
# .build/corpus-cache (the tests do it) and a build (B= a binary, default the debug build).
set -uo pipefail
cd "$(dirname "$0")/.."
B=${B:-.build/debug/xenctx-swift}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mask() { sed -E "s#$2#CORE#g; s/[0-9.]+ ms/N ms/g; /^# (core|guest pages|trimmed by)/d" "$1"; }
status=0
for d in corpus/cases/*/; do
  n=$(basename "$d")
  core=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['core'])" "$d/case.json")
  C=.build/corpus-cache/$n/${core%.xz}
  [ -f "$C" ] || { echo "$n: not decompressed ($C)"; continue; }
  T=$out/$n.core
  msg=$("$B" trim "$C" "$T" 2>&1); rc=$?
  line="$n: trim exit $rc: ${msg#xenctx-swift: }"
  if [ $rc = 0 ]; then
    for v in "-C" "-C --describe" "-C --log --tasks --stack --modules" "-C --json --log --tasks --stack --modules" "--summary" "--hung" "--meminfo"; do
      "$B" --core "$C" $v >"$out/a.out" 2>"$out/a.err"; ea=$?
      "$B" --core "$T" $v >"$out/b.out" 2>"$out/b.err"; eb=$?
      if [ $ea != $eb ] || ! cmp -s <(mask "$out/a.out" "$C") <(mask "$out/b.out" "$T") || ! cmp -s <(mask "$out/a.err" "$C") <(mask "$out/b.err" "$T"); then
        line="$line | DIFF[$v]"; status=1
      fi
    done
    rm -f "$T"
  fi
  echo "$line"
done
exit $status
