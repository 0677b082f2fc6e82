#!/usr/bin/env bash
# ceilometer-trixie.sh -- a Ceilometer later than Debian 12's Zed: Debian 13 (trixie)'s Ceilometer 24.0.0
# (OpenStack 2025.1, Epoxy), installed with apt into a minimal trixie root made by debootstrap. Debian 12
# has only Zed and PyPI is not reachable here, but Debian's trixie repository is.
#
# The root shares the machine's network (RabbitMQ, the Keystone/Nova stand-in on 127.0.0.1) and its
# processes. A command run through `exec` also sees the machine's libvirt sockets (/run/libvirt) and
# each folder named with --bind, at the same paths: they are bind-mounted in a private mount namespace
# of that command, so nothing is mounted on the machine itself and nothing is left to unmount.
#
#   ceilometer-trixie.sh install                          makes the root if missing, then apt-get installs
#                                                         ceilometer-agent-compute, ceilometer-agent-notification
#                                                         and python3-libvirt in it (no service is started)
#   ceilometer-trixie.sh exec [--bind DIR]... -- CMD...   runs CMD in the root; it replaces this script (the
#                                                         same pid), so a caller can signal and measure it
#   ceilometer-trixie.sh version                          python3-ceilometer's version in the root
#
# Env: CEILOMETER_TRIXIE_ROOT (/var/lib/ceilopoll/trixie-root), DEBIAN_MIRROR (http://deb.debian.org/debian).
# About 3 minutes and 820 MB the first time (2026-11-28: debootstrap 47 s, the packages 2 min). Needs root.
set -euo pipefail

ROOT=${CEILOMETER_TRIXIE_ROOT:-/var/lib/ceilopoll/trixie-root}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=(ceilometer-agent-compute ceilometer-agent-notification python3-libvirt)
SELF=$(readlink -f "${BASH_SOURCE[0]}")

die() {
  echo "ceilometer-trixie.sh: $*" >&2
  exit 1
}
log() { echo "ceilometer-trixie.sh: $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root (debootstrap, chroot, mounts)"

installed() {
  [[ -x $ROOT/usr/bin/ceilometer-polling && -x $ROOT/usr/bin/ceilometer-agent-notification ]] &&
    chroot "$ROOT" /usr/bin/python3 -c 'import libvirt, ceilometer.compute.virt.libvirt.inspector' 2>/dev/null
}

cmd_install() {
  if installed; then
    log "python3-ceilometer $(cmd_version) already installed in $ROOT"
    return 0
  fi
  local t0=$SECONDS
  if ! command -v debootstrap >/dev/null; then
    "$(dirname "$SELF")/apt-install-no-start.sh" debootstrap
  fi
  if [[ ! -x $ROOT/usr/bin/apt-get ]]; then
    # made beside it and renamed when complete: an interrupted debootstrap leaves no half root behind
    rm -rf "$ROOT.partial"
    mkdir -p "$(dirname "$ROOT")"
    log "debootstrap trixie into $ROOT ($MIRROR)"
    debootstrap --variant=minbase trixie "$ROOT.partial" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
      die "debootstrap failed; see $ROOT.debootstrap.log"
    mv "$ROOT.partial" "$ROOT"
  fi
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # the root is ours alone: its packages never start a service (invoke-rc.d asks this first; 101 = no)
  printf '#!/bin/sh\n# ceilopoll test/lab/ceilometer-trixie.sh: no service starts in this root\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
  chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
  log "apt-get install ${PACKAGES[*]} in $ROOT"
  unshare --mount --propagation private -- /bin/sh -c '
    mount -t proc proc "$1/proc" &&
    chroot "$1" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c "apt-get update -q && apt-get install -y -q --no-install-recommends $2"
  ' sh "$ROOT" "${PACKAGES[*]}" >"$ROOT.apt.log" 2>&1 || die "apt-get in $ROOT failed; see $ROOT.apt.log"
  installed || die "installed, but python3 in $ROOT cannot import libvirt and ceilometer; see $ROOT.apt.log"
  log "installed python3-ceilometer $(cmd_version) in $ROOT in $((SECONDS - t0)) s"
}

cmd_version() {
  chroot "$ROOT" dpkg-query -W -f='${Version}' python3-ceilometer 2>/dev/null || echo "not installed"
}

cmd_exec() {
  local binds=()
  while (($# > 0)) && [[ $1 == --bind ]]; do
    (($# >= 2)) || die "exec: --bind needs a folder"
    [[ $2 == /* && -d $2 ]] || die "exec: --bind $2: not an absolute path to a folder"
    binds+=("$2")
    shift 2
  done
  [[ ${1:-} == -- ]] && shift
  (($# > 0)) || die "usage: ceilometer-trixie.sh exec [--bind DIR]... -- CMD [ARG]..."
  [[ -x $ROOT/usr/bin/python3 ]] || die "no root at $ROOT: run 'ceilometer-trixie.sh install' (make ceilometer-trixie-install) first"
  exec unshare --mount --propagation private -- "$SELF" _inside "${#binds[@]}" "${binds[@]}" "$@"
}

# In the new mount namespace: the mounts, then chroot execs the command.
cmd_inside() {
  local n=$1
  shift
  local binds=("${@:1:n}")
  shift "$n"
  mount -t proc proc "$ROOT/proc"
  mount --bind /dev "$ROOT/dev"
  local d
  for d in /run/libvirt "${binds[@]}"; do
    [[ -d $d ]] || continue
    mkdir -p "$ROOT$d"
    mount --bind "$d" "$ROOT$d"
  done
  exec chroot "$ROOT" "$@"
}

case ${1:-} in
install) cmd_install ;;
version) cmd_version ;;
exec)
  shift
  cmd_exec "$@"
  ;;
_inside)
  shift
  cmd_inside "$@"
  ;;
*) die "usage: ceilometer-trixie.sh install | exec [--bind DIR]... -- CMD [ARG]... | version" ;;
esac
