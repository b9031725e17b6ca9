#!/usr/bin/env bash
# Runs every test (unit, malformed-input, and every case in corpus/ against its truth).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build --build-tests
swift test
