#!/usr/bin/env bash
# Stop the one-node SLURM cluster started by contrib/slurm/start.sh.
#
#   contrib/slurm/stop.sh                 cancel our jobs, then stop every daemon start.sh started
#   contrib/slurm/stop.sh slurmctld ...   stop only these daemons (no scancel), e.g. to test an
#                                         outage; start.sh starts the missing ones again
#   contrib/slurm/stop.sh --purge         also delete $BATCHMAN_SLURM_DIR (state, logs, database)
#
# Only the pids recorded in $BATCHMAN_SLURM_DIR/run/*.pid are signalled, and only if the process
# is still the program start.sh started.
set -uo pipefail

DIR=${BATCHMAN_SLURM_DIR:-/tmp/batchman-slurm}
PURGE=0
only=()
for a in "$@"; do
    case $a in
        --purge) PURGE=1 ;;
        munged|mariadb|slurmdbd|slurmctld|slurmd) only+=("$a") ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "stop.sh: unknown argument $a" >&2; exit 2 ;;
    esac
done

log() { echo "stop.sh: $*"; }

prog_of() {
    case $1 in mariadb) echo mariadbd ;; *) echo "$1" ;; esac
}
pid_of() {   # prints the recorded pid if that process is alive and is the right program
    local f="$DIR/run/$1.pid" pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -d "/proc/$pid" ] && grep -q "$(prog_of "$1")" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

stop_one() {
    local name=$1 pid i
    if ! pid=$(pid_of "$name"); then
        rm -f "$DIR/run/$name.pid"
        return
    fi
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do      # up to 10 s, then KILL
        [ -d "/proc/$pid" ] || break
        # a zombie child of ours would linger: it is gone for our purpose
        grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$DIR/run/$name.pid"
    log "stopped $name (pid $pid)"
}

if [ ! -d "$DIR/run" ]; then
    log "nothing to stop in $DIR"
    [ $PURGE = 1 ] && rm -rf "$DIR"
    exit 0
fi

if [ ${#only[@]} -gt 0 ]; then
    for d in "${only[@]}"; do stop_one "$d"; done
    exit 0
fi

# Killing slurmd does not end running jobs: cancel them first, while slurmctld is up.
if pid_of slurmctld > /dev/null && [ -f "$DIR/etc/slurm.conf" ]; then
    export SLURM_CONF="$DIR/etc/slurm.conf"
    ids=$(timeout 15 squeue -h -u "$(id -un)" -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${ids// /}" ]; then
        log "cancelling jobs: $ids"
        timeout 15 scancel $ids 2>/dev/null
        for i in $(seq 1 50); do   # up to 10 s for them to end
            [ -z "$(timeout 5 squeue -h -u "$(id -un)" -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

for d in slurmd slurmctld slurmdbd mariadb munged; do stop_one "$d"; done

if [ $PURGE = 1 ]; then
    rm -rf "$DIR"
    log "removed $DIR"
fi
