#!/usr/bin/env bash
# Builds the release binary with the distribution's own Swift toolchain: Debian 13 (trixie)
# ships Swift 6.0.3 as `swiftlang` for amd64 and arm64, so a trixie machine of either kind
# builds xenctx-swift natively, with nothing from outside Debian.
#
#   Scripts/build-native.sh            # on Debian trixie (amd64 or arm64), as root or with the
#                                      # build deps already installed
#
# It installs what is missing (swiftlang, g++ for libstdc++'s link files, pkg-config, libelf-dev, libdw-dev, libxen-dev, git),
# then runs `swift build -c release --static-swift-stdlib --product xenctx-swift` (linked with lld,
# -z relro -z now) in its own
# scratch folder (.build-native/, so a 6.3 build in .build/ is left alone) and prints where the
# binary is. The Swift runtime is linked in, so the binary needs only libc, libstdc++ and
# libgcc_s; Xen's and elfutils' libraries are loaded with dlopen when used.
# Package it with: SCRATCH=.build-native Scripts/build-deb.sh (which builds the same way).
#
# Where the machine is not trixie, Scripts/trixie-root.sh makes a trixie root (debootstrap,
# cached under ~/.cache/xenctx-swift/trixie-ARCH) and runs this script in it, on this tree:
#   Scripts/trixie-root.sh amd64                      # this script, in the amd64 root
#   Scripts/trixie-root.sh arm64                      # the same under qemu-user (slow)
#
# Environment: SCRATCH (default .build-native), SWIFT (default swift).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH=${SCRATCH:-.build-native}
SWIFT=${SWIFT:-swift}

need=()
for p in swiftlang g++ pkg-config libelf-dev libdw-dev libxen-dev git ca-certificates; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then echo "missing packages (install them as root): ${need[*]}" >&2; exit 1; fi
    echo "installing: ${need[*]}" >&2
    apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The toolchain and its runtime find each other through /proc/self/exe ($ORIGIN): in a chroot,
# /proc must be mounted.
[ -e /proc/self/exe ] || { echo "/proc is not mounted: swift cannot find its own libraries" >&2; exit 1; }
"$SWIFT" --version 2>&1 | head -1 >&2

start=$(date +%s)
# lld and full RELRO, as Scripts/build-deb.sh links (so it reuses this build).
"$SWIFT" build -c release --static-swift-stdlib -Xswiftc -use-ld=lld -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now \
    --product xenctx-swift --scratch-path "$SCRATCH"
bin="$SCRATCH/release/xenctx-swift"
"$bin" --version >/dev/null
echo "built $bin ($(uname -m), $(( $(date +%s) - start )) s): $("$bin" --version)" >&2
