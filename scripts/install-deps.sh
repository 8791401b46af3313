#!/usr/bin/env bash
# Installs what building, running and testing Sluice needs on Debian 12, using
# Debian's own packages only. Does nothing when everything is already there.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config clang libclang-rt-14-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev libpqxx-dev libhiredis-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libicu-dev libpcre2-dev libgumbo-dev liburing-dev libssl-dev
  redis-server redis-tools postgresql postgresql-contrib pgbouncer curl ca-certificates python3 python3-yaml
  systemd
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "Installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
