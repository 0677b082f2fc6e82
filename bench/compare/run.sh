#!/usr/bin/env bash
# bench/compare/run.sh -- `make bench-compare`: ceilopoll against Debian's ceilometer-polling, Debian 12's
# (Ceilometer 19, Zed) and Debian 13's (Ceilometer 24, 2025.1), on the same libvirtd in the same run
# (bench/compare/compare.ts measures; this script prepares).
#
#   1. apt-installs ceilometer-agent-compute and python3-libvirt if missing, without letting dpkg start
#      the service (test/lab/apt-install-no-start.sh, shared with test/e2e/notification-agent.sh), and
#      makes the trixie root with Ceilometer 24 if missing (test/lab/ceilometer-trixie.sh), each only
#      when BENCH_AGENTS names that agent;
#   2. compiles ceilopoll to BENCH_BUILD_DIR (/var/tmp/ceilopoll-bench-compare; the agent runs as
#      `node .../src/cli/main.js run`, no transpiler);
#   3. optionally reshapes the lab first: LAB_GUESTS="stats stats stats" runs test/lab/up.sh with those
#      profiles, and the lab is put back to LAB_RESTORE (the Makefile's default 8 guests) afterwards;
#   4. runs compare.ts (env: BENCH_WORKLOADS, BENCH_CYCLES, BENCH_INTERVAL, BENCH_AGENTS, BENCH_OUT).
#
# Needs: root, the lab's libvirtd (make lab-up), RabbitMQ on 127.0.0.1:5672 (make rabbitmq-up).
set -euo pipefail
cd "$(dirname "$0")/../.."

LAB_RESTORE=${LAB_RESTORE:-stats stats stats none nostats noballoon paused shutoff}
log() { echo "bench-compare: $*" >&2; }
die() {
  log "$*"
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (apt-get, the lab's libvirtd socket)"

install_ceilometer() {
  if [[ -x /usr/bin/ceilometer-polling ]] && /usr/bin/python3 -c 'import libvirt, ceilometer.compute.virt.libvirt.inspector' 2>/dev/null; then
    return 0
  fi
  # without letting the package's postinst start the service (as test/e2e/notification-agent.sh does)
  test/lab/apt-install-no-start.sh ceilometer-agent-compute python3-libvirt
  # a policy that did not deny: the packaged agent would poll and publish with /etc/ceilometer's config
  local pidfile=/run/ceilometer/ceilometer-agent-compute.pid
  if [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then /etc/init.d/ceilometer-agent-compute stop || true; fi
}

AGENTS=${BENCH_AGENTS:-ceilopoll,ceilometer,ceilometer-trixie}
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"; }
if [[ ,$AGENTS, == *,ceilometer,* ]]; then
  install_ceilometer
  log "ceilometer-polling from python3-ceilometer $(version python3-ceilometer), libvirt-python $(version python3-libvirt)"
fi
if [[ ,$AGENTS, == *,ceilometer-trixie,* ]]; then
  # Debian 13's Ceilometer 24 in a trixie root beside the machine's (about 3 minutes the first time)
  test/lab/ceilometer-trixie.sh install
fi

# The agent runs compiled (node, no transpiler), built outside the repository so that neither lint nor
# git sees it; package.json and node_modules there make Node resolve it as the repository's ESM code.
BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-/var/tmp/ceilopoll-bench-compare}
export BENCH_BUILD_DIR
rm -rf "$BENCH_BUILD_DIR"
mkdir -p "$BENCH_BUILD_DIR"
npx tsc -p tsconfig.json --outDir "$BENCH_BUILD_DIR" || log "tsc reported errors; using what it emitted"
printf '{ "type": "module" }\n' >"$BENCH_BUILD_DIR/package.json"
ln -sfn "$PWD/node_modules" "$BENCH_BUILD_DIR/node_modules"
[[ -f $BENCH_BUILD_DIR/src/cli/main.js ]] || die "$BENCH_BUILD_DIR/src/cli/main.js missing after tsc"

reshaped=0
if [[ -n ${LAB_GUESTS:-} ]]; then
  log "reshaping the lab to: $LAB_GUESTS (restored to: $LAB_RESTORE)"
  reshaped=1
  test/lab/up.sh $LAB_GUESTS
fi
rc=0
npx tsx bench/compare/compare.ts || rc=$?
if [[ $reshaped -eq 1 ]]; then
  log "restoring the lab: $LAB_RESTORE"
  test/lab/up.sh $LAB_RESTORE || rc=1
fi
exit $rc
