#!/usr/bin/env bash
# Installs the Debian packages dlab needs to build, test and run its examples.
# Idempotent: when everything is present it only checks (well under a second).
# Run from the repository, it also installs the npm packages of web/ and tests/kube_schema.
# Usage: scripts/install-deps.sh [--bench | --fuzz]   (--bench adds jq, bc and wrk for bench/;
#        --fuzz adds clang and its libFuzzer runtime, libclang-rt-14-dev, for scripts/fuzz.sh)
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
  libboost-dev libabsl-dev nlohmann-json3-dev libyaml-cpp-dev libsqlite3-dev
  libssl-dev libarchive-dev libspdlog-dev libfmt-dev libcli11-dev
  libcurl4-openssl-dev libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  protobuf-compiler libprotobuf-dev
  python3-torch python3-sklearn python3-numpy python3-pytest python3-yaml python3-jsonschema
  slurmctld slurmd slurm-client munge slurmrestd  # the Slurm backend (scripts/slurm-cluster.sh)
  iproute2  # its two-node cluster: a network namespace per node
  wget  # the Kubernetes backend's tests: the pods' init container fetches the code with it
  chromium  # the web console's browser tests (Playwright drives it headless)
)
# Node.js and npm for the web console (web/) and tests/kube_schema: Debian's, unless a node
# (e.g. NodeSource's, which bundles npm) is already on PATH.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
if [[ "${1:-}" == "--bench" ]]; then packages+=(jq bc wrk); fi
if [[ "${1:-}" == "--fuzz" ]]; then packages+=(clang libclang-rt-14-dev); fi

# One dpkg-query for all packages (one per package took over a second).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null || true)
installed=$'\n'$installed$'\n'
missing=()
for p in "${packages[@]}"; do
  [[ $installed == *$'\n'"$p install ok installed"$'\n'* ]] || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The npm packages of the web console (web/: Vite, TypeScript, uPlot, Playwright) and of the
# Kubernetes schema validator (tests/kube_schema/validate.mjs), when this script sits in the
# repository: npm install when node_modules is missing or older than package-lock.json (npm writes
# node_modules/.package-lock.json last, so an interrupted install is redone).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for dir in "$repo/web" "$repo/tests/kube_schema"; do
  if [[ -f $dir/package-lock.json &&
        ! $dir/node_modules/.package-lock.json -nt $dir/package-lock.json ]]; then
    echo "install-deps: npm install in ${dir#"$repo/"}"
    # `npm install` with the committed lock, not `npm ci`: the registry reachable here lists only
    # some of rollup's optional per-platform packages, so the lock has only those, and npm ci
    # refuses such a lock (npm install takes it as it is and leaves it unchanged).
    npm install --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
  fi
done
