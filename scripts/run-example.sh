#!/usr/bin/env bash
# Starts dlabd in the background (unless one already answers) with its embedded defaults and
# the data directory .data/, then submits examples/digits. `--stop` stops that dlabd
# (running jobs keep running under their supervisors).
set -euo pipefail
cd "$(dirname "$0")/.."
URL=${DLAB_URL:-http://127.0.0.1:8080}
LISTEN=${URL#http://}
DATA_DIR=${DLAB_DATA_DIR:-$PWD/.data}
BIN=${DLAB_BIN_DIR:-$PWD/build/bin}
PIDFILE=$DATA_DIR/dlabd.pid

if [[ "${1:-}" == "--stop" ]]; then
  if [[ -f $PIDFILE ]] && kill "$(cat "$PIDFILE")" 2>/dev/null; then echo "dlabd stopped"; fi
  rm -f "$PIDFILE"
  exit 0
fi

mkdir -p "$DATA_DIR"
if curl -fsS "$URL/healthz" >/dev/null 2>&1; then
  echo "dlabd already answers at $URL"
else
  setsid "$BIN/dlabd" --listen "$LISTEN" --data-dir "$DATA_DIR" \
    >"$DATA_DIR/dlabd.out" 2>"$DATA_DIR/dlabd.log" </dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 100); do
    grep -q "listening" "$DATA_DIR/dlabd.out" 2>/dev/null && break
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "dlabd failed to start:"; cat "$DATA_DIR/dlabd.log"; exit 1
    fi
    sleep 0.1
  done
  cat "$DATA_DIR/dlabd.out"
  echo "dlabd log: $DATA_DIR/dlabd.log (stop it with: make stop)"
fi

# Sign in once: with the first superadmin's password that dlabd wrote on its first start,
# unless the CLI already has a key that works (env or config file).
if ! "$BIN/dlab" --url "$URL" whoami >/dev/null 2>&1; then
  creds=$DATA_DIR/initial-credentials
  if [[ ! -f $creds ]]; then
    echo "The CLI has no working access key and $creds is gone: run  $BIN/dlab login --url $URL"
    exit 1
  fi
  user=$(sed -n 's/^user: //p' "$creds")
  sed -n 's/^password: "\(.*\)"$/\1/p' "$creds" |
    "$BIN/dlab" --url "$URL" login --user "$user" --password-stdin --name make-run
fi

id=$("$BIN/dlab" --url "$URL" run examples/digits/job.yaml)
echo "submitted examples/digits as job $id"
for _ in $(seq 100); do
  state=$("$BIN/dlab" --url "$URL" describe "$id" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
  [[ $state != QUEUED && $state != STARTING ]] && break
  sleep 0.1
done
"$BIN/dlab" --url "$URL" ls
cat <<MSG

Job $id is $state. Next:
  build/bin/dlab logs -f $id        # follow its training output
  build/bin/dlab describe $id       # state, resources, limits, attempts
  build/bin/dlab metrics $id        # its training curves (loss, accuracy) as sparklines
  build/bin/dlab events $id         # every state transition
  build/bin/dlab --help           # everything else
Or open $URL/ in a browser (the web console; user and password in $DATA_DIR/initial-credentials,
unless you changed the password).
MSG
