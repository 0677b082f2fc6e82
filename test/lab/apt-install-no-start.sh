#!/usr/bin/env bash
# apt-install-no-start.sh PKG... -- apt-get install the packages without letting dpkg start their
# services, for the scripts that install Debian's Ceilometer agents only to run them themselves
# (test/e2e/notification-agent.sh, bench/compare/run.sh).
#
# A package's postinst runs `invoke-rc.d <service> start`, which asks /usr/sbin/policy-rc.d first;
# 101 means "no". Without that, on this machine (no systemd, sysv scripts) the packaged agent would
# start with /etc/ceilometer's config and compete for our messages. A policy the machine already has
# that denies (Docker's `exit 101`) is left alone; any other is moved aside and put back afterwards,
# also when apt fails or the script is interrupted.
#
# apt waits up to 10 minutes for another apt/dpkg to let go of its lock instead of failing at once
# (the lab's set-up and these scripts may run apt at the same time). The package lists are fetched
# only when there are none. Needs root.
set -euo pipefail
(($# > 0)) || { echo "usage: apt-install-no-start.sh PKG..." >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "apt-install-no-start.sh: run as root" >&2; exit 1; }

POLICY=/usr/sbin/policy-rc.d
SAVED=/usr/sbin/policy-rc.d.ceilopoll-saved
ours=0

restore() {
  [[ $ours -eq 1 ]] || return 0
  rm -f "$POLICY"
  if [[ -e $SAVED ]]; then mv "$SAVED" "$POLICY"; fi
  ours=0
}
trap restore EXIT

rc=0
if [[ -x $POLICY ]]; then "$POLICY" "$1" start >/dev/null 2>&1 || rc=$?; fi
if [[ $rc -ne 101 ]]; then
  if [[ -e $POLICY ]]; then
    [[ ! -e $SAVED ]] || { echo "apt-install-no-start.sh: $SAVED exists (left by an interrupted install?): restore it to $POLICY by hand" >&2; exit 1; }
    mv "$POLICY" "$SAVED"
  fi
  ours=1
  printf '#!/bin/sh\n# ceilopoll test/lab/apt-install-no-start.sh: no service starts during apt (removed afterwards)\nexit 101\n' >"$POLICY"
  chmod 0755 "$POLICY"
fi

export DEBIAN_FRONTEND=noninteractive
LOCK=(-o DPkg::Lock::Timeout=600)
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then apt-get "${LOCK[@]}" update -q; fi
apt-get "${LOCK[@]}" install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
