#!/bin/bash
# up.sh [PROFILE ...] | up.sh N -- bring up the ceilopoll lab on a Debian 12 machine (root, apt,
# no systemd as PID 1, no KVM) and make its guests match the request. Idempotent.
#   1. apt-get install libvirtd + QEMU (minimal set: no systemd, no default network)
#   2. start virtlogd + libvirtd as plain daemons (pidfiles in /run/libvirt-lab), or reuse them
#   3. build the tiny guest (Debian cloud kernel + busybox initramfs) into $GUEST_DIR
#   4. guest i (1-based) of the request is instance-%08x(i), uuid c0ffee00-0000-4000-8000-%012x(i);
#      define it from mkdomain.sh and bring it to the state its profile asks for:
#        stats     virtio balloon, <stats period='$PERIOD'/>, driver loaded: running
#        none      <memballoon model='none'/>: running
#        nostats   virtio balloon without <stats> (period 0): running (one boot-time stats snapshot)
#        noballoon virtio balloon with stats period, guest cmdline noballoon=1 (no driver): running
#        paused    like stats; started, waited for like stats, then suspended (stats frozen)
#        shutoff   like stats; defined, not started
#      A running guest whose live config differs from the requested one is destroyed and restarted;
#      other lab guests (uuid c0ffee00-0000-4000-8000-*) beyond the request are destroyed and undefined.
#   5. wait: stats and paused guests until they report balloon stats and (WAIT_PERIODIC=1) one
#      periodic refresh (then paused ones are suspended); nostats until the boot-time snapshot;
#      noballoon until the guest console prints READY; none until running.
#   6. print a table (name, profile, state, dommemstat values) and write $LAB_STATE/guests.tsv:
#      one line a guest, name<TAB>uuid<TAB>profile, in request order.
# No argument = "stats stats stats"; a single number N = N stats guests.
# Env: MEM_MIB (128) PERIOD (10) FILL_MIB (24) WAVE_MIB (0) WAIT_S (300) WAIT_PERIODIC (1)
#      LAB_STATE (/var/lib/libvirt/lab) GUEST_DIR ($LAB_STATE/guest) LIBVIRTD_CONF (unset; e.g.
#      test/lab/libvirtd-noauth.conf to let non-root users use the sockets, tests only)
#      (mkdomain.sh env vars such as VIRT_TYPE pass through; VIRT_TYPE=kvm hangs on these machines)
# Undo with down.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PROFILES_OK="stats none nostats noballoon paused shutoff"
usage() {
  echo "usage: up.sh [PROFILE ...]   PROFILE: ${PROFILES_OK// / | }  (default: stats stats stats)"
  echo "       up.sh N               N stats guests"
}

# ---- arguments -----------------------------------------------------------------
if [ $# -eq 0 ]; then
  set -- stats stats stats
elif [ $# -eq 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then
  n=$((10#$1)); set --
  for _ in $(seq 1 "$n"); do set -- "$@" stats; done
fi
PROFILES=()
for p in "$@"; do
  case " $PROFILES_OK " in
    *" $p "*) PROFILES+=("$p") ;;
    *) [ "$p" = -h ] || [ "$p" = --help ] || echo "up.sh: unknown profile '$p'" >&2
       usage >&2; exit 2 ;;
  esac
done

export LAB_STATE=${LAB_STATE:-/var/lib/libvirt/lab}
STATE=$LAB_STATE
PIDDIR=/run/libvirt-lab
export RUN_DIR=$STATE
export GUEST_DIR=${GUEST_DIR:-$STATE/guest}
export LIBVIRT_DEFAULT_URI=qemu:///system
export PERIOD=${PERIOD:-10}
WAIT_S=${WAIT_S:-300}
WAIT_PERIODIC=${WAIT_PERIODIC:-1}
PKGS=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86 busybox-static cpio)
UUID_PREFIX=c0ffee00-0000-4000-8000-
T0=$(date +%s%N)
log() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '[up %4d.%03ds] %s\n' $((ms / 1000)) $((ms % 1000)) "$*"; }
die() { echo "up.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
mkdir -p "$STATE" "$PIDDIR"
# one up.sh / down.sh at a time
exec 9>"$PIDDIR/lab.lock"   # (fd 9 is closed for the daemons below, or they would hold the lock)
if ! flock -n 9; then
  log "waiting for another up.sh/down.sh (lock $PIDDIR/lab.lock)"
  flock -w 600 9 || die "another up.sh/down.sh still holds $PIDDIR/lab.lock after 600 s"
fi

# ---- 1. packages ---------------------------------------------------------------
missing=""
for p in "${PKGS[@]}"; do
  [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing="$missing $p"
done
need_kernel_pkg=0
{ [ -s "$GUEST_DIR/vmlinuz" ] && [ -s "$GUEST_DIR/initrd.gz" ]; } || need_kernel_pkg=1
if [ -n "$missing" ] || { [ $need_kernel_pkg = 1 ] && ! apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1; }; then
  log "apt-get update"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
fi
if [ -n "$missing" ]; then
  log "apt-get install:$missing"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y \
    --no-install-recommends "${PKGS[@]}" > "$STATE/apt-install.log" 2>&1 || { tail -20 "$STATE/apt-install.log"; die "apt-get install failed (log: $STATE/apt-install.log)"; }
  log "apt: $(grep -E '^Fetched|newly installed' "$STATE/apt-install.log" | tr '\n' ' ')"
fi
log "packages ok: $(libvirtd --version | sed -n 1p); $(qemu-system-x86_64 --version | sed -n 1p)"

# ---- 2. what libvirt-daemon-system would have done (user, dirs, qemu.conf) -------
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || \
  useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
mkdir -p /var/log/libvirt /var/lib/libvirt
if [ ! -e /etc/libvirt/qemu.conf ]; then
  # without libvirt-daemon-system there is no qemu.conf; run QEMU as root (no DAC relabel trouble)
  printf '# written by ceilopoll test/lab/up.sh\nuser = "root"\ngroup = "root"\n' > /etc/libvirt/qemu.conf
fi

# ---- 3. daemons (no systemd: plain -d daemons with pidfiles) ---------------------
has_proc() { grep -qx "$1" /proc/[0-9]*/comm 2>/dev/null; }   # procps may be absent
if [ -S /run/libvirt/virtlogd-sock ] && has_proc virtlogd; then
  log "virtlogd already running: reusing it"
else
  virtlogd -d --pid-file "$PIDDIR/virtlogd.pid" 9>&-
  for _ in $(seq 1 20); do [ -S /run/libvirt/virtlogd-sock ] && break; sleep 0.25; done
  [ -S /run/libvirt/virtlogd-sock ] || die "virtlogd did not create /run/libvirt/virtlogd-sock"
  log "virtlogd started, pid $(cat "$PIDDIR/virtlogd.pid")"
fi
if virsh version >/dev/null 2>&1; then
  log "libvirtd already answering on /run/libvirt/libvirt-sock: reusing it"
else
  [ -z "${LIBVIRTD_CONF:-}" ] || [ -r "$LIBVIRTD_CONF" ] || die "LIBVIRTD_CONF=$LIBVIRTD_CONF is not readable"
  libvirtd -d ${LIBVIRTD_CONF:+-f "$LIBVIRTD_CONF"} --pid-file "$PIDDIR/libvirtd.pid" 9>&-
  for _ in $(seq 1 120); do virsh version >/dev/null 2>&1 && break; sleep 0.25; done
  virsh version >/dev/null 2>&1 || die "libvirtd did not come up within 30 s; see /var/log/libvirt/libvirtd.log"
  log "libvirtd started, pid $(cat "$PIDDIR/libvirtd.pid")"
fi

# ---- 4. guest artefacts ----------------------------------------------------------
"$HERE/build-guest.sh" "$GUEST_DIR" >"$STATE/build-guest.log" 2>&1 || { cat "$STATE/build-guest.log" >&2; die "build-guest.sh failed"; }
log "guest artefacts: $(tail -1 "$STATE/build-guest.log")"

# ---- 5. define the guests and bring each to its profile's state -----------------
rm -f "$STATE/guests.tsv"   # only a successful run advertises the lab layout
N=${#PROFILES[@]}
NAMES=(); UUIDS=()
for i in $(seq 1 "$N"); do
  NAMES+=("$(printf 'instance-%08x' "$i")"); UUIDS+=("$(printf '%s%012x' "$UUID_PREFIX" "$i")")
done

state_of() { virsh domstate "$1" 2>/dev/null | sed -n 1p || true; }   # "" if undefined
# what decides the guest's behaviour; compared between the live and the persistent definition
sig_of() { virsh dumpxml "$1" ${2:+"$2"} \
  --xpath '/domain/@type|/domain/memory|/domain/os/cmdline|/domain/devices/memballoon/@model|/domain/devices/memballoon/stats' 2>/dev/null | tr -s ' \n' ' ' || true; }
remove_dom() {  # remove_dom UUID NAME
  local st; st=$(state_of "$1")
  if [ -n "$st" ] && [ "$st" != "shut off" ]; then virsh destroy "$1" >/dev/null; fi
  virsh undefine "$1" >/dev/null
}

# lab guests beyond the request: the lab must match the request
while read -r u; do
  [[ $u == "$UUID_PREFIX"* ]] || continue
  idx=$((16#${u#"$UUID_PREFIX"}))
  if [ "$idx" -lt 1 ] || [ "$idx" -gt "$N" ]; then
    remove_dom "$u" && log "$(printf 'instance-%08x' "$idx") ($u): not in the request, destroyed and undefined"
  fi
done < <(virsh list --all --uuid)

STARTED=()   # 1 when this run (re)started the guest
for i in $(seq 0 $((N - 1))); do
  name=${NAMES[$i]} uuid=${UUIDS[$i]} prof=${PROFILES[$i]}
  STARTED[i]=0
  # a domain of that name that is not ours would make define fail with a less clear message
  if other=$(virsh domuuid "$name" 2>/dev/null) && [ "${other%%$'\n'*}" != "$uuid" ]; then
    die "a domain named $name already exists with uuid ${other%%$'\n'*}, not the lab's $uuid; remove it first"
  fi
  "$HERE/mkdomain.sh" "$((i + 1))" "$prof" > "$STATE/$name.xml"
  before=$(state_of "$uuid")
  virsh define "$STATE/$name.xml" >/dev/null || die "virsh define $STATE/$name.xml failed"
  st=$before
  case "$st" in
    running|paused)
      live=$(sig_of "$uuid"); want=$(sig_of "$uuid" --inactive)
      if [ "$live" != "$want" ]; then
        log "$name: live config differs from profile $prof: destroying it"
        virsh destroy "$uuid" >/dev/null; st="shut off"
      fi ;;
    ""|"shut off") st="shut off" ;;
    *) log "$name: state '$st': destroying it"; virsh destroy "$uuid" >/dev/null 2>&1 || true; st="shut off" ;;
  esac
  case "$prof" in
    shutoff)
      if [ "$st" != "shut off" ]; then virsh destroy "$uuid" >/dev/null; log "$name: destroyed (profile shutoff)"; fi ;;
    *)
      if [ "$st" = "shut off" ]; then
        : > "$STATE/$name.console.log"
        virsh start "$uuid" >/dev/null || die "virsh start $name failed; see /var/log/libvirt/qemu/$name.log"
        STARTED[i]=1
        log "$name: started (profile $prof)"
      elif [ "$st" = paused ] && [ "$prof" != paused ]; then
        virsh resume "$uuid" >/dev/null; log "$name: resumed (profile $prof)"
      else
        log "$name: already $st (profile $prof)"
      fi ;;
  esac
done

# ---- 6. wait until every guest is in the state its profile promises ---------------
# "LAST_UPDATE UNUSED" from one dommemstat call ("-" for a missing key)
lu_unused() { { virsh dommemstat "$1" 2>/dev/null || true; } |
  awk '{v[$1]=$2} END {print (("last_update" in v) ? v["last_update"] : "-"), (("unused" in v) ? v["unused"] : "-")}'; }
declare -A first
deadline=$(( $(date +%s) + WAIT_S ))
pending=()
for i in $(seq 0 $((N - 1))); do
  case "${PROFILES[$i]}" in
    shutoff) ;;
    none) ;;   # no balloon device: nothing more to wait for once running
    paused) [ "$(state_of "${UUIDS[$i]}")" = paused ] || pending+=("$i") ;;
    noballoon) [ "${STARTED[$i]}" = 1 ] && pending+=("$i") ;;   # a guest that was already running has booted
    *) pending+=("$i") ;;
  esac
done
while [ ${#pending[@]} -gt 0 ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    msg=""; for i in "${pending[@]}"; do msg="$msg ${NAMES[$i]}(${PROFILES[$i]})"; done
    die "timeout after ${WAIT_S}s (WAIT_S) waiting for:$msg; guest consoles: $STATE/<name>.console.log, QEMU logs: /var/log/libvirt/qemu/"
  fi
  still=()
  for i in "${pending[@]}"; do
    name=${NAMES[$i]} uuid=${UUIDS[$i]} prof=${PROFILES[$i]}
    st=$(state_of "$uuid")
    if [ "$st" != running ]; then
      tail -n 15 "$STATE/$name.console.log" 2>/dev/null | cat -v >&2 || true
      die "$name ($prof) is '$st' instead of running while waiting for it (console tail above)"
    fi
    if [ "$prof" = noballoon ]; then
      if grep -q '^lab-guest: READY' "$STATE/$name.console.log" 2>/dev/null; then log "$name: guest booted (console READY)"; else still+=("$i"); fi
      continue
    fi
    lu=- un=-; read -r lu un < <(lu_unused "$uuid") || true
    if [ "$un" = - ] || [ "$lu" = - ] || [ "$lu" = 0 ]; then still+=("$i"); continue; fi
    if [ "$prof" = nostats ]; then
      [ "${STARTED[$i]}" = 0 ] || log "$name: boot-time balloon stats snapshot (last_update=$lu)"; continue
    fi
    # stats and paused: the first report is the driver's boot-time snapshot (taken before the
    # guest's fill=); WAIT_PERIODIC=1 also waits for one refresh by QEMU's periodic polling
    if [ -z "${first[$i]:-}" ]; then
      first[$i]=$lu
      [ "${STARTED[$i]}" = 1 ] && log "$name: first balloon stats (last_update=$lu)"
    fi
    if [ "$WAIT_PERIODIC" = 1 ]; then
      if [ "${STARTED[$i]}" = 0 ] && [ $(( $(date +%s) - lu )) -le $(( 2 * PERIOD + 2 )) ]; then
        :   # already running and its stats are fresh: the periodic refresh works
      elif [ "$lu" = "${first[$i]}" ]; then
        still+=("$i"); continue
      else
        log "$name: periodic stats refresh seen (last_update=$lu)"
      fi
    fi
    if [ "$prof" = paused ]; then
      virsh suspend "$uuid" >/dev/null || die "virsh suspend $name failed"
      log "$name: suspended (its balloon stats stay frozen at last_update=$lu)"
    fi
  done
  pending=("${still[@]}")
  [ ${#pending[@]} -gt 0 ] && sleep 0.5
done

[ "${#PROFILES[@]}" -eq 0 ] || log "all guests in their profile's state"

# ---- 7. report + guests.tsv --------------------------------------------------------
printf '%-18s %-9s %-8s %9s %9s %9s %9s %9s %11s\n' DOMAIN PROFILE STATE actual available unused usable rss last_update
tsv=$(mktemp "$STATE/.guests.tsv.XXXXXX")
for i in $(seq 0 $((N - 1))); do
  name=${NAMES[$i]} uuid=${UUIDS[$i]} prof=${PROFILES[$i]}
  st=$(state_of "$uuid")
  { virsh dommemstat "$uuid" 2>/dev/null || true; } | awk -v n="$name" -v p="$prof" -v s="$st" '
    {v[$1]=$2}
    END {
      split("actual available unused usable rss last_update", k, " ")
      printf "%-18s %-9s %-8s", n, p, (s == "shut off" ? "shutoff" : s)
      for (j = 1; j <= 6; j++) printf (j == 6 ? " %11s" : " %9s"), ((k[j] in v) ? v[k[j]] : "-")
      printf "\n"
    }'
  printf '%s\t%s\t%s\n' "$name" "$uuid" "$prof" >> "$tsv"
done
chmod 644 "$tsv"
mv -f "$tsv" "$STATE/guests.tsv"
log "wrote $STATE/guests.tsv ($N guest(s)); up.sh done"
