#!/usr/bin/env bash
# Regenerates src/config/zed-options.json: what Zed's Ceilometer (Debian 12, ceilometer-common 19.0.0)
# knows, so `ceilopoll check-config` can tell a typo from an option ceilopoll merely ignores.
#
#   bash scripts/gen-zed-options.sh            writes src/config/zed-options.json
#   bash scripts/gen-zed-options.sh --check    exits 1 if the committed file differs from a fresh run
#
# Inputs, all from Debian's packages (apt-get install ceilometer-common, as test/e2e/notification-agent.sh
# install does):
# - the option groups: /usr/bin/oslo-config-generator with the namespaces Debian's generated
#   /usr/share/ceilometer-common/ceilometer.conf was built from (its "# From <namespace>" lines: the
#   project's own list_opts and keystoneauth options plus the oslo libraries the agents register);
# - keystoneauth's session options (cafile, insecure, timeout...), which Ceilometer registers in
#   [service_credentials] at run time, so the generator does not list them;
# - the meter names: the [ceilometer.poll.compute|central|ipmi] entry points of the installed egg-info;
# - the hardware.* meters Debian's /etc/ceilometer/polling.yaml still lists although Zed has no pollster
#   for them any more (the SNMP pollsters were removed before Zed): taken from that conffile, after
#   checking it is the packaged version (its md5 in dpkg's conffile list), so the shipped file loads.
#
# Output (sorted, names only, '-' written as '_' as ceilopoll's ini reader normalises them):
#   { "<group>": [option names, including deprecated names that oslo still reads in that group],
#     "_deprecated": { "<group>.<option>": ["<old group>.<old name>", ...] },
#     "_secret": ["<group>.<option>", ...],
#     "_meters": [meter names], "_generated_from": { package: version } }
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$ROOT/src/config/zed-options.json
EGG=/usr/lib/python3/dist-packages/ceilometer-19.0.0.egg-info
POLLING_YAML=/etc/ceilometer/polling.yaml
NAMESPACES=(ceilometer ceilometer-auth oslo.concurrency oslo.log oslo.messaging oslo.reports oslo.service.service)

die() { echo "gen-zed-options.sh: $*" >&2; exit 1; }

[[ -x /usr/bin/oslo-config-generator ]] || die "no /usr/bin/oslo-config-generator: run bash test/e2e/notification-agent.sh install"
[[ -f $EGG/entry_points.txt ]] || die "no $EGG: run bash test/e2e/notification-agent.sh install"
[[ -f $POLLING_YAML ]] || die "no $POLLING_YAML: run bash test/e2e/notification-agent.sh install"

want_md5=$(dpkg-query -W -f='${Conffiles}\n' ceilometer-common | awk -v f="$POLLING_YAML" '$1 == f { print $2 }')
have_md5=$(md5sum "$POLLING_YAML" | awk '{ print $1 }')
[[ -n $want_md5 && $want_md5 == "$have_md5" ]] || die "$POLLING_YAML is not the file ceilometer-common shipped (md5 $have_md5, dpkg says ${want_md5:-nothing})"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ns_args=()
for ns in "${NAMESPACES[@]}"; do ns_args+=(--namespace "$ns"); done
/usr/bin/oslo-config-generator --format json "${ns_args[@]}" --output-file "$tmp/opts.json"

versions=$(dpkg-query -W -f='${Package} ${Version}\n' ceilometer-common python3-ceilometer python3-oslo.config \
  python3-oslo.messaging python3-oslo.log python3-oslo.concurrency python3-oslo.reports python3-oslo.service python3-keystoneauth1)

/usr/bin/python3 - "$tmp/opts.json" "$EGG/entry_points.txt" "$POLLING_YAML" "$tmp/out.json" "$versions" <<'PY'
import configparser, json, sys
import yaml

opts_path, entry_points, polling_yaml, out_path, versions = sys.argv[1:6]
norm = lambda s: s.replace('-', '_')
data = json.load(open(opts_path))

groups = {}
deprecated = {}
secret = set()
for group, body in data['options'].items():
    names = groups.setdefault(group, set())
    for opt in body['opts']:
        name = norm(opt['name'])
        names.add(name)
        if opt.get('secret'):
            secret.add(f'{group}.{name}')
        for old in opt.get('deprecated_opts') or []:
            old_group = old.get('group') or group
            old_name = norm(old.get('name') or opt['name'])
            if (old_group, old_name) == (group, name):
                continue
            groups.setdefault(old_group, set()).add(old_name)
            aliases = deprecated.setdefault(f'{group}.{name}', [])
            if f'{old_group}.{old_name}' not in aliases:
                aliases.append(f'{old_group}.{old_name}')

# keystone_client.py loads a keystoneauth session from [service_credentials] at run time, which registers
# the session options there too; oslo-config-generator does not list them.
from keystoneauth1 import loading
groups['service_credentials'].update(norm(o.dest) for o in loading.get_session_conf_options())

ep = configparser.ConfigParser(delimiters=('=',))
ep.optionxform = str
ep.read(entry_points)
meters = set()
for section in ('ceilometer.poll.compute', 'ceilometer.poll.central', 'ceilometer.poll.ipmi'):
    meters.update(ep[section].keys())
for source in yaml.safe_load(open(polling_yaml))['sources']:
    meters.update(m for m in source['meters'] if m.startswith('hardware.'))

out = {g: sorted(n) for g, n in sorted(groups.items())}
out['_deprecated'] = {k: v for k, v in sorted(deprecated.items())}
out['_secret'] = sorted(secret)
out['_meters'] = sorted(meters)
out['_generated_from'] = dict(line.split(' ', 1) for line in sorted(versions.splitlines()))
with open(out_path, 'w') as f:
    json.dump(out, f, indent=1, sort_keys=False)
    f.write('\n')
PY

if [[ ${1:-} == --check ]]; then
  cmp -s "$tmp/out.json" "$OUT" || die "$OUT is out of date: run bash scripts/gen-zed-options.sh"
  echo "gen-zed-options.sh: $OUT is up to date"
else
  mkdir -p "$(dirname "$OUT")"
  cp "$tmp/out.json" "$OUT"
  echo "gen-zed-options.sh: wrote $OUT"
fi
