#!/usr/bin/env bash
# quickstart.sh - the first command: installs what is missing, builds kefu, starts it on its
# embedded default (SQLite file in var/, sample knowledge base, two local workers, no API key)
# and opens a chat. kefu keeps running afterwards; `deploy/quickstart.sh stop` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pidfile="$root/var/kefu-broker.pid"

if [ "${1:-}" = "stop" ]; then
    if [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null; then
        echo "kefu stopped"
    else
        echo "kefu is not running"
    fi
    rm -f "$pidfile"
    exit 0
fi

./deploy/setup.sh
echo "kefu: building..."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

mkdir -p var
if ! build/kefuctl --timeout 500 health >/dev/null 2>&1; then
    # Tokens are paced a little so a person sees the answer stream in
    nohup "$root/build/kefu-broker" --db "$root/var/kefu.db" --workers 2 --pace-ms 30 \
        >>"$root/var/kefu.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 50); do
        build/kefuctl --timeout 200 health >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "kefu: started (log: var/kefu.log, database: var/kefu.db)"
fi
# Idempotent: items are keyed by external_id
build/kefuctl kb import deploy/sample-kb.jsonl >/dev/null
sleep 0.5
echo "kefu: sample knowledge base loaded. Stop kefu later with: deploy/quickstart.sh stop"
exec build/kefuctl chat
