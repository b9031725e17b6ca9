#!/usr/bin/env bash
# Builds the .deb for this machine (Scripts/build-deb.sh, lintian included), installs it with
# dpkg, runs the installed /usr/bin/xenctx-swift on a corpus core and checks that it prints what
# the build the tests ran prints (.build/debug/xenctx-swift, else .build/release), then removes
# the package. As root; CI runs it after Scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
deb=$(Scripts/build-deb.sh | tail -1)
case=x86-run1-lab-crash
core=.build/corpus-cache/$case/lab-crash.core        # the tests' decompressed copy, if there
if [ ! -s "$core" ]; then
    mkdir -p "$(dirname "$core")"
    xz -dc "corpus/cases/$case/lab-crash.core.xz" | cp --sparse=always /dev/stdin "$core"
fi
tested=.build/debug/xenctx-swift; [ -x "$tested" ] || tested=.build/release/xenctx-swift
tmp=$(mktemp -d)
trap 'dpkg -r xenctx-swift >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
dpkg -i "$deb" >/dev/null
status=0
for opts in "-C" "-C --log --tasks --stack --modules"; do
    # shellcheck disable=SC2086
    /usr/bin/xenctx-swift --core "$core" $opts >"$tmp/installed" 2>&1 || status=$?
    "$tested" --core "$core" $opts >"$tmp/tested" 2>&1 || true
    if [ "$status" != 0 ] || ! cmp -s "$tmp/installed" "$tmp/tested"; then
        echo "installed xenctx-swift $opts on $case: exit $status, output differs from $tested" >&2
        diff "$tmp/tested" "$tmp/installed" | head -20 >&2
        exit 1
    fi
    echo "installed $(dpkg-query -W -f='${Package} ${Version}' xenctx-swift): --core $case $opts: $(wc -l <"$tmp/installed") lines, as $tested" >&2
done
dpkg -r xenctx-swift >/dev/null
[ ! -e /usr/bin/xenctx-swift ] || { echo "dpkg -r left /usr/bin/xenctx-swift" >&2; exit 1; }
echo "deb: $deb built, installed, run and removed in $(( $(date +%s) - start )) s" >&2
