#!/usr/bin/env bash
# Brings up (and down) a private one-machine Slurm 22.05 cluster for tests: munged, slurmctld and
# slurmd run as root, with everything (config, munge key and socket, state, logs, pid files, fake
# GPU device nodes) under DIR; nothing under /etc/slurm or /etc/munge is used.
# Usage: scripts/slurm-cluster.sh install
#        eval "$(scripts/slurm-cluster.sh up DIR [--cpus N] [--gpus N] [--gpu-type T] \
#                [--wait-scheduler])"
#        scripts/slurm-cluster.sh down DIR
# `up` prints `export SLURM_CONF=DIR/slurm.conf` (all else goes to stderr) once sinfo shows the node
# idle; --wait-scheduler also waits for slurmctld's first scheduling cycle (about 3 s after start;
# jobs submitted earlier wait for it). Defaults: 16 CPUs, 4 x gpu:a100, partition debug.
# Environment: SLURM_CTLD_PORT (31817), SLURM_D_PORT (31818; both below the kernel's ephemeral
# range, so that no outgoing connection holds them), SLURM_MEM_MB (2048 per CPU),
# SLURM_DEF_MEM_PER_CPU (1024), SLURM_KILL_WAIT (5 s from SIGTERM to SIGKILL), SLURM_MIN_JOB_AGE
# (300: finished jobs stay in squeue/scontrol that long, 5-10 s more in practice; sacct -c keeps
# them), SLURM_UP_TIMEOUT (30 s), SLURM_CGROUP (auto: v1 when its memory and freezer hierarchies
# are writable, giving --mem enforcement with state OUT_OF_MEMORY; else none: proctrack/linuxproc,
# over-memory jobs are killed by polling and end FAILED).
set -euo pipefail

die() { echo "slurm-cluster: $*" >&2; exit 1; }
log() { echo "slurm-cluster: $*" >&2; }

packages=(slurmctld slurmd slurm-client munge)

install() {
  local missing=() p
  for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  local sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# pid_of FILE COMM: the pid in FILE when that process is alive and named COMM.
pid_of() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$2" ]] || return 1
  echo "$pid"
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
munge_answers() { munge -n -S "$1" 2>/dev/null | unmunge -S "$1" >/dev/null 2>&1; }
# ctld_answers PIDFILE: slurmctld answers pings; exits the script early if it died (fatal
# configuration errors come after it has daemonized).
ctld_answers() {
  if [[ -s $1 ]] && ! pid_of "$1" slurmctld >/dev/null; then
    show_logs
    die "slurmctld exited"
  fi
  scontrol ping 2>/dev/null | grep -q "is UP"
}
gone() { ! kill -0 "$1" 2>/dev/null; }
no_stepd() { [[ -z $(stepd_pids) ]]; }
# The main scheduler first runs about 3 s after slurmctld starts; jobs submitted before wait.
sched_ran() {
  sdiag 2>/dev/null | awk '/Main schedule statistics/ {m = 1} m && /Total cycles:/ {exit !($3 > 0)}'
}
no_jobs_left() {
  local out
  out=$(squeue -h -t R,CG,S -o %i 2>/dev/null) || return 0  # slurmctld gone: nothing to wait for
  [[ -z $out ]]
}

# wait_for SECONDS COMMAND...: polls COMMAND (a function or program) every 0.1 s until it
# succeeds; fails after SECONDS.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

show_logs() {
  local f
  for f in "$DIR"/log/*.log; do
    [[ -f $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
  done
  return 0
}

cgroup_v1_usable() {
  local c probe
  for c in memory freezer; do
    [[ -f /sys/fs/cgroup/$c/cgroup.procs && ! -f /sys/fs/cgroup/cgroup.controllers ]] || return 1
    probe=/sys/fs/cgroup/$c/slurm-cluster-probe-$$
    mkdir "$probe" 2>/dev/null && rmdir "$probe" || return 1
  done
}

up() {
  local cpus=16 gpus=4 gpu_type=a100 wait_sched=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --wait-scheduler) wait_sched=1; shift ;;
      --cpus | --gpus | --gpu-type)
        [[ $# -ge 2 ]] || die "$1 needs a value"
        case $1 in --cpus) cpus=$2 ;; --gpus) gpus=$2 ;; *) gpu_type=$2 ;; esac
        shift 2
        ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $cpus =~ ^[1-9][0-9]*$ && $gpus =~ ^[0-9]+$ ]] || die "--cpus and --gpus take numbers"
  [[ $gpu_type =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad --gpu-type $gpu_type"
  [[ $(id -u) -eq 0 ]] || die "up needs root (slurmd runs jobs as their owners)"
  local b
  for b in munged slurmctld slurmd sinfo; do
    command -v "$b" >/dev/null || die "$b not found: run scripts/slurm-cluster.sh install"
  done
  if pid_of "$DIR/run/slurmctld.pid" slurmctld >/dev/null ||
    pid_of "$DIR/run/slurmd.pid" slurmd >/dev/null; then
    die "a cluster is already running in $DIR (scripts/slurm-cluster.sh down $DIR)"
  fi
  local ctld_port=${SLURM_CTLD_PORT:-31817} d_port=${SLURM_D_PORT:-31818} p
  for p in "$ctld_port" "$d_port"; do
    port_in_use "$p" && die "port $p is in use (set SLURM_CTLD_PORT/SLURM_D_PORT)"
  done
  # From here on a failure stops whatever this call started.
  trap '[[ -n ${up_done:-} ]] || stop_all' EXIT
  local mem=${SLURM_MEM_MB:-$((cpus * 2048))} def_mem=${SLURM_DEF_MEM_PER_CPU:-1024}
  local min_job_age=${SLURM_MIN_JOB_AGE:-300} kill_wait=${SLURM_KILL_WAIT:-5}
  local node cgroup=${SLURM_CGROUP:-auto}
  node=$(hostname -s)
  if [[ $cgroup == auto ]]; then
    if cgroup_v1_usable; then cgroup=v1; else cgroup=none; fi
  fi

  mkdir -p "$DIR"/{munge,state,spool,log,run,dev}
  chmod 755 "$DIR/munge"  # clients of every user need the socket; the key is 0400
  : >"$DIR/plugstack.conf"

  # munged: private key and socket; --force because it runs as root.
  local sock=$DIR/munge/munge.socket.2
  if ! pid_of "$DIR/run/munged.pid" munged >/dev/null; then
    [[ -s $DIR/munge/munge.key ]] || mungekey --create --keyfile="$DIR/munge/munge.key" --force
    chmod 400 "$DIR/munge/munge.key"
    munged --force --socket="$sock" --key-file="$DIR/munge/munge.key" \
      --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
      --seed-file="$DIR/munge/munged.seed" || { show_logs; die "munged did not start"; }
  fi
  wait_for 10 munge_answers "$sock" ||
    { show_logs; die "munged does not answer on $sock"; }

  # Fake GPUs: character devices (regular files or a bare count drain the node).
  local i gres_node="" files=""
  for ((i = 0; i < gpus; i++)); do
    [[ -c $DIR/dev/gpu$i ]] || mknod "$DIR/dev/gpu$i" c 1 3
  done
  if ((gpus > 0)); then
    gres_node=" Gres=gpu:$gpu_type:$gpus"
    files=$DIR/dev/gpu0; ((gpus > 1)) && files="$DIR/dev/gpu[0-$((gpus - 1))]"
    printf 'AutoDetect=off\nNodeName=%s Name=gpu Type=%s File=%s\n' \
      "$node" "$gpu_type" "$files" >"$DIR/gres.conf"
  else
    printf 'AutoDetect=off\n' >"$DIR/gres.conf"
  fi

  local proctrack task acct
  if [[ $cgroup == v1 ]]; then
    # Cores are not constrained (more CPUs are declared than exist), devices neither (the fake
    # GPUs are /dev/null's major:minor). Memory is, so --mem is enforced and OOM reported.
    proctrack=proctrack/cgroup task=task/cgroup acct="JobAcctGatherType=jobacct_gather/none"
    cat >"$DIR/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=yes
ConstrainSwapSpace=no
EOF
  else
    proctrack=proctrack/linuxproc task=task/none
    acct=$'JobAcctGatherType=jobacct_gather/linux\nJobAcctGatherParams=OverMemoryKill'
    acct+=$'\nJobAcctGatherFrequency=task=1'
    rm -f "$DIR/cgroup.conf"
  fi

  cat >"$DIR/slurm.conf" <<EOF
# Written by scripts/slurm-cluster.sh (cgroup mode: $cgroup)
ClusterName=dlabtest
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$d_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sock
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$DIR/plugstack.conf
MpiDefault=none
MailProg=/bin/true
ProctrackType=$proctrack
TaskPlugin=$task
$acct
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
SlurmdParameters=config_overrides
DefMemPerCPU=$def_mem
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/jobcomp.txt
MinJobAge=$min_job_age
KillWait=$kill_wait
ReturnToService=1
SlurmdTimeout=60
InactiveLimit=0
NodeName=$node NodeHostname=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem$gres_node \
  State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF

  export SLURM_CONF=$DIR/slurm.conf
  slurmctld || { show_logs; die "slurmctld did not start"; }
  wait_for 10 ctld_answers "$DIR/run/slurmctld.pid" ||
    { show_logs; die "slurmctld does not answer on port $ctld_port"; }
  slurmd || { show_logs; die "slurmd did not start"; }
  local timeout=${SLURM_UP_TIMEOUT:-30} state
  local deadline=$((SECONDS + timeout))
  while :; do
    state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null || true)
    [[ $state == idle ]] && break
    # A drained node (bad gres.conf, too little memory, ...) never becomes idle: say why now.
    if [[ $state == drain* ]] || ((SECONDS >= deadline)); then
      show_logs
      scontrol show node "$node" 2>/dev/null | grep -E 'State=|Reason=' >&2 || true
      die "node $node is '${state:-unknown}', not idle"
    fi
    sleep 0.1
  done
  if [[ -n $wait_sched ]]; then
    wait_for "$timeout" sched_ran || { show_logs; die "slurmctld's scheduler has not run"; }
  fi
  up_done=1
  log "up in $DIR: node $node, $cpus CPUs, $gpus x gpu:$gpu_type, cgroup $cgroup," \
    "ports $ctld_port/$d_port"
  echo "export SLURM_CONF=$DIR/slurm.conf"
}

# stop PIDFILE:COMM...: SIGTERM to all at once (each takes about 2 s to exit), wait up to 10 s,
# then SIGKILL.
stop() {
  local arg pid pids=()
  for arg in "$@"; do
    if pid=$(pid_of "${arg%%:*}" "${arg#*:}"); then
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    if ! wait_for 10 gone "$pid"; then
      log "$(cat /proc/"$pid"/comm 2>/dev/null) ($pid) ignored SIGTERM, killing it"
      kill -KILL "$pid" 2>/dev/null || true
      wait_for 5 gone "$pid" || die "process $pid does not exit"
    fi
  done
  for arg in "$@"; do rm -f "${arg%%:*}"; done
}

stop_all() {
  stop "$DIR/run/slurmd.pid:slurmd" "$DIR/run/slurmctld.pid:slurmctld" "$DIR/run/munged.pid:munged"
}

# Step daemons (and so the jobs) of this cluster outlive slurmd; they hold its log file open.
stepd_pids() {
  local p fd
  for p in $(pgrep -x slurmstepd || true); do
    for fd in /proc/"$p"/fd/*; do
      if [[ $(readlink "$fd" 2>/dev/null) == "$DIR"/* ]]; then echo "$p"; break; fi
    done
  done
}

down() {
  local pids
  export SLURM_CONF=$DIR/slurm.conf
  if pid_of "$DIR/run/slurmctld.pid" slurmctld >/dev/null; then
    # SIGTERM to every process of running jobs (a plain scancel signals only the batch shell and
    # srun tasks, then SIGKILLs the rest after KillWait), then cancel everything.
    scancel --quiet --full --signal=TERM --state=RUNNING 2>/dev/null || true
    scancel --quiet --partition=debug 2>/dev/null || true
  fi
  # Until slurmctld has heard that the jobs ended (no COMPLETING job left), slurmd keeps trying to
  # tell it and would not exit on SIGTERM.
  wait_for 15 no_jobs_left || true
  wait_for 15 no_stepd || true
  stop_all
  pids=$(stepd_pids)
  if [[ -n $pids ]]; then
    log "killing leftover slurmstepd $pids"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
  fi
}

cmd=${1:-}
case $cmd in
  install) install ;;
  up | down)
    [[ $# -ge 2 ]] || die "usage: $0 $cmd DIR"
    [[ $cmd == up ]] && mkdir -p "$2"
    [[ -d $2 ]] || die "no directory $2"
    DIR=$(cd "$2" && pwd)
    shift 2
    case $cmd in
      up) up "$@" ;;
      down) down ;;
    esac
    ;;
  *) die "usage: $0 install | up DIR [--cpus N] [--gpus N] [--gpu-type T] [--wait-scheduler]" \
    "| down DIR" ;;
esac
