#!/usr/bin/env bash
# Start a private single-node Slurm cluster on localhost for tests/test_slurm.py.
#
#   tests/slurm/start_cluster.sh RUN_DIR      # start; writes RUN_DIR/env.sh
#   . RUN_DIR/env.sh                          # exports SLURM_CONF (sinfo, sbatch, snakemake)
#   tests/slurm/stop_cluster.sh RUN_DIR       # stop, by the PIDs in RUN_DIR/run/*.pid
#
# Three daemons run: munged, slurmctld, slurmd. Everything they write lives in RUN_DIR:
#   RUN_DIR/etc/slurm.conf       generated from slurm.conf.template next to this script
#   RUN_DIR/munge/, munge-socket/ our own munge key and PRNG seed; munged's socket
#   RUN_DIR/state, RUN_DIR/spool slurmctld StateSaveLocation, slurmd SlurmdSpoolDir
#   RUN_DIR/log/*.log            munged.log, slurmctld.log, slurmd.log
#   RUN_DIR/run/*.pid            munged.pid, slurmctld.pid, slurmd.pid (stop_cluster.sh kills these)
#
# How it stays out of a system-wide Slurm's way: every Slurm binary (daemons, sbatch,
# squeue, sinfo, scontrol) reads the file named by SLURM_CONF or -f, the munge auth plugin
# connects to the socket named by AuthInfo=socket=... in that file, and munged takes
# --socket/--key-file/--pid-file/--log-file/--seed-file. So nothing is written under /etc,
# /run or /var, and the ports are our own. One thing insists on the default path: inside a
# job, snakemake-executor-plugin-slurm-jobstep strips SLURM_CONF before its nested `srun`,
# which then reads /etc/slurm/slurm.conf. slurmd therefore runs in a private mount
# namespace (unshare --mount) where RUN_DIR/etc is bind-mounted over /etc/slurm; its jobs
# inherit that view, and nobody else sees it. Only slurmd is in the namespace: snakemake
# and the client commands, outside, must reach the cluster through SLURM_CONF.
#
# Settings (environment variables, all optional):
#   SLURM_TEST_CTLD_PORT     slurmctld port        (default 36817)
#   SLURM_TEST_SLURMD_PORT   slurmd port           (default 36818)
#   SLURM_TEST_CLUSTER       ClusterName           (default snaketest)
#   SLURM_TEST_NODE          NodeName              (default snaketest-n1)
#   SLURM_TEST_PARTITION     default partition     (default debug)
#   SLURM_TEST_EXTRA_PARTITIONS  space-separated extra partitions on the same node, e.g. "gpu"
#                            so that a profile's slurm_partition: gpu needs no override
#   SLURM_TEST_START_TIMEOUT seconds to wait for each daemon (default 60)
#
# Exit status: 0 cluster up (node idle); 77 prerequisites missing (binaries, root, unshare);
# 1 a daemon did not come up (whatever had started is stopped again, logs are printed).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${1:?usage: start_cluster.sh RUN_DIR}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"

CTLD_PORT="${SLURM_TEST_CTLD_PORT:-36817}"
SLURMD_PORT="${SLURM_TEST_SLURMD_PORT:-36818}"
CLUSTER="${SLURM_TEST_CLUSTER:-snaketest}"
NODE="${SLURM_TEST_NODE:-snaketest-n1}"
PARTITION="${SLURM_TEST_PARTITION:-debug}"
EXTRA_PARTITIONS="${SLURM_TEST_EXTRA_PARTITIONS:-}"
TIMEOUT="${SLURM_TEST_START_TIMEOUT:-60}"

log() { echo "start_cluster: $*" >&2; }
skip() { echo "SKIP: $*" >&2; exit 77; }

# --- prerequisites -----------------------------------------------------------------------
missing=()
for bin in munged munge unmunge slurmctld slurmd sbatch squeue sinfo scontrol scancel srun; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$bin")
done
if [ "${#missing[@]}" -gt 0 ]; then
    skip "missing binaries: ${missing[*]} (Debian: apt-get install -y slurmctld slurmd slurm-client munge)"
fi
export PATH="$PATH:/usr/sbin:/sbin"
if [ "$(id -u)" != 0 ]; then
    # slurmd must be root to launch job steps (setuid to the job's user, slurmstepd).
    skip "slurmd needs root; running as uid $(id -u)"
fi

[ -d /etc/slurm ] || skip "/etc/slurm does not exist to bind-mount over (Debian's slurm-client creates it)"
unshare --mount --propagation private -- true 2>/dev/null \
    || skip "cannot create a private mount namespace (unshare --mount needs CAP_SYS_ADMIN)"

# Forget any Slurm environment we may have inherited (e.g. when run inside a Slurm job).
while IFS= read -r var; do unset "$var"; done < <(env | sed -n 's/^\(SLURM_[A-Za-z0-9_]*\)=.*/\1/p')

if [ -s "$RUN_DIR/run/slurmctld.pid" ] && kill -0 "$(cat "$RUN_DIR/run/slurmctld.pid")" 2>/dev/null; then
    log "a cluster is already running in $RUN_DIR"; exit 1
fi

mkdir -p "$RUN_DIR"/{etc,munge,munge-socket,state,spool,log,run}
chmod 0700 "$RUN_DIR/munge"          # the key: readable by the daemon's user only
chmod 0755 "$RUN_DIR/munge-socket"   # munged insists on a world-searchable socket directory
CONF="$RUN_DIR/etc/slurm.conf"
SOCKET="$RUN_DIR/munge-socket/munge.socket.2"
USER_NAME="$(id -un)"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$CTLD_PORT" "$SLURMD_PORT"; do
    if port_busy "$port"; then log "port $port is already in use"; exit 1; fi
done

# --- slurm.conf ------------------------------------------------------------------------
# `slurmd -C` prints this machine's real layout: "NodeName=<host> CPUs=2 Boards=1
# SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105". We keep all but
# the name, and give the node our own name and the loopback address.
hw="$(slurmd -C 2>/dev/null | head -n 1 | sed 's/^NodeName=[^ ]* *//')"
if ! grep -q 'CPUs=' <<<"$hw"; then
    cpus="$(nproc)"
    mem_mb="$(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo)"
    hw="CPUs=$cpus RealMemory=$mem_mb"
fi
NODE_LINE="NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$(hostname) $hw State=UNKNOWN"
EXTRA_LINES=""
for p in $EXTRA_PARTITIONS; do
    [ "$p" = "$PARTITION" ] && continue
    EXTRA_LINES+="PartitionName=$p Nodes=$NODE Default=NO MaxTime=INFINITE State=UP"$'\n'
done

# Literal substitution (no sed: values may contain '|' or '&').
TEMPLATE="$SCRIPT_DIR/slurm.conf.template" \
CONF_OUT="$CONF" \
R_CLUSTER_NAME="$CLUSTER" R_SLURMCTLD_PORT="$CTLD_PORT" R_SLURMD_PORT="$SLURMD_PORT" \
R_SLURM_USER="$USER_NAME" R_SLURMD_USER="$USER_NAME" R_RUN_DIR="$RUN_DIR" \
R_NODE_LINE="$NODE_LINE" R_NODE_NAME="$NODE" R_DEFAULT_PARTITION="$PARTITION" \
R_EXTRA_PARTITION_LINES="$EXTRA_LINES" \
awk '
    BEGIN { n = split("CLUSTER_NAME SLURMCTLD_PORT SLURMD_PORT SLURM_USER SLURMD_USER RUN_DIR NODE_LINE NODE_NAME DEFAULT_PARTITION EXTRA_PARTITION_LINES", keys, " ") }
    {
        line = $0
        for (i = 1; i <= n; i++) {
            pat = "@" keys[i] "@"; val = ENVIRON["R_" keys[i]]
            while ((pos = index(line, pat)) > 0)
                line = substr(line, 1, pos - 1) val substr(line, pos + length(pat))
        }
        print line > ENVIRON["CONF_OUT"]
    }' "$SCRIPT_DIR/slurm.conf.template"
export SLURM_CONF="$CONF"

cat >"$RUN_DIR/env.sh" <<EOF
# Source this to talk to the test cluster in $RUN_DIR.
export SLURM_CONF="$CONF"
EOF

fail() {
    log "$*"
    for f in munged slurmctld slurmd; do
        if [ -f "$RUN_DIR/log/$f.log" ]; then
            echo "----- tail $RUN_DIR/log/$f.log -----" >&2
            tail -n 25 "$RUN_DIR/log/$f.log" >&2 || true
        fi
    done
    "$SCRIPT_DIR/stop_cluster.sh" "$RUN_DIR" >&2 || true
    exit 1
}

wait_for() {  # wait_for DESCRIPTION COMMAND...: poll COMMAND until it succeeds
    local what="$1"; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${TIMEOUT}s waiting for $what"
        sleep 0.5
    done
}

# --- munged ------------------------------------------------------------------------------
if command -v mungekey >/dev/null 2>&1 || [ -x /usr/sbin/mungekey ]; then
    mungekey --create --keyfile="$RUN_DIR/munge/munge.key" --force >/dev/null 2>&1 \
        || dd if=/dev/urandom of="$RUN_DIR/munge/munge.key" bs=1024 count=1 status=none
else
    dd if=/dev/urandom of="$RUN_DIR/munge/munge.key" bs=1024 count=1 status=none
fi
chmod 0400 "$RUN_DIR/munge/munge.key"
log "starting munged (socket $SOCKET)"
# --force: munged refuses a socket whose path has a directory that is not world-searchable
# (RUN_DIR is often a 0700 temp dir, e.g. pytest's). Only this user connects, so that
# check guards nothing here; munged still checks the key's ownership and mode.
munged --force --socket="$SOCKET" --key-file="$RUN_DIR/munge/munge.key" \
    --pid-file="$RUN_DIR/run/munged.pid" --log-file="$RUN_DIR/log/munged.log" \
    --seed-file="$RUN_DIR/munge/munged.seed" \
    || fail "munged failed to start"
munge_roundtrip() { munge --socket="$SOCKET" -n | unmunge --socket="$SOCKET"; }
wait_for "munged" munge_roundtrip

# --- slurmctld ----------------------------------------------------------------------------
log "starting slurmctld (cluster $CLUSTER, port $CTLD_PORT)"
slurmctld -f "$CONF" -i || fail "slurmctld failed to start"
ctld_up() { scontrol ping | grep -q 'is UP'; }
wait_for "slurmctld" ctld_up

# --- slurmd -------------------------------------------------------------------------------
# slurmd runs in its own mount namespace in which RUN_DIR/etc is bind-mounted over
# /etc/slurm; its job steps (slurmstepd and the batch script) inherit that namespace.
# Reason: inside a job, snakemake-executor-plugin-slurm-jobstep launches the rule with a
# nested `srun` and first strips every SLURM_* variable except the job's id, SLURM_CONF
# included, so that srun falls back to the compiled-in /etc/slurm/slurm.conf (and then to
# a DNS SRV lookup: "Could not establish a configuration source"). The bind mount exists
# only in slurmd's namespace: the host's /etc/slurm, and any Slurm that uses it, see
# nothing. slurmctld, munged and all client commands outside use SLURM_CONF as before.
log "starting slurmd (node $NODE, port $SLURMD_PORT) in a private mount namespace"
RUN_DIR="$RUN_DIR" CONF="$CONF" NODE="$NODE" \
    unshare --mount --propagation private -- sh -c \
    'mount --bind "$RUN_DIR/etc" /etc/slurm && exec slurmd -f "$CONF" -N "$NODE"' \
    || fail "slurmd failed to start"
node_idle() { [ "$(sinfo -h -N -n "$NODE" -o %T | head -n 1)" = idle ]; }
wait_for "node $NODE to become idle" node_idle

log "cluster up: SLURM_CONF=$CONF"
sinfo >&2
