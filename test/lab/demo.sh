#!/usr/bin/env bash
# `make demo`: the agent as an operator would run it, on the lab's two guests (one healthy, one
# with a virtio balloon but no stats period). Reads a ceilometer.conf and polling.yaml made from
# config/'s samples (interval 10 s, the local RabbitMQ, a spool under .lab/demo), checks them,
# asks doctor what it sees, then runs the agent for DEMO_SECONDS (35) while a consumer on the bus
# prints every memory.usage sample that arrives, and /healthz is asked once. SIGTERM ends it.
set -euo pipefail
cd "$(dirname "$0")/../.."

DIR=.lab/demo
SECONDS_RUN=${DEMO_SECONDS:-35}
PORT=${DEMO_HTTP_PORT:-9317}
CLI=(node --import tsx src/cli/main.ts)

rm -rf "$DIR" && mkdir -p "$DIR"
# config/ceilometer.conf, pointed at this machine
sed -e 's#^transport_url = .*#transport_url = rabbit://guest:guest@127.0.0.1:5672/#' \
    -e "s#^\#spool_path = .*#spool_path = $PWD/$DIR/spool.sqlite#" \
    -e "s#^\#http_listen = .*#http_listen = 127.0.0.1:$PORT#" \
    config/ceilometer.conf > "$DIR/ceilometer.conf"
sed -e 's#interval: 300#interval: 10#' config/polling.yaml > "$DIR/polling.yaml"

echo; echo "== ceilopoll check-config --config-file $DIR/ceilometer.conf"
"${CLI[@]}" check-config --config-file "$DIR/ceilometer.conf"

echo; echo '== ceilopoll doctor: each instance, and why memory.usage is missing where it is'
"${CLI[@]}" doctor --config-file "$DIR/ceilometer.conf" || true   # 3 = problems found, which is the point here

echo; echo "== ceilopoll run for ${SECONDS_RUN} s (10 s interval); a consumer on the bus prints the memory.usage samples as they arrive"
node --import tsx test/support/demo-consumer.ts amqp://guest:guest@127.0.0.1:5672 $((SECONDS_RUN + 3)) memory.usage &
consumer=$!
sleep 2
"${CLI[@]}" run --config-file "$DIR/ceilometer.conf" &
agent=$!
sleep 15
echo; echo "== curl http://127.0.0.1:$PORT/healthz"
curl -sS "http://127.0.0.1:$PORT/healthz" || true
echo; echo
sleep $((SECONDS_RUN - 15))
kill -TERM "$agent"
wait "$agent"
echo "ceilopoll run exited with status $?"
wait "$consumer"
