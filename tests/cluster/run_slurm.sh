#!/usr/bin/env bash
# A real (one-node, loopback-only) SLURM cluster on this machine runs the tiny project with
# `snakemake --profile profiles/slurm`; sacct must list every job as COMPLETED and the outputs
# must equal a local run's. Needs root and Debian/Ubuntu (installs slurm-wlm and munge).
#
#     bash tests/cluster/run_slurm.sh          # KEEP=1 keeps the work folder for inspection
#
# munged, slurmctld and slurmd run from a private folder (own key, socket, ports on
# 127.0.0.1, state, logs) and are stopped by their pid files on exit. The one system-wide
# file is /etc/slurm/slurm.conf, for the duration of the run (a previous one is put back on
# exit): the job-step executor strips SLURM_* variables, SLURM_CONF included, before its
# nested srun, so a private config path alone cannot work (a real cluster has this file). There is no accounting database: jobcomp/filetxt
# records finished jobs and `sacct --completion` reads them (Debian 12's Slurm 22.05 has no
# accounting_storage/filetxt any more); the executor plugin polls with squeue
# (MinJobAge=3600 keeps finished jobs visible). The project layout, the profile adaptations
# and the comparisons live in tests/cluster/tiny_project.py.
set -euo pipefail
started=$(date +%s)
cd "$(dirname "$0")/../.."
REPO=$PWD
HELPER="$REPO/tests/cluster/tiny_project.py"

if [ "$(id -u)" != 0 ]; then
    echo "run_slurm.sh: needs root (apt-get install, slurmd launching jobs)" >&2
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! command -v sacct >/dev/null; then
    echo "run_slurm.sh: installing slurm-wlm and munge (apt-get)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends slurm-wlm munge
fi
[ -x .venv/bin/python ] || bash setup.sh
export PATH="$REPO/.venv/bin:$PATH"
# The tiny project downloads from its own file:// upstream: a mirror set in the caller's shell
# (TEXTCLF_MIRROR) would refuse those files, and a device choice does not belong to this check.
unset TEXTCLF_MIRROR TEXTCLF_DEVICE

WORK=$(mktemp -d /tmp/textclf-slurm.XXXXXX)
chmod 711 "$WORK"
ETC="$WORK/cluster"
mkdir -p "$ETC/state" "$ETC/spool" "$ETC/log"
CONF=/etc/slurm/slurm.conf

cleanup() {
    local rc=$?
    for name in slurmd slurmctld munged; do
        if [ -s "$ETC/$name.pid" ]; then
            kill "$(cat "$ETC/$name.pid")" 2>/dev/null || true
        fi
    done
    if [ -f "$ETC/slurm.conf.orig" ]; then
        cp -p "$ETC/slurm.conf.orig" "$CONF"
    elif [ -f "$ETC/slurm.conf" ] && cmp -s "$ETC/slurm.conf" "$CONF"; then
        rm -f "$CONF"
    fi
    if [ "$rc" != 0 ]; then
        echo "run_slurm.sh: FAILED (exit $rc); cluster logs:" >&2
        tail -n 20 "$ETC"/log/*.log >&2 || true
    fi
    if [ "${KEEP:-0}" = 1 ] || [ "$rc" != 0 ]; then
        echo "run_slurm.sh: work folder kept: $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# ---- munge and slurm on loopback, private to $ETC
dd if=/dev/urandom of="$ETC/munge.key" bs=1024 count=1 status=none
chmod 400 "$ETC/munge.key"
munged --force --socket="$ETC/munge.sock" --key-file="$ETC/munge.key" \
    --log-file="$ETC/log/munged.log" --pid-file="$ETC/munged.pid" --seed-file="$ETC/munged.seed"

read -r CTLD_PORT SLURMD_PORT < <(python - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
EOF
)
CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) / 2 ))
PARTITION=local
cat > "$ETC/slurm.conf" <<EOF
ClusterName=textclf-test
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$ETC/munge.sock
CredType=cred/munge
StateSaveLocation=$ETC/state
SlurmdSpoolDir=$ETC/spool
SlurmctldPidFile=$ETC/slurmctld.pid
SlurmdPidFile=$ETC/slurmd.pid
SlurmctldLogFile=$ETC/log/slurmctld.log
SlurmdLogFile=$ETC/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$ETC/jobcomp.txt
MinJobAge=3600
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$(dirname "$CONF")"
[ -f "$CONF" ] && cp -p "$CONF" "$ETC/slurm.conf.orig"
cp "$ETC/slurm.conf" "$CONF"
export SLURM_CONF="$CONF"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 60); do
    [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break
    sleep 1
done
sinfo
[ "$(sinfo -h -o %T)" = idle ] || { echo "run_slurm.sh: the node did not come up" >&2; exit 1; }

# ---- the same tiny project twice: on the cluster and locally
SLURM_PROJ=$(python "$HELPER" build "$WORK/slurm")
LOCAL_PROJ=$(python "$HELPER" build "$WORK/local" --upstream "$WORK/slurm/upstream")
TARGET=$(python "$HELPER" target)
OVERRIDE=$(python "$HELPER" slurm-profile "$WORK/override" --partition "$PARTITION" --cpus 1 --mem-mb 1000)

echo "== local run"
(cd "$LOCAL_PROJ" && snakemake --cores "$CPUS" "$TARGET") > "$WORK/local.log" 2>&1 ||
    { tail -n 40 "$WORK/local.log" >&2; exit 1; }
echo "== SLURM run: snakemake --profile profiles/slurm --workflow-profile $OVERRIDE $TARGET"
slurm_started=$(date +%s)
(cd "$SLURM_PROJ" && snakemake --profile profiles/slurm --workflow-profile "$OVERRIDE" "$TARGET") \
    > "$WORK/slurm.log" 2>&1 || { tail -n 60 "$WORK/slurm.log" >&2; exit 1; }
slurm_seconds=$(( $(date +%s) - slurm_started ))
grep -q "sbatch" "$WORK/slurm.log" || grep -qi "submitted" "$WORK/slurm.log" ||
    { echo "run_slurm.sh: no job was submitted to SLURM" >&2; exit 1; }

echo "== sacct"
sacct --completion --parsable2 --noheader --format=JobID,JobName,State,ExitCode | tee "$WORK/sacct.txt"
python "$HELPER" check-sacct "$WORK/slurm.log" "$WORK/sacct.txt"

echo "== outputs: SLURM run vs local run"
python "$HELPER" compare "$LOCAL_PROJ" "$SLURM_PROJ"

echo "run_slurm.sh: OK in $(( $(date +%s) - started )) s (SLURM run ${slurm_seconds} s)"
