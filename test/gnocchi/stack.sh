#!/usr/bin/env bash
# A real Gnocchi 4.4 (Debian 12) behind the real ceilometer-agent-notification (Zed), for
# `make e2e-gnocchi`: ceilopoll -> RabbitMQ (topic gnocchi-e2e) -> notification agent -> gnocchi:// -> Gnocchi.
#
#   stack.sh up DIR      apt-installs Gnocchi if missing, creates its own PostgreSQL database, writes
#                        DIR/gnocchi.conf, runs gnocchi-upgrade, starts the API (uwsgi, 127.0.0.1:8041) and
#                        gnocchi-metricd, runs ceilometer-upgrade against it, starts a notification agent
#                        whose only sink is the gnocchi publisher, listening on gnocchi-e2e.sample only.
#   stack.sh down DIR    stops what `up DIR` started (by the pids in DIR, checked against /proc), drops
#                        the database it created, deletes the gnocchi-e2e.* queues, removes DIR/storage.
#   stack.sh status DIR
#
# Nothing else is touched: not /etc/gnocchi, not /etc/ceilometer's config, not notifications.sample
# (other tests' agents consume that), not the lab guests.
# Env: TRANSPORT_URL (rabbit://guest:guest@127.0.0.1:5672/), TOPIC (gnocchi-e2e), GNOCCHI_PORT (8041),
#      GNOCCHI_DB (ceilopoll_gnocchi_e2e), PG_HOST (127.0.0.1), PG_PORT (5432),
#      ARCHIVE_POLICY (ceilometer-high: see test/gnocchi/README.md), START_TIMEOUT_S (90)
set -euo pipefail

TRANSPORT_URL=${TRANSPORT_URL:-rabbit://guest:guest@127.0.0.1:5672/}
TOPIC=${TOPIC:-gnocchi-e2e}
GNOCCHI_PORT=${GNOCCHI_PORT:-8041}
GNOCCHI_DB=${GNOCCHI_DB:-ceilopoll_gnocchi_e2e}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
ARCHIVE_POLICY=${ARCHIVE_POLICY:-ceilometer-high}
START_TIMEOUT_S=${START_TIMEOUT_S:-90}
GNOCCHI_URL=http://127.0.0.1:$GNOCCHI_PORT
# what the agent declares: one queue per priority, all bound to the `ceilometer` exchange
AGENT_QUEUES="$TOPIC.audit $TOPIC.critical $TOPIC.debug $TOPIC.error $TOPIC.info $TOPIC.sample $TOPIC.warn"

die() {
  echo "stack.sh: $*" >&2
  exit 1
}
log() { echo "stack.sh: $(date -u +%H:%M:%S) $*" >&2; }
need_root() { [[ $(id -u) -eq 0 ]] || die "run as root (apt-get, the postgres user, process groups)"; }

# ---------------------------------------------------------------------------------------------------------
# packages

install_packages() {
  local missing=()
  local p
  for p in gnocchi-api gnocchi-metricd python3-gnocchi python3-gnocchiclient ceilometer-agent-notification uwsgi-plugin-python3; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if ! command -v pg_ctlcluster >/dev/null; then missing+=(postgresql); fi
  ((${#missing[@]} > 0)) || return 0
  log "apt-get install ${missing[*]}"
  # The packages' postinsts would start gnocchi-api, metricd and a notification agent with /etc's
  # config. policy-rc.d answering 101 stops that; put one in only if the machine's does not deny.
  local ours=0
  local prc=0
  if [[ -x /usr/sbin/policy-rc.d ]]; then /usr/sbin/policy-rc.d gnocchi-api start >/dev/null 2>&1 || prc=$?; fi
  if ((prc != 101)); then
    [[ ! -e /usr/sbin/policy-rc.d ]] || die "/usr/sbin/policy-rc.d allows service starts: install the packages by hand first"
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    ours=1
  fi
  local t0=$SECONDS rc=0
  export DEBIAN_FRONTEND=noninteractive
  if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then apt-get update -q; fi
  # dbconfig-common asks whether to configure a database: the answer is no, we make our own
  echo 'gnocchi-common gnocchi/configure_db boolean false' | debconf-set-selections
  apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "${missing[@]}" || rc=$?
  if ((ours)); then rm -f /usr/sbin/policy-rc.d; fi
  ((rc == 0)) || die "apt-get install failed ($rc)"
  log "installed in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------------------
# PostgreSQL: our own database in the machine's cluster (trust auth on 127.0.0.1)

pg_up() { (exec 3<>"/dev/tcp/$PG_HOST/$PG_PORT") 2>/dev/null; }
# as the postgres superuser over the local socket (peer auth, Debian's default)
psql_admin() { runuser -u postgres -- psql -p "$PG_PORT" -X -q -At -v ON_ERROR_STOP=1 "$@"; }

start_postgres() {
  pg_up && return 0
  log "PostgreSQL is not answering on $PG_HOST:$PG_PORT: starting the cluster"
  local cluster
  cluster=$(pg_lsclusters -h | awk 'NR == 1 { print $1 " " $2 }')
  [[ -n $cluster ]] || die "no PostgreSQL cluster (pg_lsclusters): create one with pg_createcluster"
  # shellcheck disable=SC2086 # version and name
  pg_ctlcluster $cluster start
  echo "$cluster" >"$DIR/postgres.started"
  local i
  for i in $(seq 1 30); do pg_up && return 0; sleep 1; done
  die "PostgreSQL did not come up on $PG_HOST:$PG_PORT"
}

# Our own role (password auth works whatever pg_hba.conf says for 127.0.0.1: trust, md5 or scram) and
# database, both named GNOCCHI_DB; the markers in DIR say what down may drop.
create_database() {
  if [[ -n $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$GNOCCHI_DB'") ]]; then
    [[ -f $DIR/database.created ]] ||
      die "database $GNOCCHI_DB exists and is not this run's ($DIR/database.created missing): 'dropdb $GNOCCHI_DB' if it is a leftover, or GNOCCHI_DB=another"
    log "dropping the leftover database $GNOCCHI_DB of an earlier run in $DIR"
    psql_admin -c "DROP DATABASE \"$GNOCCHI_DB\""
  fi
  PG_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  if [[ -n $(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$GNOCCHI_DB'") ]]; then
    [[ -f $DIR/role.created ]] || die "role $GNOCCHI_DB exists and is not this run's ($DIR/role.created missing)"
    psql_admin -c "ALTER ROLE \"$GNOCCHI_DB\" LOGIN PASSWORD '$PG_PASSWORD'"
  else
    psql_admin -c "CREATE ROLE \"$GNOCCHI_DB\" LOGIN PASSWORD '$PG_PASSWORD'"
  fi
  echo "$GNOCCHI_DB" >"$DIR/role.created"
  psql_admin -c "CREATE DATABASE \"$GNOCCHI_DB\" OWNER \"$GNOCCHI_DB\" ENCODING 'UTF8'"
  echo "$GNOCCHI_DB" >"$DIR/database.created"
}

# ---------------------------------------------------------------------------------------------------------
# processes: each in its own session; DIR/<name>.pid, checked against /proc/PID/cmdline before a signal

proc_pid() {
  local name=$1 pattern=$2 pid
  [[ -f $DIR/$name.pid ]] || return 1
  pid=$(<"$DIR/$name.pid")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern" || return 1
  echo "$pid"
}

spawn() {
  local name=$1 pid own i
  shift
  : >"$DIR/$name.log"
  setsid "$@" </dev/null >>"$DIR/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$DIR/$name.pid"
  # Until the fork has exec'd, /proc/PID/cmdline is still this script's, and proc_pid would take the new
  # process for gone ("exited" with an empty log, seen once in CI on a loaded machine): wait for the exec.
  own=$(tr '\0' ' ' <"/proc/$$/cmdline")
  for ((i = 0; i < 100; i++)); do
    [[ $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) != "$own" ]] && return 0
    sleep 0.05
  done
  die "$name (pid $pid) has not started $1 after 5 s"
}

stop_proc() {
  local name=$1 pattern=$2 pid
  if ! pid=$(proc_pid "$name" "$pattern"); then
    rm -f "$DIR/$name.pid"
    return 0
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while kill -0 "$pid" 2>/dev/null || pgrep -g "$pid" >/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name (pid $pid) still there after 20 s: SIGKILL to its process group"
      kill -KILL -- "-$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$DIR/$name.pid"
  log "stopped $name (pid $pid)"
}

# ---------------------------------------------------------------------------------------------------------
# Gnocchi

write_gnocchi_conf() {
  mkdir -p "$DIR/storage" "$DIR/gnocchi.conf.d"
  (umask 077 && : >"$DIR/gnocchi.conf") # it holds the database password
  cat >"$DIR/gnocchi.conf" <<EOF
# ceilopoll make e2e-gnocchi (test/gnocchi/stack.sh up)
[DEFAULT]
debug = false
# the indexer doubles as tooz's coordinator (gnocchi's default when coordination_url is unset)

[api]
# no Keystone: HTTP basic auth, the user name is the identity, "admin" has the admin role
auth_mode = basic
paste_config = /usr/lib/python3/dist-packages/gnocchi/rest/api-paste.ini

[indexer]
url = postgresql://$GNOCCHI_DB:$PG_PASSWORD@$PG_HOST:$PG_PORT/$GNOCCHI_DB

[storage]
driver = file
file_basepath = $DIR/storage

[metricd]
workers = 1
metric_processing_delay = 2
EOF
  cat >"$DIR/gnocchi-api-uwsgi.ini" <<EOF
[uwsgi]
# Debian's uwsgi is modular: the python3 plugin runs the app; http-socket serves HTTP itself
plugins = python3,http
http-socket = 127.0.0.1:$GNOCCHI_PORT
wsgi = gnocchi.rest.wsgi
# sys.argv for oslo.config inside the app
pyargv = --config-file $DIR/gnocchi.conf --config-dir $DIR/gnocchi.conf.d
master = true
processes = 2
threads = 4
enable-threads = true
lazy-apps = true
die-on-term = true
no-orphans = true
buffer-size = 65535
# keep-alive connections get dropped by uwsgi's http-socket: clients must not reuse them
add-header = Connection: close
EOF
}

gnocchi_status() { curl -fsS -o /dev/null -m 5 -u admin: "$GNOCCHI_URL/v1/status" 2>/dev/null; }

start_gnocchi() {
  log "gnocchi-upgrade"
  gnocchi-upgrade --config-file "$DIR/gnocchi.conf" --config-dir "$DIR/gnocchi.conf.d" >"$DIR/gnocchi-upgrade.log" 2>&1 ||
    die "gnocchi-upgrade failed: $(tail -n 20 "$DIR/gnocchi-upgrade.log")"
  if (exec 3<>"/dev/tcp/127.0.0.1/$GNOCCHI_PORT") 2>/dev/null; then die "something already listens on 127.0.0.1:$GNOCCHI_PORT"; fi
  spawn api uwsgi --ini "$DIR/gnocchi-api-uwsgi.ini"
  spawn metricd gnocchi-metricd --config-file "$DIR/gnocchi.conf" --config-dir "$DIR/gnocchi.conf.d"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  until gnocchi_status; do
    proc_pid api "$DIR/gnocchi-api-uwsgi.ini" >/dev/null || die "the Gnocchi API exited: $(tail -n 30 "$DIR/api.log")"
    ((SECONDS < deadline)) || die "the Gnocchi API does not answer on $GNOCCHI_URL after $START_TIMEOUT_S s: $(tail -n 30 "$DIR/api.log")"
    sleep 0.5
  done
  proc_pid metricd "$DIR/gnocchi.conf" >/dev/null || die "gnocchi-metricd exited: $(tail -n 30 "$DIR/metricd.log")"
  log "Gnocchi API on $GNOCCHI_URL, metricd running"
}

# ---------------------------------------------------------------------------------------------------------
# Ceilometer: resource types, then the notification agent with the gnocchi publisher

write_ceilometer_conf() {
  mkdir -p "$DIR/ceilometer.conf.d" "$DIR/lock"
  cat >"$DIR/ceilometer.conf" <<EOF
# ceilopoll make e2e-gnocchi: notification agent with the gnocchi publisher (test/gnocchi/stack.sh up)
[DEFAULT]
transport_url = $TRANSPORT_URL
host = ceilopoll-gnocchi-e2e
debug = false
use_stderr = true
pipeline_cfg_file = $DIR/pipeline.yaml

[notification]
pipelines = meter
workers = 1
notification_control_exchanges = ceilometer

[oslo_messaging_notifications]
# not "notifications": other tests' agents consume notifications.sample
topics = $TOPIC

[oslo_messaging_rabbit]
amqp_durable_queues = false
amqp_auto_delete = false

[service_credentials]
# gnocchiclient's keystoneauth plugin for Gnocchi's basic auth mode
auth_type = gnocchi-basic
user = admin
endpoint = $GNOCCHI_URL

[publisher]
telemetry_secret = change this for valid signing

[oslo_concurrency]
lock_path = $DIR/lock
EOF
  cat >"$DIR/pipeline.yaml" <<EOF
---
sources:
    - name: meter_source
      meters:
          - "memory"
          - "memory.*"
      sinks:
          - meter_sink
sinks:
    - name: meter_sink
      publishers:
          - gnocchi://?archive_policy=$ARCHIVE_POLICY&filter_project=service&resources_definition_file=/etc/ceilometer/gnocchi_resources.yaml
EOF
}

# queue operations over AMQP with py-amqp (the agent's packages bring it)
amqp_tool() {
  /usr/bin/python3 - "$TRANSPORT_URL" "$@" <<'PY'
import sys
from urllib.parse import unquote, urlsplit
import amqp
url = urlsplit(sys.argv[1].split(',')[0])
action, queues = sys.argv[2], sys.argv[3:]
conn = amqp.Connection(host=f'{url.hostname or "127.0.0.1"}:{url.port or 5672}',
                       userid=unquote(url.username or 'guest'), password=unquote(url.password or 'guest'),
                       virtual_host=unquote(url.path[1:]) or '/', connect_timeout=5)
conn.connect()
for q in queues:
    ch = conn.channel()
    try:
        if action == 'consumers':
            print(ch.queue_declare(queue=q, passive=True).consumer_count)
        elif action == 'delete':
            ch.queue_delete(queue=q)
            print(q)
    except amqp.exceptions.NotFound:
        if action == 'consumers':
            print(-1)
    finally:
        if ch.is_open:
            ch.close()
conn.close()
PY
}

start_agent() {
  log "ceilometer-upgrade (Ceilometer's resource types in Gnocchi)"
  ceilometer-upgrade --config-file "$DIR/ceilometer.conf" --config-dir "$DIR/ceilometer.conf.d" --retry 3 \
    >"$DIR/ceilometer-upgrade.log" 2>&1 || die "ceilometer-upgrade failed: $(tail -n 20 "$DIR/ceilometer-upgrade.log")"
  local n
  n=$(amqp_tool consumers "$TOPIC.sample") || die "RabbitMQ ($TRANSPORT_URL) is not reachable"
  ((n <= 0)) || die "$TOPIC.sample already has $n consumer(s): a leftover agent? ($(pgrep -a -f 'ceilometer-agent-notification: master' | cut -c1-200))"
  spawn agent /usr/bin/ceilometer-agent-notification --config-file "$DIR/ceilometer.conf" --config-dir "$DIR/ceilometer.conf.d"
  local deadline=$((SECONDS + START_TIMEOUT_S))
  while :; do
    proc_pid agent "$DIR/ceilometer.conf" >/dev/null || die "the notification agent exited: $(tail -n 30 "$DIR/agent.log")"
    n=$(amqp_tool consumers "$TOPIC.sample" 2>/dev/null) || n=-1
    ((n > 0)) && break
    if grep -q 'Could not load the following pipelines' "$DIR/agent.log"; then die "the agent could not load $DIR/pipeline.yaml: $(grep ERROR "$DIR/agent.log" | tail -n 5)"; fi
    ((SECONDS < deadline)) || die "no consumer on $TOPIC.sample after $START_TIMEOUT_S s: $(tail -n 30 "$DIR/agent.log")"
    sleep 0.3
  done
  log "notification agent consumes $TOPIC.sample; sink gnocchi://?archive_policy=$ARCHIVE_POLICY"
}

# ---------------------------------------------------------------------------------------------------------

cmd_up() {
  need_root
  mkdir -p "$DIR"
  local t0=$SECONDS
  install_packages
  start_postgres
  if proc_pid api "$DIR/gnocchi-api-uwsgi.ini" >/dev/null || proc_pid agent "$DIR/ceilometer.conf" >/dev/null; then
    die "a stack already runs in $DIR: '$0 down $DIR' first"
  fi
  rm -rf "$DIR/storage"
  create_database
  write_gnocchi_conf
  start_gnocchi
  write_ceilometer_conf
  start_agent
  log "up in $((SECONDS - t0)) s ($DIR)"
}

cmd_down() {
  need_root
  [[ -d $DIR ]] || die "no such directory: $DIR"
  stop_proc agent "$DIR/ceilometer.conf"
  stop_proc metricd "$DIR/gnocchi.conf"
  stop_proc api "$DIR/gnocchi-api-uwsgi.ini"
  # shellcheck disable=SC2086 # a list of names
  amqp_tool delete $AGENT_QUEUES 2>/dev/null | sed 's/^/stack.sh: deleted queue /' >&2 || true
  if [[ -f $DIR/database.created ]]; then
    psql_admin -c "DROP DATABASE IF EXISTS \"$(<"$DIR/database.created")\"" && rm -f "$DIR/database.created" && log "dropped database $GNOCCHI_DB"
  fi
  if [[ -f $DIR/role.created ]]; then
    psql_admin -c "DROP ROLE IF EXISTS \"$(<"$DIR/role.created")\"" && rm -f "$DIR/role.created" && log "dropped role $GNOCCHI_DB"
  fi
  rm -rf "$DIR/storage"
  if [[ -f $DIR/postgres.started ]]; then
    # shellcheck disable=SC2046 # version and name
    pg_ctlcluster $(<"$DIR/postgres.started") stop && rm -f "$DIR/postgres.started"
  fi
}

cmd_status() {
  local rc=0 name pattern pid
  for name in api metricd agent; do
    case $name in
      api) pattern=$DIR/gnocchi-api-uwsgi.ini ;;
      metricd) pattern=$DIR/gnocchi.conf ;;
      agent) pattern=$DIR/ceilometer.conf ;;
    esac
    if pid=$(proc_pid "$name" "$pattern"); then echo "$name: running, pid $pid"; else
      echo "$name: not running"
      rc=3
    fi
  done
  return $rc
}

DIR=${2:-}
[[ -n $DIR ]] || { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)
case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  *) die "usage: stack.sh up|down|status DIR" ;;
esac
