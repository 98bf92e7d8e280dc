#!/usr/bin/env bash
# Stop the one-node Grid Engine started by start.sh: delete every job (so no sge_shepherd and job
# processes outlive execd), then stop exactly the daemons whose pids start.sh recorded under
# $BATCHMAN_GE_DIR (default /tmp/batchman-gridengine): TERM, wait, KILL.
# TERM matters: qmaster writes its job number sequence only on a clean shutdown (after KILL it hands
# out old job ids again).
set -uo pipefail

GE_DIR=${BATCHMAN_GE_DIR:-/tmp/batchman-gridengine}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default

t_start=$EPOCHREALTIME
log() { awk -v a="$t_start" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN { printf "gridengine stop [%5.1fs]: %s\n", b - a, m }' >&2; }

alive() {
    local pid=$1 name=$2 st
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ "$st" != X ]
}

# stop_daemon NAME PROCESS SECONDS: TERM the recorded pid, wait up to SECONDS, then KILL.
stop_daemon() {
    local name=$1 comm=$2 limit=$3 pid end
    pid=$(cat "$GE_DIR/$name.pid" 2>/dev/null || true)
    if ! alive "$pid" "$comm"; then
        log "$name: not running${pid:+ (recorded pid $pid)}"
        rm -f "$GE_DIR/$name.pid"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    end=$(( $(date +%s) + limit ))
    while alive "$pid" "$comm" && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
    if alive "$pid" "$comm"; then
        log "$name: still alive after ${limit}s, KILL $pid"
        kill -KILL "$pid" 2>/dev/null
        while alive "$pid" "$comm"; do sleep 0.1; done
    fi
    rm -f "$GE_DIR/$name.pid"
    log "$name: stopped (pid $pid)"
}

qmaster_pid=$(cat "$GE_DIR/qmaster.pid" 2>/dev/null || true)
if alive "$qmaster_pid" sge_qmaster && qconf -sh >/dev/null 2>&1; then
    if [ -n "$(qstat -u '*' 2>/dev/null)" ]; then
        qdel -f -u '*' >/dev/null 2>&1
        end=$(( $(date +%s) + 30 ))
        while [ -n "$(qstat -u '*' 2>/dev/null)" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
        if [ -n "$(qstat -u '*' 2>/dev/null)" ]; then
            log "jobs still listed after 30 s:"; qstat -u '*' >&2
        else
            log "all jobs deleted"
        fi
    fi
fi

stop_daemon execd sge_execd 15
stop_daemon qmaster sge_qmaster 30
log "done"
