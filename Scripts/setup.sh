#!/usr/bin/env bash
# Installs what building and testing need, only when missing (Debian bookworm, as root).
set -euo pipefail
need=()
for p in xz-utils pkg-config libelf-dev libdw-dev libxen-dev elfutils debuginfod dwz binutils gcc gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf systemd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH (this project needs Swift 6)" >&2; exit 1; }
