#!/usr/bin/env bash
# Brings up (and down) a private one-machine Slurm 22.05 cluster for tests: munged, slurmctld and
# slurmd run as root, with everything (config, munge key and socket, state, logs, pid files, fake
# GPU device nodes) under DIR; nothing under /etc/slurm or /etc/munge is used.
# Usage: scripts/slurm-cluster.sh install
#        eval "$(scripts/slurm-cluster.sh up DIR [--cpus N] [--gpus N] [--gpu-type T] \
#                [--nodes N] [--wait-scheduler] [--rest])"
#        scripts/slurm-cluster.sh down DIR
# `up` prints `export SLURM_CONF=DIR/slurm.conf` (all else goes to stderr) once sinfo shows the
# nodes idle; --wait-scheduler also waits for slurmctld's first scheduling cycle (about 3 s after
# start; jobs submitted earlier wait for it). Defaults: 1 node, 16 CPUs, 4 x gpu:a100 (per node),
# partition debug.
# --rest also starts slurmrestd (API v0.0.38, rest_auth/local: clients of its own uid, root here)
# on the unix socket DIR/run/slurmrestd.sock, and `up` then also prints
# `export SLURMRESTD=unix:DIR/run/slurmrestd.sock`.
# --nodes N (N > 1): Debian's Slurm is not built with --enable-multiple-slurmd, so each node n1..nN
# gets its own network and UTS namespace (hostname nI) on the one filesystem: a bridge in the root
# namespace at SLURM_NET.1 (SLURM_NET: 10.77.0) with a veth into each node's namespace, node I at
# SLURM_NET.(10+I); slurmctld stays in the root namespace, reached at the bridge address. Node
# names, namespaces, the bridge and the veths are derived from DIR, so `down DIR` (and an `up DIR`
# after a crash) removes exactly this cluster's. Each slurmd also gets a private copy of the mount
# namespace, only to bind DIR/hosts on /etc/hosts: in jobs nI resolve to the node addresses and this
# machine's name to SLURM_NET.1 (this namespace cannot resolve nI). Jobs reach servers in the root
# namespace at SLURM_NET.1 (0.0.0.0 listeners), and each other at the node names or addresses
# (MASTER_ADDR=n1). srun from this namespace works: slurmd answers the address its request came
# from, SLURM_NET.1.
# cgroup v1 works as with one node: Slurm 22.05 names its v1 cgroups slurm_NODE, one tree per node
# (`down` removes those of nI). Two clusters with --nodes at once need different SLURM_NET (and
# share cgroup names: better not).
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

packages=(slurmctld slurmd slurm-client munge slurmrestd)

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

# pid_of FILE COMM: the pid in FILE when that process is alive (not a zombie: PID 1 may reap
# late) and named COMM.
pid_of() {
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$2" ]] || return 1
  [[ $(awk '/^State:/ {print $2}' /proc/"$pid"/status 2>/dev/null) != Z ]] || return 1
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
  local cpus=16 gpus=4 gpu_type=a100 wait_sched="" nodes=1 rest=""
  while [[ $# -gt 0 ]]; do
    case $1 in
      --wait-scheduler) wait_sched=1; shift ;;
      --rest) rest=1; shift ;;
      --cpus | --gpus | --gpu-type | --nodes)
        [[ $# -ge 2 ]] || die "$1 needs a value"
        case $1 in
          --cpus) cpus=$2 ;; --gpus) gpus=$2 ;; --nodes) nodes=$2 ;; *) gpu_type=$2 ;;
        esac
        shift 2
        ;;
      *) die "unknown option $1" ;;
    esac
  done
  [[ $cpus =~ ^[1-9][0-9]*$ && $gpus =~ ^[0-9]+$ ]] || die "--cpus and --gpus take numbers"
  [[ $nodes =~ ^[1-9][0-9]*$ && $nodes -le 200 ]] || die "--nodes takes a number from 1 to 200"
  [[ $gpu_type =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad --gpu-type $gpu_type"
  [[ $(id -u) -eq 0 ]] || die "up needs root (slurmd runs jobs as their owners)"
  local b
  for b in munged slurmctld slurmd sinfo $([[ -z $rest ]] || echo slurmrestd); do
    command -v "$b" >/dev/null || die "$b not found: run scripts/slurm-cluster.sh install"
  done
  if ((nodes > 1)); then
    for b in ip nsenter unshare md5sum; do command -v "$b" >/dev/null || die "--nodes needs $b"; done
    [[ ${SLURM_NET:-10.77.0} =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
      die "SLURM_NET is three octets, like 10.77.0"
  fi
  local f
  for f in "$DIR"/run/slurmd*.pid "$DIR/run/slurmctld.pid" "$DIR/run/slurmrestd.pid"; do
    if pid_of "$f" slurmd >/dev/null || pid_of "$f" slurmctld >/dev/null ||
      pid_of "$f" slurmrestd >/dev/null; then
      die "a cluster is already running in $DIR (scripts/slurm-cluster.sh down $DIR)"
    fi
  done
  # A crashed run's pid files would make the new daemons look dead until they write theirs.
  rm -f "$DIR"/run/slurmd*.pid "$DIR/run/slurmctld.pid" "$DIR/run/slurmrestd.pid"
  local ctld_port=${SLURM_CTLD_PORT:-31817} d_port=${SLURM_D_PORT:-31818} p
  # Several nodes: each slurmd listens in its own network namespace.
  for p in "$ctld_port" $( ((nodes > 1)) || echo "$d_port"); do
    port_in_use "$p" && die "port $p is in use (set SLURM_CTLD_PORT/SLURM_D_PORT)"
  done
  # From here on a failure stops whatever this call started.
  trap '[[ -n ${up_done:-} ]] || stop_all' EXIT
  local mem=${SLURM_MEM_MB:-$((cpus * 2048))} def_mem=${SLURM_DEF_MEM_PER_CPU:-1024}
  local min_job_age=${SLURM_MIN_JOB_AGE:-300} kill_wait=${SLURM_KILL_WAIT:-5}
  local node cgroup=${SLURM_CGROUP:-auto} node_list ctld_addr=127.0.0.1
  node=$(hostname -s)
  node_list=$node
  if [[ $cgroup == auto ]]; then
    if cgroup_v1_usable; then cgroup=v1; else cgroup=none; fi
  fi
  if ((nodes > 1)); then
    net_names
    net_down  # what a crashed run left behind
    net_up "$nodes"
    ctld_addr=$net_prefix.1 node_list="n[1-$nodes]"
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
      "$node_list" "$gpu_type" "$files" >"$DIR/gres.conf"
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
SlurmctldHost=$node($ctld_addr)
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
EOF
  if ((nodes == 1)); then
    cat >>"$DIR/slurm.conf" <<EOF
NodeName=$node NodeHostname=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem$gres_node \
  State=UNKNOWN
EOF
  else
    # Per-node paths: %n is the node name (slurmd -N).
    sed -i -e "s|^SlurmdPidFile=.*|SlurmdPidFile=$DIR/run/slurmd-%n.pid|" \
      -e "s|^SlurmdLogFile=.*|SlurmdLogFile=$DIR/log/slurmd-%n.log|" \
      -e "s|^SlurmdSpoolDir=.*|SlurmdSpoolDir=$DIR/spool/%n|" "$DIR/slurm.conf"
    for ((i = 1; i <= nodes; i++)); do
      echo "NodeName=n$i NodeHostname=n$i NodeAddr=$net_prefix.$((10 + i)) CPUs=$cpus" \
        "RealMemory=$mem$gres_node State=UNKNOWN" >>"$DIR/slurm.conf"
    done
  fi
  echo "PartitionName=debug Nodes=$node_list Default=YES MaxTime=INFINITE State=UP" \
    >>"$DIR/slurm.conf"

  export SLURM_CONF=$DIR/slurm.conf
  slurmctld || { show_logs; die "slurmctld did not start"; }
  wait_for 10 ctld_answers "$DIR/run/slurmctld.pid" ||
    { show_logs; die "slurmctld does not answer on port $ctld_port"; }
  if ((nodes == 1)); then
    slurmd || { show_logs; die "slurmd did not start"; }
  else
    # Node names resolve in the jobs (MASTER_ADDR=n1; gloo resolves its own hostname), this
    # machine's name to the bridge address.
    local fqdn
    fqdn=$(hostname -f 2>/dev/null || true)
    [[ $fqdn == "$node" || ! $fqdn =~ ^[A-Za-z0-9.-]+$ ]] && fqdn=""
    {
      printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n'
      printf '%s\t%s\n' "$net_prefix.1" "$node${fqdn:+ $fqdn}"
      for ((i = 1; i <= nodes; i++)); do printf '%s\tn%s\n' "$net_prefix.$((10 + i))" "$i"; done
    } >"$DIR/hosts"
    for ((i = 1; i <= nodes; i++)); do
      mkdir -p "$DIR/spool/n$i"
      # Own network and UTS namespace, and a mount namespace only to bind DIR/hosts on /etc/hosts:
      # it starts as a copy of this one (the jobs' files, cgroupfs, ...).
      # shellcheck disable=SC2016
      nsenter --net="/run/netns/$net_ns$i" unshare --uts --mount --propagation private \
        sh -c 'hostname "$1" && mount --bind "$2" /etc/hosts && exec slurmd -N "$1"' \
        sh "n$i" "$DIR/hosts" || { show_logs; die "slurmd of n$i did not start"; }
    done
  fi
  local timeout=${SLURM_UP_TIMEOUT:-30} states bad
  local deadline=$((SECONDS + timeout))
  while :; do
    states=$(sinfo -h -N -n "$node_list" -o '%N %T' 2>/dev/null || true)
    # Every node listed, each idle.
    [[ $(grep -c ' idle$' <<<"$states") -eq $nodes ]] && break
    # A drained node (bad gres.conf, too little memory, ...) never becomes idle: say why now.
    bad=$(awk '$2 ~ /^drain/ {print $1}' <<<"$states")
    if [[ -n $bad ]] || ((SECONDS >= deadline)); then
      show_logs
      scontrol show node "$node_list" 2>/dev/null | grep -E 'NodeName=|State=|Reason=' >&2 || true
      die "not all nodes are idle: $(tr '\n' ' ' <<<"${states:-none}")"
    fi
    sleep 0.1
  done
  if [[ -n $wait_sched ]]; then
    wait_for "$timeout" sched_ran || { show_logs; die "slurmctld's scheduler has not run"; }
  fi
  if [[ -n $rest ]]; then
    # It does not daemonize; as root it needs SLURMRESTD_SECURITY=disable_user_check.
    local rest_sock=$DIR/run/slurmrestd.sock
    rm -f "$rest_sock"
    SLURMRESTD_SECURITY=disable_user_check setsid slurmrestd -a rest_auth/local \
      -s openapi/v0.0.38 "unix:$rest_sock" </dev/null >>"$DIR/log/slurmrestd.log" 2>&1 &
    echo $! >"$DIR/run/slurmrestd.pid"
    wait_for 10 test -S "$rest_sock" || { show_logs; die "slurmrestd did not start"; }
  fi
  up_done=1
  if ((nodes == 1)); then
    log "up in $DIR: node $node, $cpus CPUs, $gpus x gpu:$gpu_type, cgroup $cgroup," \
      "ports $ctld_port/$d_port"
  else
    log "up in $DIR: nodes $node_list at $net_prefix.11-$((10 + nodes)) (bridge $net_bridge," \
      "$net_prefix.1; namespaces $net_ns*), each $cpus CPUs, $gpus x gpu:$gpu_type," \
      "cgroup $cgroup, ports $ctld_port/$d_port"
  fi
  echo "export SLURM_CONF=$DIR/slurm.conf"
  [[ -z $rest ]] || echo "export SLURMRESTD=unix:$DIR/run/slurmrestd.sock"
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
  local f args=("$DIR/run/slurmd.pid:slurmd")
  for f in "$DIR"/run/slurmd-*.pid; do [[ -e $f ]] && args+=("$f:slurmd"); done
  stop "$DIR/run/slurmrestd.pid:slurmrestd"
  stop "${args[@]}" "$DIR/run/slurmctld.pid:slurmctld" "$DIR/run/munged.pid:munged"
  net_names
  net_down
  # cgroup v1 keeps a slurm_NODE tree per node name; remove the (empty) ones of nodes nI.
  local d
  for d in "$DIR"/spool/n*; do
    [[ -d $d ]] || continue
    find /sys/fs/cgroup/*/"slurm_${d##*/}" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# net_names: this DIR's network names (several nodes): namespaces ${net_ns}I, bridge $net_bridge,
# root-side veths ${net_veth}I (interface names have at most 15 characters).
net_names() {
  local tag
  tag=$(printf '%s' "$DIR" | md5sum | cut -c1-6)
  net_ns=slurm-$tag-n net_bridge=slbr-$tag net_veth=slv$tag-
  net_prefix=${SLURM_NET:-10.77.0}
}

# net_up N: bridge at $net_prefix.1, namespace ${net_ns}I with eth0 at $net_prefix.(10+I).
net_up() {
  local i ns
  if ip -o -4 addr show | grep -q " inet $net_prefix\.1/"; then
    die "$net_prefix.1 is already in use (another cluster with --nodes? set SLURM_NET)"
  fi
  ip link add "$net_bridge" type bridge
  ip addr add "$net_prefix.1/24" dev "$net_bridge"
  ip link set "$net_bridge" up
  for ((i = 1; i <= $1; i++)); do
    ns=$net_ns$i
    ip netns add "$ns"
    ip link add "$net_veth$i" type veth peer name eth0 netns "$ns"
    ip link set "$net_veth$i" master "$net_bridge" up
    ip -n "$ns" addr add "$net_prefix.$((10 + i))/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
  done
}

# net_down: kills what still runs in this DIR's namespaces (stray slurmd, step daemons, jobs),
# deletes them (with their veths) and the bridge.
net_down() {
  local ns pids
  command -v ip >/dev/null || return 0
  for ns in $(ip netns list 2>/dev/null | awk -v p="$net_ns" 'index($1, p) == 1 {print $1}'); do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [[ -n $pids ]]; then
      log "killing processes left in namespace $ns: $(tr '\n' ' ' <<<"$pids")"
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      wait_for 5 no_pids_in "$ns" || log "processes of $ns do not exit"
    fi
    ip netns del "$ns" || log "could not delete namespace $ns"
  done
  # Root-side veths go with their namespaces; one left over (a crash between add and move).
  for ns in $(ip -o link show 2>/dev/null | awk -F': ' -v p="$net_veth" \
    'index($2, p) == 1 {sub(/@.*/, "", $2); print $2}'); do
    ip link del "$ns" 2>/dev/null || true
  done
  if ip link show "$net_bridge" >/dev/null 2>&1; then
    ip link del "$net_bridge" || log "could not delete bridge $net_bridge"
  fi
}
no_pids_in() { [[ -z $(ip netns pids "$1" 2>/dev/null) ]]; }

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
  *) die "usage: $0 install | up DIR [--cpus N] [--gpus N] [--gpu-type T] [--nodes N]" \
    "[--wait-scheduler] [--rest] | down DIR" ;;
esac
