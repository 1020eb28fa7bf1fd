#!/bin/bash
# On a machine with an NVIDIA GPU: runs dlabd with NVML discovery (gpus: auto) and telemetry
# every second, submits a job that asks for one GPU and prints what it sees, then prints what
# NVML returned: GET /api/v1/telemetry, the DCGM-style lines of /metrics, `dlab top --once`, and
# the job's GPU utilisation series (system/...). Not part of make test (CI has no GPU).
# Usage: scripts/gpu-smoke.sh   (BIN=DIR: the binaries, default build/bin)
set -u
cd "$(dirname "$0")/.."
B=${BIN:-$PWD/build/bin}
D=$(mktemp -d)
export DLAB_BOOTSTRAP_ACCESS_KEY_ID=AKGPUSMOKE0000000000
export DLAB_BOOTSTRAP_SECRET_ACCESS_KEY=gpu-smoke-secret-0123456789abcdefghijk
export DLAB_ACCESS_KEY_ID=$DLAB_BOOTSTRAP_ACCESS_KEY_ID
export DLAB_SECRET_ACCESS_KEY=$DLAB_BOOTSTRAP_SECRET_ACCESS_KEY
printf 'monitoring: {interval: 1s, window: 10m}\n' > $D/dlabd.yaml
$B/dlabd --listen 127.0.0.1:0 --data-dir $D/data --config $D/dlabd.yaml > $D/out 2> $D/err &
for i in $(seq 100); do grep -q listening $D/out && break; sleep 0.1; done
URL=$(awk '{print $NF}' $D/out); echo "url $URL"; cat $D/err
export DLAB_URL=$URL
mkdir -p $D/code && cat > $D/code/job.yaml <<'Y'
name: gpu-check
command: echo "CUDA_VISIBLE_DEVICES=[$CUDA_VISIBLE_DEVICES]"; nvidia-smi -L; nvidia-smi --query-gpu=index,name,uuid,utilization.gpu,memory.used,temperature.gpu,power.draw --format=csv,noheader; sleep 8
resources: {cpus: 1, memory: 1Gi, gpus: 1}
Y
$B/dlab run $D/code/job.yaml --follow; echo "exit $?"
$B/dlab describe 1
echo "--- dlab top --once (GET /api/v1/telemetry and the running jobs)"
$B/dlab top --once
echo "--- /metrics"; curl -s "$URL/metrics" | grep -E '^DCGM_|^dlab_host' | head -20
echo "--- the job's GPU series"
$B/dlab metrics 1
printf 'name: too-many\ncommand: "true"\nresources: {gpus: 64}\n' > $D/code/job.yaml
$B/dlab run $D/code/job.yaml; echo "exit $? (refused: more GPUs than the largest node)"
kill %1
