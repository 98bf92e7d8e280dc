#!/usr/bin/env bash
# Bring up a one-node Son of Grid Engine (Debian's gridengine-* packages) without systemd, for
# batchman's gridengine tests and CI. Recipe and pitfalls: ../shared/notes/gridengine-single-node.md.
#
#   contrib/gridengine/start.sh      install if needed, configure, start qmaster + execd, wait for all.q
#   contrib/gridengine/stop.sh       delete all jobs, stop exactly the daemons this script recorded
#
# Idempotent: when the recorded daemons run and the queue is ready it exits 0 at once.
# Pids and logs go to $BATCHMAN_GE_DIR (default /tmp/batchman-gridengine).
# Needs root. One cluster per machine (fixed paths /var/lib/gridengine, /var/spool/gridengine, ports 6444/6445).
set -euo pipefail

GE_DIR=${BATCHMAN_GE_DIR:-/tmp/batchman-gridengine}
READY_TIMEOUT=${BATCHMAN_GE_TIMEOUT:-90}       # seconds for each wait
SLOTS=${BATCHMAN_GE_SLOTS:-2}
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
PACKAGES=(gridengine-master gridengine-exec gridengine-client)

t_start=$EPOCHREALTIME
log() { awk -v a="$t_start" -v b="$EPOCHREALTIME" -v m="$*" 'BEGIN { printf "gridengine start [%5.1fs]: %s\n", b - a, m }' >&2; }
die() {
    log "FAILED: $*"
    for f in "$SPOOL/qmaster/messages" "$SPOOL"/execd/*/messages "$GE_DIR"/*.out; do
        [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root"
mkdir -p "$GE_DIR"

# --- helpers -------------------------------------------------------------------------------------
# alive PID NAME: the process exists, is not a zombie (a killed daemon lingers as one here) and is NAME.
alive() {
    local pid=$1 name=$2 st
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ "$st" != X ]
}
recorded() { cat "$GE_DIR/$1.pid" 2>/dev/null || true; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds.
wait_for() {
    local limit=$1 what=$2; shift 2
    local end=$(( $(date +%s) + limit ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || die "timed out after ${limit}s waiting for $what"
        sleep 0.2
    done
}

qmaster_answers() { qconf -sh >/dev/null 2>&1; }

# queue_ready: all.q@<host> is listed with no state letters (u, a, E, d, ...) and execd reports a load.
queue_ready() {
    local line
    line=$(qstat -f -q all.q 2>/dev/null | awk -v q="all.q@$HOST" '$1 == q') || return 1
    [ -n "$line" ] || return 1
    # columns: queuename qtype resv/used/tot. load_avg arch [states]
    [ "$(echo "$line" | awk '{print NF}')" -eq 5 ] || return 1
    [ "$(echo "$line" | awk '{print $4}')" != "-NA-" ]
}

HOST=$(hostname)

# --- already running? ----------------------------------------------------------------------------
if alive "$(recorded qmaster)" sge_qmaster && alive "$(recorded execd)" sge_execd \
        && qmaster_answers && queue_ready; then
    log "already running (qmaster $(recorded qmaster), execd $(recorded execd)); nothing to do"
    exit 0
fi

# --- install -------------------------------------------------------------------------------------
installed() {
    local p
    for p in "${PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || return 1
    done
}
if installed; then
    log "packages already installed"
else
    log "installing ${PACKAGES[*]}"
    for p in gridengine-common "${PACKAGES[@]}"; do
        echo "$p shared/gridengineconfig boolean true"
        echo "$p shared/gridenginecell string $SGE_CELL"
        echo "$p shared/gridenginemaster string $HOST"
    done | debconf-set-selections
    # The postinsts start both daemons through invoke-rc.d, before host_aliases exists: forbid it.
    added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    apt_log="$GE_DIR/apt.out"
    if ! { apt-get -o DPkg::Lock::Timeout=900 update \
           && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y \
                  --no-install-recommends "${PACKAGES[@]}"; } >"$apt_log" 2>&1; then
        [ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
        die "apt-get failed (log: $apt_log)"
    fi
    [ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
    installed || die "packages still not installed after apt-get (log: $apt_log)"
    log "installed"
fi

# --- host names ------------------------------------------------------------------------------------
# GE compares the client's own name with the reverse lookup of its address. Where they differ
# (here: vm -> 127.0.0.1 -> localhost) every command fails with "commlib error: access denied".
# host_aliases makes the reverse names aliases of `hostname`.
ip=$(getent hosts "$HOST" | awk '{print $1; exit}')
[ -n "$ip" ] || die "hostname $HOST does not resolve (getent hosts $HOST)"
aliases=$(getent hosts "$ip" | awk -v h="$HOST" '{for (i = 2; i <= NF; i++) if ($i != h) print $i}' | sort -u | paste -sd ' ')
if [ -n "$aliases" ]; then
    echo "$HOST $aliases" > "$COMMON/host_aliases"
else
    rm -f "$COMMON/host_aliases"
fi
echo "$HOST" > "$COMMON/act_qmaster"
log "host $HOST ($ip), aliases: ${aliases:-none}"

# --- qmaster ---------------------------------------------------------------------------------------
qmaster_pid=$(recorded qmaster)
if ! alive "$qmaster_pid" sge_qmaster; then
    qmaster_pid=$(cat "$SPOOL/qmaster/qmaster.pid" 2>/dev/null || true)
fi
if alive "$qmaster_pid" sge_qmaster; then
    log "qmaster already running (pid $qmaster_pid)"
else
    # Global configuration written into the spool *before* qmaster starts: the accounting flush
    # period is fixed at start-up (a later qconf change keeps the first 15 s period), and
    # min_uid/min_gid 0 lets root (CI) submit. bash is no login shell for jobs: `qsub -S /bin/bash`
    # would read the submitter's profile (here: pyenv init and rehash, whose lock file a job
    # killed mid-rehash leaves behind, and every later job waits 60 s on it).
    conf_dir=$(mktemp -d)
    sed -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' \
        -e 's/^min_uid .*/min_uid                      0/' \
        -e 's/^min_gid .*/min_gid                      0/' \
        -e 's/^login_shells .*/login_shells                 sh,ksh,csh,tcsh/' \
        /usr/share/gridengine/default-configuration > "$conf_dir/global"
    grep -q 'flush_time=00:00:01' "$conf_dir/global" || die "no flush_time in default-configuration"
    chmod 755 "$conf_dir"; chmod 644 "$conf_dir/global"
    su -s /bin/sh sgeadmin -c "SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL /usr/lib/gridengine/spooldefaults configuration $conf_dir/global" \
        > "$GE_DIR/spooldefaults.out" 2>&1 || die "spooldefaults configuration failed"
    cp "$conf_dir/global" "$GE_DIR/global.conf"

    mkdir -p /var/run/gridengine
    chown sgeadmin: /var/run/gridengine
    rm -f "$SPOOL/qmaster/qmaster.pid"
    log "starting qmaster"
    /usr/sbin/sge_qmaster > "$GE_DIR/qmaster.out" 2>&1 || die "sge_qmaster exited with $?"
    wait_for "$READY_TIMEOUT" "qmaster.pid" test -s "$SPOOL/qmaster/qmaster.pid"
    qmaster_pid=$(cat "$SPOOL/qmaster/qmaster.pid")
    rm -rf "$conf_dir"
fi
echo "$qmaster_pid" > "$GE_DIR/qmaster.pid"
wait_for "$READY_TIMEOUT" "qmaster to answer qconf -sh" qmaster_answers
log "qmaster answers (pid $qmaster_pid)"

# --- cluster configuration (through qmaster; each step is idempotent) -----------------------------
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
qconf -sh 2>/dev/null | grep -qx "$HOST" || qconf -ah "$HOST" >/dev/null 2>&1
qconf -ss 2>/dev/null | grep -qx "$HOST" || qconf -as "$HOST" >/dev/null 2>&1

# Scheduler: run every second and right after a submit / job end (defaults: 15 s, no flush).
qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval                 0:0:1/' \
                    -e 's/^flush_submit_sec .*/flush_submit_sec                  1/' \
                    -e 's/^flush_finish_sec .*/flush_finish_sec                  1/' > "$tmp/sched"
qconf -Msconf "$tmp/sched" >/dev/null 2>&1 || die "qconf -Msconf failed: $(qconf -Msconf "$tmp/sched" 2>&1)"

# Parallel environment smp: `qsub -pe smp N` gets N slots on the one host.
cat > "$tmp/smp" <<EOF
pe_name            smp
slots              $SLOTS
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
if qconf -spl 2>/dev/null | grep -qx smp; then
    qconf -Mp "$tmp/smp" >/dev/null 2>&1 || die "qconf -Mp smp failed"
else
    qconf -Ap "$tmp/smp" >/dev/null 2>&1 || die "qconf -Ap smp failed: $(qconf -Ap "$tmp/smp" 2>&1)"
fi

# Queue all.q on this host, from the default template (its pe_list names PEs that do not exist).
if qconf -sql 2>/dev/null | grep -qx all.q; then
    qconf -sq all.q > "$tmp/all.q"
    verb=-Mq
else
    qconf -sq > "$tmp/all.q"
    verb=-Aq
fi
sed -i -e 's/^qname .*/qname                 all.q/' \
       -e "s/^hostlist .*/hostlist              $HOST/" \
       -e "s/^slots .*/slots                 $SLOTS/" \
       -e 's/^load_thresholds .*/load_thresholds       NONE/' \
       -e 's/^pe_list .*/pe_list               smp/' "$tmp/all.q"
qconf $verb "$tmp/all.q" >/dev/null 2>&1 || die "qconf $verb all.q failed: $(qconf $verb "$tmp/all.q" 2>&1)"
log "configured (scheduler 1 s, pe smp, all.q with $SLOTS slots)"

# --- execd -----------------------------------------------------------------------------------------
execd_pid=$(recorded execd)
if ! alive "$execd_pid" sge_execd; then
    execd_pid=$(cat "$SPOOL"/execd/*/execd.pid 2>/dev/null | tail -n 1 || true)
fi
if alive "$execd_pid" sge_execd; then
    log "execd already running (pid $execd_pid)"
else
    rm -f "$SPOOL"/execd/*/execd.pid
    log "starting execd"
    /usr/sbin/sge_execd > "$GE_DIR/execd.out" 2>&1 || die "sge_execd exited with $?"
    # The spool directory is named after the unaliased name (here "localhost").
    wait_for "$READY_TIMEOUT" "execd.pid" sh -c "cat $SPOOL/execd/*/execd.pid"
    execd_pid=$(cat "$SPOOL"/execd/*/execd.pid | tail -n 1)
fi
echo "$execd_pid" > "$GE_DIR/execd.pid"

wait_for "$READY_TIMEOUT" "queue all.q@$HOST to be ready" queue_ready
log "ready: qmaster pid $qmaster_pid, execd pid $execd_pid, queue all.q@$HOST ($SLOTS slots)"
