#!/usr/bin/env bash
# Builds the Debian package of xenctx-swift: .build-deb/xenctx-swift_VERSION-1_ARCH.deb, checked
# with lintian.
#
#   Scripts/build-deb.sh                 # this machine's architecture: builds the release binary
#                                        # (swift build -c release --static-swift-stdlib)
#   Scripts/build-deb.sh amd64 --binary FILE [--docs-from FILE]
#
# --binary packages a binary built elsewhere (e.g. Scripts/build-native.sh's, with Debian trixie's
# Swift). The man pages and shell completions are made by running a binary of the same commit
# for this machine (--docs-from, default: the packaged binary itself); their text is the same on
# every architecture. A trixie package, built and checked with trixie's own Swift and lintian:
#   Scripts/trixie-root.sh amd64 env SCRATCH=.build-native Scripts/build-deb.sh
# and for arm64 the same in the arm64 root (under qemu-user: slow), or on an arm64 machine
# (trixie with swiftlang, or bookworm with Swift 6): Scripts/build-deb.sh arm64. From this amd64
# host, an arm64 binary built elsewhere (Depends then from its NEEDED entries and symbol versions):
#   Scripts/build-deb.sh arm64 --binary FILE --docs-from .build/release/xenctx-swift
#
# What the package holds: /usr/bin/xenctx-swift (stripped, Swift runtime linked in, no RUNPATH),
# man pages xenctx-swift(1) and xenctx-swift-triage(1) made by swift-argument-parser's manual
# generator from the command's own help (the tool `swift package plugin generate-manual` runs,
# here run on the packaged binary: the plugin would rebuild every product in release mode
# first), bash, zsh and fish completions from `--generate-completion-script`, the copyright
# file and changelog.Debian.gz.
# Depends: dpkg-shlibdeps on the binary's NEEDED libraries (libc6, libstdc++6, libgcc-s1); for
# another architecture, from its NEEDED entries and symbol versions. Xen's and elfutils'
# libraries are loaded with dlopen only when used (a live domain, --vmlinux), so they are
# Recommends (libxenctrl, libxenforeignmemory, libxenguest, libdw) and Suggests (libdebuginfod),
# found from the sonames the binary names and the packages that ship them here.
# (bookworm: libxenmisc4.17, libxenforeignmemory1, libdw1; libdebuginfod1; trixie: libxenmisc4.20, …). `swift package plugin
# generate-manual` works offline with the pinned swift-argument-parser and writes the same page.
# lintian must report nothing (errors, warnings, infos) but the overrides below, each justified.
#
# Environment: SCRATCH (swift build's scratch path, default .build), DEB_MAINTAINER ("Name <address>", default: git's user.name and user.email, else
# the last commit's author),
# DEB_REVISION (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
host=$(dpkg --print-architecture)
arch=$host; binary=""; docs=""
if [ $# -gt 0 ] && [[ $1 != -* ]]; then arch=$1; shift; fi
while [ $# -gt 0 ]; do
    case $1 in
        --binary) binary=$2; shift 2 ;;
        --docs-from) docs=$2; shift 2 ;;
        *) echo "usage: $0 [ARCH] [--binary FILE] [--docs-from FILE]" >&2; exit 64 ;;
    esac
done
case $arch in
    amd64) machine="Advanced Micro Devices X86-64"; triplet=x86_64-linux-gnu ;;
    arm64) machine="AArch64"; triplet=aarch64-linux-gnu ;;
    *) echo "architecture $arch: amd64 or arm64" >&2; exit 64 ;;
esac

need=()
for p in dpkg-dev binutils patchelf lintian man-db xz-utils; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
[ "$arch" = "$host" ] || command -v "$triplet-strip" >/dev/null || need+=("binutils-$triplet")
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The README's build, linked with the toolchain's own lld and -z relro -z now: full RELRO
# (lintian: hardening-no-bindnow; trixie's Swift 6.0.3 links with the system's ld.bfd by
# default, which leaves no RELRO segment here). Scripts/build-native.sh uses the same flags.
build=(-c release --static-swift-stdlib -Xswiftc -use-ld=lld -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now
       --scratch-path "${SCRATCH:-.build}")
if [ -z "$binary" ]; then
    [ "$arch" = "$host" ] || { echo "for $arch (not this machine's $host), give --binary" >&2; exit 64; }
    swift build "${build[@]}" --product xenctx-swift
    binary="$(swift build "${build[@]}" --show-bin-path)/xenctx-swift"
fi
docs=${docs:-$binary}
readelf -h "$binary" | grep -q "Machine: *$machine" || { echo "$binary is not an $arch binary" >&2; exit 1; }
"$docs" --version >/dev/null || { echo "$docs does not run here: give --docs-from a binary for $host" >&2; exit 1; }

version="$("$docs" --version | sed -n 's/^xenctx-swift //p')-${DEB_REVISION:-1}"
[ -n "${version%-*}" ] || { echo "no version from $docs --version" >&2; exit 1; }
maintainer=${DEB_MAINTAINER:-}
if [ -z "$maintainer" ]; then
    if git config user.email >/dev/null; then maintainer="$(git config user.name) <$(git config user.email)>"
    else maintainer=$(git log -1 --format='%an <%ae>'); fi
fi
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
out=.build-deb; stage="$out/xenctx-swift_${version}_$arch"
rm -rf "$stage"; mkdir -p "$stage/DEBIAN"
install -d "$stage/usr/bin" "$stage/usr/share/man/man1" "$stage/usr/share/doc/xenctx-swift" \
    "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/lintian/overrides"

# The binary: symbols and the toolchain's $ORIGIN RUNPATH removed (nothing is next to it).
install -m 0755 "$binary" "$stage/usr/bin/xenctx-swift"
strip=strip; [ "$arch" = "$host" ] || strip="$triplet-strip"
"$strip" --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/xenctx-swift"
patchelf --remove-rpath "$stage/usr/bin/xenctx-swift"

# Man pages: swift-argument-parser's generate-manual (the tool behind its plugin), on the help
# the command dumps. The help subcommand is ArgumentParser's own; triage gets its own page.
swift build "${build[@]}" --product generate-manual >/dev/null
genman="$(swift build "${build[@]}" --show-bin-path)/generate-manual"
man_date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%F)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$genman" "$docs" --date "$man_date" --authors "$maintainer" -o "$tmp"
printf '#!/bin/sh\nexec "%s" triage "$@"\n' "$(realpath "$docs")" >"$tmp/triage"; chmod +x "$tmp/triage"
mkdir "$tmp/triage.man"; "$genman" "$tmp/triage" --date "$man_date" --authors "$maintainer" -o "$tmp/triage.man"
# mdoc wants no empty lines (man --warnings: "Empty input line"): a paragraph break is .Pp.
tidy() { sed -e 's/^$/.Pp/' -e '/^\.Ar subcommand$/d' "$@"; }
tidy "$tmp/xenctx-swift.1" | gzip -9n >"$stage/usr/share/man/man1/xenctx-swift.1.gz"
tidy -e 's/^\.Dt "XENCTX-SWIFT TRIAGE" 1$/.Dt XENCTX-SWIFT-TRIAGE 1/' \
     -e 's/^\.Nm "xenctx-swift triage"$/.Nm xenctx-swift-triage/' \
     -e '/^\.Sh SYNOPSIS$/{n;s/^\.Nm$/.Nm xenctx-swift Cm triage/}' "$tmp/triage.man/xenctx-swift triage.1" |
    gzip -9n >"$stage/usr/share/man/man1/xenctx-swift-triage.1.gz"

# bash-completion sources its scripts: no #! line (lintian: bash-completion-with-hashbang).
"$docs" --generate-completion-script bash | sed '1{/^#!/d}' >"$stage/usr/share/bash-completion/completions/xenctx-swift"
"$docs" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_xenctx-swift"
"$docs" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/xenctx-swift.fish"

# Depends on the NEEDED libraries.
if [ "$arch" = "$host" ]; then
    mkdir -p "$tmp/shlibs/debian"
    printf 'Source: xenctx-swift\n\nPackage: xenctx-swift\nArchitecture: any\n' >"$tmp/shlibs/debian/control"
    depends=$(cd "$tmp/shlibs" && dpkg-shlibdeps -O -e "$repo/$stage/usr/bin/xenctx-swift" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
else
    # No $arch libraries here to ask: libc6 at the newest GLIBC_ symbol version the binary uses,
    # libstdc++6 at the GCC release that brought its newest GLIBCXX_ version.
    syms=$(readelf -W --dyn-syms "$stage/usr/bin/xenctx-swift")
    glibc=$(grep -o 'GLIBC_[0-9.]*' <<<"$syms" | sed 's/GLIBC_//' | sort -V | tail -1)
    cxx=$(grep -o 'GLIBCXX_3\.4\.[0-9]*' <<<"$syms" | sed 's/GLIBCXX_//' | sort -V | tail -1)
    case $cxx in 3.4.2[0-9]) gcc=9 ;; 3.4.30) gcc=12 ;; 3.4.31|3.4.32) gcc=13 ;; 3.4.33) gcc=14 ;; *) gcc="" ;; esac
    depends="libc6 (>= $glibc), libgcc-s1 (>= 3.0), libstdc++6${gcc:+ (>= $gcc)}"
    for lib in $(readelf -d "$stage/usr/bin/xenctx-swift" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
        case $lib in libc.so.6|libm.so.6|ld-linux*|libstdc++.so.6|libgcc_s.so.1) ;;
            *) echo "NEEDED $lib: no package known for it" >&2; exit 1 ;; esac
    done
fi
[ -n "$depends" ] || { echo "no Depends computed" >&2; exit 1; }

# Recommends/Suggests: the libraries loaded with dlopen, by the sonames the binary names. It names
# libxenctrl and libxenguest of each Xen release it opens (4.20, 4.17); the release installed here
# (bookworm's 4.17, trixie's 4.20) is the one this package is for.
recommends=(); suggests=(); found=" "
for soname in $(strings -a "$stage/usr/bin/xenctx-swift" | grep -xE 'lib(xenctrl|xenforeignmemory|xenguest|dw|debuginfod)\.so\.[0-9.]+' | sort -u); do
    pkg=$(dpkg -S "*/$soname" 2>/dev/null | head -1 | cut -d: -f1) || true
    [ -n "$pkg" ] || continue
    found+="${soname%%.so*} "
    case $soname in libdebuginfod*) suggests+=("$pkg") ;; *) recommends+=("$pkg") ;; esac
done
for lib in libxenctrl libxenforeignmemory libxenguest libdw; do
    [[ $found == *" $lib "* ]] || echo "warning: no installed package ships the $lib the binary names: left out of Recommends" >&2
done
join() { printf '%s\n' "$@" | sort -u | paste -sd, | sed 's/,/, /g'; }

cat >"$stage/usr/share/doc/xenctx-swift/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: xenctx-swift
Comment: The binary links in the Swift standard library and runtime, FoundationEssentials
 and swift-argument-parser statically.

Files: *
Copyright: 2026 the xenctx-swift authors
License: other
 No licence has been declared for xenctx-swift yet: all rights are reserved by
 its authors.

Files: swift-stdlib/* swift-foundation/* swift-argument-parser/*
Copyright: 2014-2025 Apple Inc. and the Swift project authors
License: Apache-2.0 with Runtime Library Exception
 Licensed under the Apache License, Version 2.0, with the Runtime Library
 Exception: as an exception, if you use this Software to compile your source
 code and portions of this Software are embedded into the binary product as a
 result, you may redistribute such product without providing attribution as
 would otherwise be required by Sections 4(a), 4(b) and 4(d) of the License.
 .
 On Debian systems, the full text of the Apache License, Version 2.0, can be
 found in /usr/share/common-licenses/Apache-2.0.
EOF

changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
cat <<EOF | gzip -9n >"$stage/usr/share/doc/xenctx-swift/changelog.Debian.gz"
xenctx-swift ($version) unstable; urgency=medium

  * Package built by Scripts/build-deb.sh from commit $(git rev-parse --short HEAD).

 -- $maintainer  $changelog_date
EOF

# Each override, with why it stays.
cat >"$stage/usr/share/lintian/overrides/xenctx-swift" <<'EOF'
# Not uploaded to Debian: no ITP bug to close.
xenctx-swift: initial-upload-closes-no-bugs
# Strings of the Swift runtime and FoundationEssentials linked in (tables of truncated words);
# none is in the project's own sources.
xenctx-swift: spelling-error-in-binary * [usr/bin/xenctx-swift]
# SwiftPM compiles the C bridges (CXenLive, CDwarf) without _FORTIFY_SOURCE; their memcpy and
# snprintf calls have sizes that are constant or checked beside them. Swift code makes none.
xenctx-swift: hardening-no-fortify-functions [usr/bin/xenctx-swift]
EOF

find "$stage/usr" -type d -exec chmod 0755 {} +
find "$stage/usr/share" -type f -exec chmod 0644 {} +
size=$(du -k -s --apparent-size "$stage/usr" | cut -f1)
{
    echo "Package: xenctx-swift"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    echo "Depends: $depends"
    [ ${#recommends[@]} -eq 0 ] || echo "Recommends: $(join "${recommends[@]}")"
    [ ${#suggests[@]} -eq 0 ] || echo "Suggests: $(join "${suggests[@]}")"
    echo "Section: admin"
    echo "Priority: optional"
    cat <<'EOF'
Description: vCPU context inspector for Xen guests, from cores or live domains
 Prints a Xen guest's vCPU registers, stacks and call traces, with the options
 and output of upstream xenctx, from a core written by "xl dump-core" or from a
 live domain in dom0 (paused only while its pages are copied).
 .
 It needs no symbol file: symbols, the kernel log, tasks and modules come from
 the guest kernel's own memory (kallsyms, VMCOREINFO, BTF). Call traces follow
 the kernel's own unwind data (ORC, EHABI, frame records) on x86 (32- and
 64-bit PV, PVH, HVM), arm64 and 32-bit ARM guests. It also lists hung tasks
 and the locks they wait for, says why a guest stopped, and triages a
 directory of cores by crash signature.
 .
 Xen's libraries are loaded only for live domains, elfutils' libdw only for
 --vmlinux.
EOF
} >"$stage/DEBIAN/control"
(cd "$stage" && find usr -type f -print0 | sort -z | xargs -0 md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

deb="$out/xenctx-swift_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
dpkg-deb --info "$deb" | sed -n '/Package:/,/^ Description/p' >&2
echo "lintian:" >&2
lintian --fail-on error,warning --display-info "$deb" >&2
echo "$deb"
