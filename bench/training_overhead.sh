#!/usr/bin/env bash
# Benchmark 3: overhead of running the digits example under dlab.
#
# Alternates, RUNS times each (default 5):
#   direct: cd examples/digits && OMP_NUM_THREADS=2 /usr/bin/python3 train.py --epochs 10
#   dlab:   build/bin/dlab --url URL run examples/digits/job.yaml --follow
# against a private dlabd (127.0.0.1, temporary data dir, config `node: {gpus: none}`).
# For dlab it records the job's own duration (end_time - start_time from the API) and the wall
# time of the whole `dlab run --follow` (pack, upload, submit, schedule, run, stream, exit).
# Reports medians and the ratio dlab/direct (target <= 1.02).
set -euo pipefail

RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$ROOT/build/bin
PY=/usr/bin/python3
TMP=$(mktemp -d /tmp/dlab-bench-train.XXXXXX)
DLABD_PID=

cleanup() {
  if [[ -n $DLABD_PID ]] && kill -0 "$DLABD_PID" 2>/dev/null; then
    kill -TERM "$DLABD_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DLABD_PID" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$DLABD_PID" 2>/dev/null || true
  fi
  [[ -n ${DLAB_BENCH_KEEP:-} ]] || rm -rf "$TMP"
}
trap cleanup EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
iso2s() { date -d "$1" +%s.%N; }

echo 'node: {gpus: none}' > "$TMP/dlabd.yaml"
mkfifo "$TMP/out"
# The superadmin key that the CLI signs with (dlabd's bootstrap settings from the environment).
export DLAB_ACCESS_KEY_ID=AKBENCH0000000000000 DLAB_SECRET_ACCESS_KEY=bench-secret-0123456789abcdefghijklmnop
DLAB_BOOTSTRAP_ACCESS_KEY_ID=$DLAB_ACCESS_KEY_ID DLAB_BOOTSTRAP_SECRET_ACCESS_KEY=$DLAB_SECRET_ACCESS_KEY \
"$BIN/dlabd" --listen 127.0.0.1:0 --data-dir "$TMP/data" --config "$TMP/dlabd.yaml" \
  > "$TMP/out" 2> "$TMP/dlabd.log" &
DLABD_PID=$!
exec 3< "$TMP/out"
read -r -t 20 line <&3 || { echo "dlabd did not start:"; cat "$TMP/dlabd.log"; exit 1; }
# Keep draining dlabd's stdout so it never blocks on a full pipe.
cat <&3 > /dev/null &
URL=${line#dlabd listening on }
URL=${URL%/}
[[ $URL == http://127.0.0.1:* ]] || { echo "unexpected first line: $line"; exit 1; }

echo "== training overhead: digits example, $RUNS runs each, alternating (dlabd at $URL)"
printf '%-4s %10s %12s %14s %s\n' run "direct s" "dlab job s" "dlab wall s" "dlab job id/state"
: > "$TMP/direct"; : > "$TMP/job"; : > "$TMP/wall"
for i in $(seq "$RUNS"); do
  # direct (checkpoints go to a scratch dir, as they do under dlab)
  t0=$(now)
  (cd "$ROOT/examples/digits" && DLAB_CHECKPOINT_DIR="$TMP/ckpt-$i" OMP_NUM_THREADS=2 \
     timeout 600 "$PY" train.py --epochs 10 > "$TMP/direct-$i.log" 2>&1)
  t1=$(now)
  direct=$(echo "$t1 - $t0" | bc -l)

  # under dlab
  t0=$(now)
  timeout 600 "$BIN/dlab" --url "$URL" run "$ROOT/examples/digits/job.yaml" --follow \
    > "$TMP/dlab-$i.log" 2>&1
  t1=$(now)
  wall=$(echo "$t1 - $t0" | bc -l)
  job=$("$BIN/dlab" --url "$URL" ls --limit 1 --json)
  id=$(jq -r '.jobs[0].id' <<<"$job")
  state=$(jq -r '.jobs[0].state' <<<"$job")
  [[ $state == SUCCEEDED ]] || { echo "job $id ended $state"; cat "$TMP/dlab-$i.log"; exit 1; }
  st=$(iso2s "$(jq -r '.jobs[0].start_time' <<<"$job")")
  et=$(iso2s "$(jq -r '.jobs[0].end_time' <<<"$job")")
  dur=$(echo "$et - $st" | bc -l)

  echo "$direct" >> "$TMP/direct"; echo "$dur" >> "$TMP/job"; echo "$wall" >> "$TMP/wall"
  echo "$dur / $direct" | bc -l >> "$TMP/paired"
  printf '%-4s %10.3f %12.3f %14.3f %s\n' "$i" "$direct" "$dur" "$wall" "$id/$state"
done

md=$(median < "$TMP/direct"); mj=$(median < "$TMP/job"); mw=$(median < "$TMP/wall")
printf '%-4s %10.3f %12.3f %14.3f\n' med "$md" "$mj" "$mw"
rj=$(echo "$mj / $md" | bc -l); rw=$(echo "$mw / $md" | bc -l)
printf 'ratio dlab/direct: job duration %.3f, dlab run --follow wall %.3f (target <= 1.02: %s / %s)\n' \
  "$rj" "$rw" "$(awk -v r="$rj" 'BEGIN{print (r<=1.02)?"met":"MISSED"}')" \
  "$(awk -v r="$rw" 'BEGIN{print (r<=1.02)?"met":"MISSED"}')"
printf 'median of the per-run ratios (each dlab run against the direct run before it): %.3f\n' \
  "$(median < "$TMP/paired")"
tail -1 "$TMP/direct-$RUNS.log" | sed 's/^/last direct run: /'
