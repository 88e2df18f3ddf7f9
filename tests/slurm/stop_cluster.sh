#!/usr/bin/env bash
# Stop the test cluster started by tests/slurm/start_cluster.sh RUN_DIR.
#
#   tests/slurm/stop_cluster.sh RUN_DIR
#
# 1. Cancels the cluster's jobs (scancel through RUN_DIR's slurm.conf, so only this
#    cluster is addressed) and gives them a few seconds to end.
# 2. Stops slurmd, slurmctld and munged by the PIDs in their pid files: SIGTERM, then
#    SIGKILL after 10 s. A PID is signalled only while its /proc/PID/comm still names the
#    daemon, so a recycled PID is never hit.
# 3. Kills leftovers by PID: slurmstepd processes outlive slurmd by design. Any process
#    that still holds a file open under RUN_DIR (a private directory of this cluster: its
#    spool sockets, logs) belongs to this cluster and is killed.
# Safe to run more than once, and on a half-started cluster. Always exits 0.
set -uo pipefail

RUN_DIR="${1:?usage: stop_cluster.sh RUN_DIR}"
[ -d "$RUN_DIR" ] || exit 0
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
export PATH="$PATH:/usr/sbin:/sbin"
log() { echo "stop_cluster: $*" >&2; }

alive() {  # alive PID NAME: PID runs and its command name starts with NAME
    local comm
    [ -n "$1" ] && comm="$(cat "/proc/$1/comm" 2>/dev/null)" || return 1
    [[ "$comm" == "$2"* ]]
}

stop_pidfile() {  # stop_pidfile NAME
    local name="$1" pidfile="$RUN_DIR/run/$1.pid" pid
    [ -s "$pidfile" ] || return 0
    pid="$(tr -dc '0-9' <"$pidfile")"
    if ! alive "$pid" "$name"; then rm -f "$pidfile"; return 0; fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 100); do
        alive "$pid" "$name" || break
        sleep 0.1
    done
    if alive "$pid" "$name"; then
        log "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    rm -f "$pidfile"
}

# 1. Cancel jobs while slurmctld is still up.
if [ -f "$RUN_DIR/etc/slurm.conf" ] && [ -s "$RUN_DIR/run/slurmctld.pid" ] \
    && alive "$(tr -dc '0-9' <"$RUN_DIR/run/slurmctld.pid")" slurmctld; then
    export SLURM_CONF="$RUN_DIR/etc/slurm.conf"
    if [ -n "$(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null)" ]; then
        log "cancelling remaining jobs"
        timeout 10 scancel --full -u "$(id -un)" 2>/dev/null
        for _ in $(seq 1 50); do
            [ -z "$(timeout 10 squeue -h -t PD,R,CG,S -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

# 2. The daemons, by pid file: slurmd first (it reports to slurmctld), munged last.
stop_pidfile slurmd
stop_pidfile slurmctld
stop_pidfile munged

# 3. Leftover slurmstepd/job processes that still have a file open under RUN_DIR.
for fd_dir in /proc/[0-9]*/fd; do
    pid="${fd_dir#/proc/}"; pid="${pid%/fd}"
    [ "$pid" = "$$" ] && continue
    if ls -l "$fd_dir" 2>/dev/null | grep -qF -- "-> $RUN_DIR/"; then
        log "killing leftover process $pid ($(cat "/proc/$pid/comm" 2>/dev/null))"
        kill -KILL "$pid" 2>/dev/null
    fi
done
exit 0
