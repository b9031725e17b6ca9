#!/usr/bin/env bash
# Runs a command in a Debian 13 (trixie) root with Debian's own Swift (swiftlang 6.0.3) and the
# build deps, on this tree: the default command is Scripts/build-native.sh, so
#
#   Scripts/trixie-root.sh amd64                   # builds .build-native/release/xenctx-swift
#   Scripts/trixie-root.sh amd64 swift build       # any command, run in the tree (/src)
#   Scripts/trixie-root.sh arm64                   # the same for arm64, under qemu-user
#
# proves that the package builds with Swift 6.0 from a bookworm host (as root). The root is made
# once with debootstrap (minbase, then swiftlang g++ libelf-dev libdw-dev libxen-dev pkg-config git)
# and kept under ${XENCTX_CACHE:-~/.cache/xenctx-swift}/trixie-ARCH, outside the repository;
# delete that folder to start again. An arm64 root needs qemu-user-static and binfmt-support on
# the host (this script installs them) and builds many times slower than a native arm64 machine.
# Mounts (/proc, the tree at /src, and any local folder git is told to read GitHub from) are
# made in a private mount namespace, so they go away with the command.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:-amd64}; shift || true
[ $# -gt 0 ] || set -- Scripts/build-native.sh
cache=${XENCTX_CACHE:-$HOME/.cache/xenctx-swift}
root="$cache/trixie-$arch"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# g++ for libstdc++'s static-link files (--static-swift-stdlib links -lstdc++).
pkgs="swiftlang g++ pkg-config libelf-dev libdw-dev libxen-dev git ca-certificates xz-utils"
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot and mounts)" >&2; exit 1; }

if [ ! -e "$root/.xenctx-ready" ]; then
    need=(debootstrap)
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then need+=(qemu-user-static binfmt-support); fi
    for p in "${need[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null
    done
    # Without systemd nothing mounts binfmt_misc, so binfmt-support's handlers stay off and
    # debootstrap cannot run the foreign root's programs ("Unable to execute target
    # architecture", seen on this VM 2026-12-06).
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then
        mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        q=$(case $arch in arm64) echo aarch64 ;; armhf) echo arm ;; *) echo "$arch" ;; esac)
        [ -e "/proc/sys/fs/binfmt_misc/qemu-$q" ] || update-binfmts --enable "qemu-$q"
    fi
    rm -rf "$root.tmp"; mkdir -p "$cache"
    echo "debootstrap trixie $arch into $root" >&2
    debootstrap --variant=minbase --arch="$arch" trixie "$root.tmp" "$mirror" >"$cache/debootstrap-$arch.log" 2>&1 ||
        { tail -20 "$cache/debootstrap-$arch.log" >&2; exit 1; }
    chroot "$root.tmp" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c \
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null"
    echo "$pkgs" >"$root.tmp/.xenctx-ready"
    mv "$root.tmp" "$root"
elif [ "$(cat "$root/.xenctx-ready")" != "$pkgs" ]; then
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin sh -c \
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null"
    echo "$pkgs" >"$root/.xenctx-ready"
fi

if [ -z "${XENCTX_IN_NAMESPACE:-}" ]; then
    XENCTX_IN_NAMESPACE=1 exec unshare --mount --propagation private "$0" "$arch" "$@"
fi
mount -t proc proc "$root/proc"
mkdir -p "$root/src"; mount --bind "$here" "$root/src"
# A worktree's git folder lies outside it (.git is a file naming it): the same path, read-only.
for dir in $(git -C "$here" rev-parse --path-format=absolute --git-dir --git-common-dir 2>/dev/null | sort -u); do
    case $dir in "$here"/*) continue ;; esac
    mkdir -p "$root$dir"; mountpoint -q "$root$dir" || mount --bind -o ro "$dir" "$root$dir"
done
# Where git reads GitHub from a local folder (url.DIR.insteadOf), the root does the same.
gitconfig=""
while read -r key value; do
    dir=${key#url.}; dir=${dir%.insteadof}
    [ -d "$dir" ] || continue
    mkdir -p "$root$dir"; mountpoint -q "$root$dir" || mount --bind -o ro "$dir" "$root$dir"
    gitconfig+="[url \"$dir\"]"$'\n'"	insteadOf = $value"$'\n'
done < <(git config --get-regexp '^url\..*\.insteadof$' || true)
printf '%s[safe]\n\tdirectory = *\n' "$gitconfig" >"$root/root/.gitconfig"
cmd=$(printf '%q ' "$@")
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root TERM=dumb \
    sh -c "cd /src && $cmd"
