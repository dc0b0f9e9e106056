#!/usr/bin/env bash
# setup.sh - installs what kefu needs to build and test from Debian 12 packages, only if missing.
set -euo pipefail
packages=(gcc make cmake pkg-config libzmq3-dev libmsgpack-dev libsqlite3-dev libcurl4-openssl-dev
          python3 python3-zmq python3-msgpack)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
echo "kefu: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "kefu: run as root, or: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
