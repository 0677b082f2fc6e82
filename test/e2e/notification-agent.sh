#!/usr/bin/env bash
# The real Debian 12 ceilometer-agent-notification (Ceilometer 19, Zed) as a test oracle: it consumes
# what ceilopoll publishes (exchange `ceilometer`, queue `notifications.sample`) from the machine's
# RabbitMQ and writes every sample its pipeline accepts to a file:// publisher, one JSON object a line.
#
#   notification-agent.sh install      apt-installs the agent without letting dpkg start the service
#   notification-agent.sh start DIR    writes DIR/ceilometer.conf + DIR/pipeline.yaml, runs the agent in the
#                                      background (DIR/agent.pid, DIR/agent.log, output DIR/accepted.jsonl)
#                                      and returns once it consumes from notifications.sample
#   notification-agent.sh stop DIR     stops the agent DIR/agent.pid names (nothing else), removes the
#                                      queues it declared other than notifications.sample, purges that one
#   notification-agent.sh status DIR   says whether it runs (exit 3 if not), how many samples it stored
#                                      and how many consumers notifications.sample has
#
# Env: CEILOMETER_RELEASE (debian12: the machine's Zed from apt; trixie: Debian 13's Ceilometer 24.0.0, 2025.1,
#      in the root test/lab/ceilometer-trixie.sh makes, which install then makes and start runs the agent in),
#      TRANSPORT_URL (rabbit://guest:guest@127.0.0.1:5672/), START_TIMEOUT_S (60), STOP_TIMEOUT_S (20),
#      METERS (memory.*: the pipeline source's meter patterns, comma-separated), FORCE=1 (start although
#      another process already consumes notifications.sample: samples would then be split between them),
#      PURGE=1 (start: empty notifications.sample first, so that messages left from earlier runs are not
#      stored as well).
# Readiness = a consumer on notifications.sample, seen over AMQP (py-amqp from the agent's packages).
set -euo pipefail

AGENT_BIN=/usr/bin/ceilometer-agent-notification
CEILOMETER_RELEASE=${CEILOMETER_RELEASE:-debian12}
TRIXIE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../lab/ceilometer-trixie.sh
case $CEILOMETER_RELEASE in
  debian12 | trixie) ;;
  *)
    echo "notification-agent.sh: CEILOMETER_RELEASE=$CEILOMETER_RELEASE: debian12 (Zed, the default) or trixie (Ceilometer 24)" >&2
    exit 1
    ;;
esac
QUEUE=notifications.sample
TRANSPORT_URL=${TRANSPORT_URL:-rabbit://guest:guest@127.0.0.1:5672/}
START_TIMEOUT_S=${START_TIMEOUT_S:-60}
STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-20}
METERS=${METERS:-memory.*}

die() {
  echo "notification-agent.sh: $*" >&2
  exit 1
}
log() { echo "notification-agent.sh: $*" >&2; }

need_root() { [[ $(id -u) -eq 0 ]] || die "run as root (apt-get; the agent's process group)"; }

# ---------------------------------------------------------------------------------------------------------
# install

# If a service got started anyway (a policy that did not deny), stop it: it would eat our messages.
stop_packaged_service() {
  local pidfile=/run/ceilometer/ceilometer-agent-notification.pid
  if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    log "the package's init script started the service (pid $(cat "$pidfile")): stopping it"
    /etc/init.d/ceilometer-agent-notification stop || true
  fi
}

cmd_install() {
  need_root
  if [[ $CEILOMETER_RELEASE == trixie ]]; then
    # the queue tool (amqp_tool) runs on the machine's python3 with the Zed packages' py-amqp
    CEILOMETER_RELEASE=debian12 cmd_install
    "$TRIXIE" install
    return
  fi
  if dpkg-query -W -f='${Status}' ceilometer-agent-notification 2>/dev/null | grep -q '^install ok installed$' &&
    [[ -x $AGENT_BIN ]]; then
    log "ceilometer-agent-notification $(dpkg-query -W -f='${Version}' ceilometer-agent-notification) already installed"
    return 0
  fi
  local t0=$SECONDS
  # without letting the package's postinst start the service (test/lab/apt-install-no-start.sh)
  "$(dirname "${BASH_SOURCE[0]}")/../lab/apt-install-no-start.sh" ceilometer-agent-notification
  stop_packaged_service
  [[ -x $AGENT_BIN ]] || die "$AGENT_BIN missing after apt-get install"
  log "installed ceilometer-agent-notification $(dpkg-query -W -f='${Version}' ceilometer-agent-notification) in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------------------
# start / stop / status

# The queues the agent declares: one per priority its endpoints implement, all bound to `ceilometer`.
AGENT_QUEUES="notifications.audit notifications.critical notifications.debug notifications.error notifications.info notifications.sample notifications.warn"

# Queue operations over AMQP with py-amqp, which the agent's packages bring (oslo.messaging -> kombu ->
# amqp), against the broker TRANSPORT_URL names. A rabbitmqctl call boots an Erlang node (~1.5 s);
# this takes ~0.2 s, which matters when polling for readiness.
#   amqp_tool consumers Q       consumer count of Q, or -1 if there is no such queue
#   amqp_tool existing Q...     the Qs that exist, one a line
#   amqp_tool delete-unused Q...  deletes each Q if empty and without consumers; prints those deleted
#   amqp_tool purge Q           empties Q if it exists
amqp_tool() {
  /usr/bin/python3 - "$TRANSPORT_URL" "$@" <<'PY'
import sys
from urllib.parse import unquote, urlsplit

import amqp

url = urlsplit(sys.argv[1].split(',')[0])  # oslo allows several hosts; the first will do here
action, queues = sys.argv[2], sys.argv[3:]
try:
    conn = amqp.Connection(host=f'{url.hostname or "127.0.0.1"}:{url.port or 5672}',
                           userid=unquote(url.username or 'guest'), password=unquote(url.password or 'guest'),
                           virtual_host=unquote(url.path[1:]) or '/', connect_timeout=5)
    conn.connect()
except Exception as e:
    sys.exit(f'cannot reach the broker at {url.hostname}:{url.port}: {e}')

def declare_passive(q):
    ch = conn.channel()
    try:
        return ch.queue_declare(queue=q, passive=True)
    except amqp.exceptions.NotFound:
        return None
    finally:
        if ch.is_open:
            ch.close()

for q in queues:
    if action == 'consumers':
        ok = declare_passive(q)
        print(-1 if ok is None else ok.consumer_count)
    elif action == 'existing':
        if declare_passive(q) is not None:
            print(q)
    elif action == 'delete-unused':
        ch = conn.channel()
        try:
            ch.queue_delete(queue=q, if_unused=True, if_empty=True)
            print(q)
        except (amqp.exceptions.NotFound, amqp.exceptions.PreconditionFailed):
            pass
        finally:
            if ch.is_open:
                ch.close()
    elif action == 'purge':
        if declare_passive(q) is not None:
            ch = conn.channel()
            ch.queue_purge(queue=q)
            ch.close()
    else:
        sys.exit(f'amqp_tool: unknown action {action}')
conn.close()
PY
}

consumer_count() { amqp_tool consumers "$QUEUE"; }

# for an error message: who consumes notifications.sample (rabbitmqctl knows the connections)
consumers_detail() {
  rabbitmqctl -q list_consumers queue_name channel_pid consumer_tag </dev/null 2>/dev/null |
    awk -F'\t' -v q="$QUEUE" '$1 == q { print "  channel " $2 ", consumer tag " $3 }' || true
}

# the pid in DIR/agent.pid, if that process is alive and is the agent
agent_pid() {
  local dir=$1 pid
  [[ -f $dir/agent.pid ]] || return 1
  pid=$(<"$dir/agent.pid")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "ceilometer-agent-notification --config-file $dir/ceilometer.conf" || return 1
  echo "$pid"
}

write_config() {
  local dir=$1
  mkdir -p "$dir/conf.d" "$dir/lock"
  cat >"$dir/ceilometer.conf" <<EOF
# ceilopoll e2e: the real notification agent as an oracle (written by test/e2e/notification-agent.sh start)
[DEFAULT]
transport_url = $TRANSPORT_URL
host = ceilopoll-e2e
debug = false
# oslo.log writes to stderr, which start sends to agent.log (workers inherit it)
use_stderr = true
pipeline_cfg_file = $dir/pipeline.yaml

[notification]
# the meter pipeline only: the event pipeline ignores the sample priority
pipelines = meter
workers = 1
# the default list also declares nova, glance, neutron, ... exchanges and binds queues to each
notification_control_exchanges = ceilometer

[oslo_messaging_notifications]
topics = notifications

[oslo_messaging_rabbit]
# oslo defaults, stated: the queue must match what ceilopoll and ceilometer-polling declare
amqp_durable_queues = false
amqp_auto_delete = false

[publisher]
telemetry_secret = change this for valid signing

[oslo_concurrency]
lock_path = $dir/lock
EOF
  {
    echo '---'
    echo 'sources:'
    echo '    - name: meter_source'
    echo '      meters:'
    local m
    IFS=, read -ra ms <<<"$METERS"
    for m in "${ms[@]}"; do echo "          - \"$m\""; done
    echo '      sinks:'
    echo '          - meter_sink'
    echo 'sinks:'
    echo '    - name: meter_sink'
    echo '      publishers:'
    echo "          - file://$dir/accepted.jsonl?json"
  } >"$dir/pipeline.yaml"
}

cmd_start() {
  need_root
  local dir=${1:?usage: start DIR}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  local agent=("$AGENT_BIN")
  if [[ $CEILOMETER_RELEASE == trixie ]]; then
    # the same program in the trixie root, which sees $dir at the same path; the exec chain keeps the pid
    "$TRIXIE" exec -- test -x "$AGENT_BIN" ||
      die "$AGENT_BIN not installed in the trixie root: run 'CEILOMETER_RELEASE=trixie $0 install' first"
    agent=("$TRIXIE" exec --bind "$dir" -- "$AGENT_BIN")
  else
    [[ -x $AGENT_BIN ]] || die "$AGENT_BIN not installed: run '$0 install' first"
  fi
  local pid
  if pid=$(agent_pid "$dir"); then die "an agent already runs for $dir (pid $pid): '$0 stop $dir' first"; fi

  local others
  others=$(consumer_count) || die "the broker named by TRANSPORT_URL is not reachable (is rabbitmq-server running?)"
  if [[ $others -gt 0 && ${FORCE:-0} != 1 ]]; then
    die "$QUEUE already has $others consumer(s) — another agent? Samples would be split between them.
$(consumers_detail)
Agents on this machine (a leftover of an interrupted run stops with '$0 stop DIR', DIR from its --config-file):
$(pgrep -a -f 'ceilometer-agent-notification: master' | cut -c1-300 || echo '  none')
Stop it, or FORCE=1."
  fi
  ((others >= 0)) || others=0

  if [[ ${PURGE:-0} == 1 ]]; then amqp_tool purge "$QUEUE"; fi
  write_config "$dir"
  # shellcheck disable=SC2086 # a list of names
  amqp_tool existing $AGENT_QUEUES >"$dir/queues.before"
  rm -f "$dir/accepted.jsonl" "$dir/agent.pid"
  : >"$dir/agent.log"
  local t0
  t0=$(date +%s.%N)
  # setsid: its own session and process group, so stop can signal the agent and its worker together.
  # (From a non-interactive shell the child is no group leader, so setsid execs in place: $! is the agent.)
  setsid "${agent[@]}" --config-file "$dir/ceilometer.conf" --config-dir "$dir/conf.d" \
    </dev/null >>"$dir/agent.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/agent.pid"

  local deadline=$((SECONDS + START_TIMEOUT_S)) n
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$dir/agent.pid"
      die "the agent exited during start-up. Last lines of $dir/agent.log:
$(tail -n 40 "$dir/agent.log")"
    fi
    n=$(consumer_count 2>/dev/null) || n=-1
    if ((n > others)); then break; fi
    # a bad pipeline.yaml does not stop the agent: it runs on, consuming nothing
    if grep -q 'Could not load the following pipelines' "$dir/agent.log"; then
      cmd_stop "$dir" 2>/dev/null || true
      die "the agent could not load its pipeline ($dir/pipeline.yaml; METERS=$METERS): stopped it again.
$(grep -E 'ERROR' "$dir/agent.log" | tail -n 5)"
    fi
    if ((SECONDS >= deadline)); then
      cmd_stop "$dir" 2>/dev/null || true
      die "no consumer on $QUEUE after ${START_TIMEOUT_S} s: agent pid $pid stopped again.
Last lines of $dir/agent.log:
$(tail -n 40 "$dir/agent.log")"
    fi
    sleep 0.3
  done
  local t1
  t1=$(date +%s.%N)
  log "agent pid $pid ($CEILOMETER_RELEASE) consumes $QUEUE after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s; output $dir/accepted.jsonl, log $dir/agent.log"
}

cmd_stop() {
  need_root
  local dir=${1:?usage: stop DIR}
  [[ -d $dir ]] || die "no such directory: $dir"
  dir=$(cd "$dir" && pwd -P)
  local pid
  if ! pid=$(agent_pid "$dir"); then
    rm -f "$dir/agent.pid"
    log "no agent running for $dir"
  else
    # cotyledon's master forwards SIGTERM to its worker and waits for it
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    local deadline=$((SECONDS + STOP_TIMEOUT_S))
    while kill -0 "$pid" 2>/dev/null || pgrep -g "$pid" >/dev/null; do
      if ((SECONDS >= deadline)); then
        log "agent pid $pid still there after ${STOP_TIMEOUT_S} s: SIGKILL to its process group"
        kill -KILL -- "-$pid" 2>/dev/null || true
        sleep 0.5
        break
      fi
      sleep 0.2
    done
    rm -f "$dir/agent.pid"
    log "agent pid $pid stopped"
  fi
  # The queues the agent declared besides notifications.sample (it declares one per priority): deleted
  # when empty and unused. Only those names, and only if they were not there before start.
  # notifications.sample stays, as oslo declared it (durable=false, auto_delete=false), emptied.
  if [[ -f $dir/queues.before ]]; then
    local q
    for q in $AGENT_QUEUES; do
      [[ $q != "$QUEUE" ]] && ! grep -qxF "$q" "$dir/queues.before" && echo "$q"
    done >"$dir/queues.ours" || true
    # shellcheck disable=SC2046 # a list of names
    amqp_tool delete-unused $(cat "$dir/queues.ours") | sed 's/^/notification-agent.sh: deleted queue /' >&2 || true
    if [[ $(consumer_count 2>/dev/null || echo -1) -eq 0 ]]; then amqp_tool purge "$QUEUE" || true; fi
    rm -f "$dir/queues.before" "$dir/queues.ours"
  fi
}

cmd_status() {
  local dir=${1:?usage: status DIR}
  local pid rc=0
  dir=$(cd "$dir" 2>/dev/null && pwd -P) || die "no such directory: $1"
  if pid=$(agent_pid "$dir"); then
    echo "running: pid $pid ($(pgrep -g "$pid" | wc -l) processes), log $dir/agent.log"
  else
    echo "not running"
    rc=3
  fi
  if [[ -f $dir/accepted.jsonl ]]; then echo "accepted: $(wc -l <"$dir/accepted.jsonl") samples in $dir/accepted.jsonl"; fi
  local n
  n=$(consumer_count 2>/dev/null) || n='?'
  case $n in
    -1) echo "queue $QUEUE: absent" ;;
    *) echo "queue $QUEUE: $n consumer(s)" ;;
  esac
  return $rc
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start "${2:-}" ;;
  stop) cmd_stop "${2:-}" ;;
  status) cmd_status "${2:-}" ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
