#!/usr/bin/env bash
# Installs the Debian packages dlab needs to build, test and run its examples.
# Idempotent: when everything is present it only checks (well under a second).
# Usage: scripts/install-deps.sh [--bench | --fuzz]   (--bench adds jq, bc and wrk for bench/;
#        --fuzz adds clang and its libFuzzer runtime, libclang-rt-14-dev, for scripts/fuzz.sh)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
  libboost-dev libabsl-dev nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev
  libssl-dev libarchive-dev libspdlog-dev libfmt-dev libcli11-dev
  libcurl4-openssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  protobuf-compiler libprotobuf-dev
  python3-torch python3-sklearn python3-numpy python3-pytest python3-yaml python3-jsonschema
  slurmctld slurmd slurm-client munge  # the Slurm backend's tests (scripts/slurm-cluster.sh)
)
if [[ "${1:-}" == "--bench" ]]; then packages+=(jq bc wrk); fi
if [[ "${1:-}" == "--fuzz" ]]; then packages+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
