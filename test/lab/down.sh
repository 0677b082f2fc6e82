#!/bin/bash
# down.sh -- undo up.sh: destroy + undefine the lab guests (uuid prefix c0ffee00-), remove
# $LAB_STATE/guests.tsv, then stop libvirtd and virtlogd by the PIDs in /run/libvirt-lab/*.pid
# (only daemons that up.sh started; daemons it found running are left alone).
# Env: KEEP_DAEMON=1 leaves the daemons running; LAB_STATE (/var/lib/libvirt/lab).
# Packages, the guest kernel/initrd and console logs stay.
set -euo pipefail
STATE=${LAB_STATE:-/var/lib/libvirt/lab}
PIDDIR=/run/libvirt-lab
export LIBVIRT_DEFAULT_URI=qemu:///system
T0=$(date +%s%N)
log() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[down %3d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"; }
[ "$(id -u)" = 0 ] || { echo "down.sh: run as root" >&2; exit 1; }
mkdir -p "$PIDDIR"
exec 9>"$PIDDIR/lab.lock"
if ! flock -n 9; then
  log "waiting for another up.sh/down.sh (lock $PIDDIR/lab.lock)"
  flock -w 600 9 || { echo "down.sh: another up.sh/down.sh still holds $PIDDIR/lab.lock after 600 s" >&2; exit 1; }
fi

# the lab is no longer there, whatever happens below
rm -f "$STATE/guests.tsv"
fail=0

stop_pid() {  # stop_pid NAME PIDFILE
  local name=$1 f=$2 pid
  [ -s "$f" ] || { log "$name: no pidfile $f (not started by up.sh), left alone"; return 0; }
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || { log "$name: bad pidfile $f, left alone"; return 0; }
  if ! kill -0 "$pid" 2>/dev/null; then log "$name: pid $pid not running"; rm -f "$f"; return 0; fi
  if ! grep -qx "$name" "/proc/$pid/comm" 2>/dev/null; then log "$name: pid $pid is not $name, left alone"; return 0; fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then log "$name: pid $pid ignored TERM, sending KILL"; kill -KILL "$pid" || true; fi
  rm -f "$f"
  log "$name: pid $pid stopped"
}

if virsh version >/dev/null 2>&1; then
  while read -r uuid; do
    case "$uuid" in c0ffee00-*) ;; *) continue ;; esac
    name=$(virsh domname "$uuid" 2>/dev/null | sed -n 1p) || name=""
    [ -n "$name" ] || name=$uuid
    qpid=""
    if [ -s "/run/libvirt/qemu/$name.pid" ]; then qpid=$(cat "/run/libvirt/qemu/$name.pid"); fi
    st=$(virsh domstate "$uuid" 2>/dev/null | sed -n 1p) || st=""
    if [ -n "$st" ] && [ "$st" != "shut off" ]; then
      if virsh destroy "$uuid" >/dev/null; then log "$name: destroyed"; else log "$name: destroy FAILED"; fail=1; fi
      st=$(virsh domstate "$uuid" 2>/dev/null | sed -n 1p) || st=""
    fi
    if virsh undefine "$uuid" >/dev/null; then log "$name: undefined"; else log "$name: undefine FAILED"; fail=1; fi
    # qemu normally exits on destroy; if libvirt says "shut off" but that guest's qemu pid is
    # still there, end it by pid
    if [ "$st" = "shut off" ] && [[ $qpid =~ ^[0-9]+$ ]] && kill -0 "$qpid" 2>/dev/null &&
       grep -q "guest=$name," "/proc/$qpid/cmdline" 2>/dev/null; then
      kill -KILL "$qpid" && log "$name: leftover qemu pid $qpid killed"
    fi
  done < <(virsh list --all --uuid)
else
  log "libvirtd not answering; no domains to clean"
fi

if [ "${KEEP_DAEMON:-0}" != 1 ]; then
  stop_pid libvirtd "$PIDDIR/libvirtd.pid"
  stop_pid virtlogd "$PIDDIR/virtlogd.pid"
else
  log "KEEP_DAEMON=1: daemons left running"
fi
[ $fail = 0 ] || { log "done, with failures above"; exit 1; }
log "done"
