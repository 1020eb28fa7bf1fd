#!/bin/bash
# Runs dlabd with NVML discovery (gpus: auto) on a GPU machine and submits a job that asks for
# one GPU and prints what it sees.
set -u
# Binaries from BIN (default build/bin); on a machine without our libraries, copy them beside
# and set LD_LIBRARY_PATH.
cd "$(dirname "$0")/.."
B=${BIN:-$PWD/build/bin}
D=$(mktemp -d)
$B/dlabd --listen 127.0.0.1:0 --data-dir $D/data > $D/out 2> $D/err &
for i in $(seq 100); do grep -q listening $D/out && break; sleep 0.1; done
URL=$(awk '{print $NF}' $D/out); echo "url $URL"; cat $D/err
mkdir -p $D/code && cat > $D/code/job.yaml <<'Y'
name: gpu-check
command: echo "CUDA_VISIBLE_DEVICES=[$CUDA_VISIBLE_DEVICES]"; nvidia-smi -L; nvidia-smi --query-gpu=index,name,uuid --format=csv,noheader
resources: {cpus: 1, memory: 1Gi, gpus: 1, gpu_type: H100}
Y
$B/dlab --url $URL run $D/code/job.yaml --follow; echo "exit $?"
$B/dlab --url $URL describe 1
printf 'name: too-many\ncommand: "true"\nresources: {gpus: 2}\n' > $D/code/job.yaml
$B/dlab --url $URL run $D/code/job.yaml; echo "exit $?"
kill %1
