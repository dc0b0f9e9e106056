#!/usr/bin/env bash
# test.sh - the second command: installs what is missing, builds kefu twice (plain, and with
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs the whole test suite on each build.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/setup.sh
jobs=$(nproc)
run () {
    local dir=$1; shift
    echo "=== kefu tests: $dir ($*)"
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j"$jobs" >/dev/null
    (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 300)
}
run build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run build-sanitize -DCMAKE_BUILD_TYPE=Debug -DKEFU_SANITIZE=ON
