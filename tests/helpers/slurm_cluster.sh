#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests of `--executor slurm`.
#
#   slurm_cluster.sh start DIR   munged, MariaDB, slurmdbd (so that sacct works), slurmctld, slurmd;
#                                configuration, state and logs in DIR; prints SLURM_CONF=DIR/slurm.conf
#   slurm_cluster.sh stop DIR    stops the daemons that `start DIR` started
#
# Needs root and Debian's packages: apt-get install slurm-wlm slurmdbd munge mariadb-server.
# Exits non-zero with one line on standard error saying what is missing or did not start.
set -uo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
export SLURM_CONF="$dir/slurm.conf"
db_port=${HARNESS_SLURM_DB_PORT:-16820}

fail() { echo "slurm_cluster: $*" >&2; exit 1; }

stop() {
    for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/slurmdbd.pid "$dir"/mysql.pid; do
        [[ -f "$pidfile" ]] || continue
        pid=$(cat "$pidfile")
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$pidfile"
    done
}

wait_for() {  # wait_for SECONDS WHAT COMMAND...
    local seconds=$1 what=$2; shift 2
    for _ in $(seq $((seconds * 5))); do ("$@") >/dev/null 2>&1 && return 0; sleep 0.2; done
    fail "$what did not come up in ${seconds}s (logs in $dir/log)"
}

if [[ "$cmd" == stop ]]; then stop; exit 0; fi
[[ "$cmd" == start ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

[[ $(id -u) == 0 ]] || fail "needs root (the daemons run as root here)"
for tool in munged slurmctld slurmd slurmdbd sacctmgr sbatch mariadbd mariadb-install-db; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install slurm-wlm slurmdbd munge mariadb-server)"
done
stop  # a cluster left over by an earlier session in the same folder
mkdir -p "$dir"/{log,state,spool,mysql}
host=$(hostname -s)

# munge: the key the package made, the default socket (slurm's auth plugin looks there)
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null
    [[ -f /etc/munge/munge.key ]] || { mungekey --create 2>/dev/null || fail "no /etc/munge/munge.key"; }
    chown munge:munge /etc/munge/munge.key 2>/dev/null
    runuser -u munge -- munged 2>"$dir/log/munged.err" || munged --force 2>>"$dir/log/munged.err" \
        || fail "munged did not start: $(tail -1 "$dir/log/munged.err")"
    wait_for 10 munged sh -c 'munge -n | unmunge'
fi

# MariaDB on a private port and folder, for slurmdbd (sacct reads the accounting from it)
if [[ ! -d "$dir/mysql/mysql" ]]; then
    mariadb-install-db --datadir="$dir/mysql" --user=root --skip-test-db >"$dir/log/mysql-install.log" 2>&1 \
        || fail "mariadb-install-db failed (see $dir/log/mysql-install.log)"
fi
mariadbd --no-defaults --user=root --datadir="$dir/mysql" --socket="$dir/mysql.sock" \
    --port="$db_port" --bind-address=127.0.0.1 --pid-file="$dir/mysql.pid" \
    --innodb-buffer-pool-size=32M --log-error="$dir/log/mysql.log" >/dev/null 2>&1 &
wait_for 60 MariaDB mariadb --no-defaults --socket="$dir/mysql.sock" -u root -e 'select 1'
mariadb --no-defaults --socket="$dir/mysql.sock" -u root -e \
    "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
     GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;" \
    || fail "could not create the accounting database user"

cat >"$dir/slurm.conf" <<EOF
ClusterName=harness
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=16819
MpiDefault=none
ReturnToService=2
SchedulerParameters=sched_interval=2
KillWait=5
MinJobAge=300
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$dir/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=16819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$dir/slurmdbd.pid
LogFile=$dir/log/slurmdbd.log
EOF
chmod 600 "$dir/slurmdbd.conf"

slurmdbd || fail "slurmdbd did not start (see $dir/log/slurmdbd.log)"
wait_for 30 slurmdbd sacctmgr -n list cluster
sacctmgr -i add cluster harness >/dev/null 2>&1
slurmctld || fail "slurmctld did not start (see $dir/log/slurmctld.log)"
wait_for 30 slurmctld scontrol ping
slurmd || fail "slurmd did not start (see $dir/log/slurmd.log)"
wait_for 30 "the node" sh -c "sinfo -h -N -o %t | grep -Eq '^(idle|mix|alloc)'"
echo "SLURM_CONF=$SLURM_CONF"
