#!/usr/bin/env bash
# Start a one-node SLURM cluster on localhost, without systemd, for tests and CI.
#
#   contrib/slurm/start.sh [--with-slurmdbd] [--timeout SECONDS]
#
# Everything lives under ONE directory, $BATCHMAN_SLURM_DIR (default /tmp/batchman-slurm):
#   etc/ (slurm.conf, slurmdbd.conf, munge.key)   state/ spool/ jobcomp.txt
#   log/ (munged, slurmctld, slurmd, slurmdbd, mariadb)   run/ (<daemon>.pid, sockets)
#   env.sh       source it: exports SLURM_CONF for client commands
#   accounting   "slurmdbd" (plain sacct works) or "jobcomp" (use sacct -c)
#
# Idempotent: daemons already running (by recorded pid) are kept; missing ones are started,
# so `stop.sh slurmctld; start.sh` restarts only the controller on its saved state.
# Needs root (SlurmUser=root). Stop with contrib/slurm/stop.sh.
set -euo pipefail

DIR=${BATCHMAN_SLURM_DIR:-/tmp/batchman-slurm}
TIMEOUT=${BATCHMAN_SLURM_TIMEOUT:-60}
CLUSTER=${BATCHMAN_SLURM_CLUSTER:-batchman}
CTLD_PORT=${BATCHMAN_SLURM_PORT:-6817}      # slurmd uses +1, slurmdbd +2
# How long clients retry an unreachable controller: about twice this (18 s measured for 10)
MSG_TIMEOUT=${BATCHMAN_SLURM_MESSAGE_TIMEOUT:-10}
WITH_DBD=0

while [ $# -gt 0 ]; do
    case $1 in
        --with-slurmdbd) WITH_DBD=1 ;;
        --timeout) TIMEOUT=$2; shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "start.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

[ "$(id -u)" = 0 ] || { echo "start.sh: must run as root (SlurmUser=root)" >&2; exit 1; }

log() { echo "start.sh: $*"; }
die() { echo "start.sh: ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------- packages
PKGS="slurmctld slurmd slurm-client munge"
[ $WITH_DBD = 1 ] && PKGS="$PKGS slurmdbd slurm-wlm-mysql-plugin mariadb-server"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    log "installing$missing"
    t0=$(date +%s)
    # Debian's policy-rc.d refuses to start the services: harmless, we start them ourselves.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        -o DPkg::Lock::Timeout=900 $missing > "/tmp/batchman-slurm-apt.$$.log" 2>&1 \
        || { tail -20 "/tmp/batchman-slurm-apt.$$.log" >&2; die "apt-get install failed (did you run apt-get update?)"; }
    rm -f "/tmp/batchman-slurm-apt.$$.log"
    log "installed in $(( $(date +%s) - t0 )) s"
fi

mkdir -p "$DIR"/{etc,state,spool,log,run,munge}
chmod 0755 "$DIR" "$DIR/munge"     # munged refuses a socket dir others can write

# ---------------------------------------------------------------- pids
# A pid counts only if it is alive AND is the program we started (pids get reused).
alive() {   # alive NAME PROGRAM
    local f="$DIR/run/$1.pid" pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -d "/proc/$pid" ] || return 1
    grep -q "$2" "/proc/$pid/cmdline" 2>/dev/null
}
# A slurmctld or slurmd started from a directory since removed (a checkout deleted after its tests)
# makes every job step say "slurmstepd: error: Unable to get current working directory" in the
# job's stderr: such a daemon is stopped here and started again below, from $DIR/run.
for d in slurmctld slurmd; do
    if alive "$d" "$d" && readlink "/proc/$(cat "$DIR/run/$d.pid")/cwd" | grep -q ' (deleted)$'; then
        log "$d runs in a removed directory: restarting it"
        bash "$(dirname "$0")/stop.sh" "$d" > /dev/null
    fi
done
# NAME PROGRAM pairs, in start order
DAEMONS="munged:munged mariadb:mariadbd slurmdbd:slurmdbd slurmctld:slurmctld slurmd:slurmd"
running=""
for d in $DAEMONS; do alive "${d%%:*}" "${d#*:}" && running="$running ${d%%:*}"; done

if [ -n "$running" ] && [ -s "$DIR/accounting" ]; then
    had=$(cat "$DIR/accounting")
    if [ $WITH_DBD = 1 ] && [ "$had" != slurmdbd ]; then
        die "cluster in $DIR is running without slurmdbd (${running# }); run contrib/slurm/stop.sh first"
    fi
    [ "$had" = slurmdbd ] && WITH_DBD=1
fi
need="munged slurmctld slurmd"
[ $WITH_DBD = 1 ] && need="munged mariadb slurmdbd slurmctld slurmd"
all=1
for n in $need; do case " $running " in *" $n "*) ;; *) all=0 ;; esac; done
if [ $all = 1 ]; then
    log "already running in $DIR (${running# }), accounting=$(cat "$DIR/accounting")"
    exit 0
fi

# ---------------------------------------------------------------- configuration
HOST=$(hostname -s)
CONF="$DIR/etc/slurm.conf"
DBDCONF="$DIR/etc/slurmdbd.conf"
SOCK="$DIR/munge/munge.socket"
MYSOCK="$DIR/run/mariadb.sock"

if [ -z "$running" ]; then
    # Node line from what slurmd sees; leave some memory out so the node is never drained
    # for "Low RealMemory".
    hw=$(slurmd -C | head -1)
    cpus=$(echo "$hw" | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p')
    mem=$(echo "$hw" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
    mem=$(( mem * 9 / 10 ))
    topo=$(echo "$hw" | grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*')
    if [ $WITH_DBD = 1 ]; then
        ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((CTLD_PORT + 2))
# the munge socket for talking to slurmdbd (AuthInfo is not used for that connection)
AccountingStoragePass=$SOCK"
    else
        ACCT="AccountingStorageType=accounting_storage/none"
    fi
    cat > "$CONF" <<EOF
# Generated by batchman contrib/slurm/start.sh -- one-node test cluster
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((CTLD_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.self.pid
SlurmdPidFile=$DIR/run/slurmd.self.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
# Scheduling: start jobs as soon as they are submitted.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1,default_queue_depth=1000
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs without --mem get a small share, not the whole node
DefMemPerCPU=512
# Time limits: TERM, then KILL after KillWait s; no grace beyond the limit.
KillWait=5
OverTimeLimit=0
InactiveLimit=0
MessageTimeout=$MSG_TIMEOUT
SlurmctldTimeout=30
SlurmdTimeout=60
# MinJobAge: default (300 s in squeue -t all / scontrol after a job ends)
# Memory enforcement without cgroups: sample every second, kill over --mem.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# Finished jobs without slurmdbd: sacct -c reads this file.
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.txt
$ACCT
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus $topo RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=short Nodes=$HOST Default=NO MaxTime=00:05:00 State=UP
EOF
    if [ $WITH_DBD = 1 ]; then
        cat > "$DBDCONF" <<EOF
# Generated by batchman contrib/slurm/start.sh
AuthType=auth/munge
AuthInfo=socket=$SOCK
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((CTLD_PORT + 2))
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.self.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
EOF
        chmod 600 "$DBDCONF"
    fi
    [ $WITH_DBD = 1 ] && echo slurmdbd > "$DIR/accounting" || echo jobcomp > "$DIR/accounting"
fi

cat > "$DIR/env.sh" <<EOF
# source this to use the batchman test cluster
export BATCHMAN_SLURM_DIR=$DIR
export SLURM_CONF=$CONF
EOF
export SLURM_CONF="$CONF"

# ---------------------------------------------------------------- start
tail_logs() {
    for f in "$DIR"/log/*.log; do
        [ -f "$f" ] || continue
        echo "---- tail $f" >&2
        tail -15 "$f" >&2
    done
}
fail() { tail_logs; die "$*"; }

# start NAME PROGRAM ARGV...: background, no terminal, stdio redirected, pid recorded
start() {
    local name=$1 prog=$2; shift 2
    if alive "$name" "$prog"; then log "$name already running (pid $(cat "$DIR/run/$name.pid"))"; return; fi
    # from a directory of the cluster's own, never the caller's (a checkout that may be removed)
    (cd "$DIR/run" && exec setsid "$@" < /dev/null >> "$DIR/log/$name.out" 2>&1) &
    echo $! > "$DIR/run/$name.pid"
    log "started $name (pid $!)"
}

waitfor() {   # waitfor WHAT SECONDS COMMAND...
    local what=$1 limit=$2; shift 2
    local end=$(( $(date +%s) + limit ))
    until "$@" > /dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || fail "$what not ready after $limit s"
        sleep 0.2
    done
}

T0=$(date +%s.%N)

if [ ! -s "$DIR/etc/munge.key" ]; then
    mungekey --create --keyfile="$DIR/etc/munge.key" > /dev/null
fi
chmod 600 "$DIR/etc/munge.key"
start munged munged munged --foreground --force --key-file="$DIR/etc/munge.key" --socket="$SOCK" \
    --pid-file="$DIR/run/munged.self.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/run/munged.seed"
waitfor munged 15 munge -n -S "$SOCK"

if [ $WITH_DBD = 1 ]; then
    if [ ! -d "$DIR/mysql/mysql" ]; then
        mkdir -p "$DIR/mysql"
        mariadb-install-db --no-defaults --datadir="$DIR/mysql" --user=root \
            --auth-root-authentication-method=socket > "$DIR/log/mariadb-install.log" 2>&1 \
            || fail "mariadb-install-db failed (see $DIR/log/mariadb-install.log)"
    fi
    start mariadb mariadbd mariadbd --no-defaults --user=root --datadir="$DIR/mysql" \
        --socket="$MYSOCK" --skip-networking --pid-file="$DIR/run/mariadb.self.pid" \
        --log-error="$DIR/log/mariadb.log" --innodb-buffer-pool-size=64M
    waitfor mariadb 60 mariadb --no-defaults --socket="$MYSOCK" -u root -e 'select 1'
    # slurmdbd finds the socket only through MYSQL_UNIX_PORT (StorageHost=localhost)
    # slurmdbd has no -f: it reads slurmdbd.conf beside $SLURM_CONF
    start slurmdbd slurmdbd env MYSQL_UNIX_PORT="$MYSOCK" SLURM_CONF="$CONF" slurmdbd -D
    waitfor slurmdbd 30 sacctmgr -n show cluster
    if ! sacctmgr -n -P show cluster format=cluster | grep -qx "$CLUSTER"; then
        sacctmgr -i add cluster "$CLUSTER" > /dev/null || fail "sacctmgr add cluster failed"
    fi
    if ! sacctmgr -n -P show account format=account | grep -qx batchman; then
        sacctmgr -i add account batchman Cluster="$CLUSTER" Description=tests Organization=batchman > /dev/null
    fi
    if ! sacctmgr -n -P show assoc where user=root account=batchman format=user | grep -qx root; then
        sacctmgr -i add user root Account=batchman > /dev/null || true
    fi
fi

start slurmctld slurmctld slurmctld -D -f "$CONF"
start slurmd slurmd slurmd -D -f "$CONF"

# ---------------------------------------------------------------- wait for the node
end=$(( $(date +%s) + TIMEOUT ))
state=""
while :; do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1 || true)
    case $state in
        idle|mix|mixed|alloc|allocated) break ;;
    esac
    for d in slurmctld slurmd; do
        alive "$d" "$d" || fail "$d exited (state '$state')"
    done
    [ "$(date +%s)" -lt "$end" ] || fail "node $HOST not idle after $TIMEOUT s (sinfo state '${state:-no answer}')"
    sleep 0.2
done
log "cluster up in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s: node $HOST $state, accounting=$(cat "$DIR/accounting")"
echo "start.sh: source $DIR/env.sh   (export SLURM_CONF=$CONF)"
