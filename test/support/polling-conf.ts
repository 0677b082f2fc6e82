// The ceilometer.conf and polling.yaml with which a real ceilometer-polling (Debian 12's Zed, or
// Debian 13's 24.0.0 in the trixie root) and ceilopoll poll the same libvirtd side by side: the four
// memory meters, libvirt_metadata discovery, a topic of the caller's own, and [service_credentials]
// pointing at the Keystone/Nova stand-in (test/support/fake-openstack.ts) as its default user.
// Used by bench/compare/compare.ts and test/e2e/polling-24-shape.test.ts.

import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { DEFAULT_USER } from './fake-openstack.js';

export const MEMORY_METERS = ['memory.usage', 'memory.resident', 'memory.swap.in', 'memory.swap.out'] as const;

export interface PollingConf {
  /** the folder both files go to */
  dir: string;
  /** oslo's form: rabbit://user:password@host:port/ */
  transportUrl: string;
  libvirtUri: string;
  /** [DEFAULT] host */
  host: string;
  /** [oslo_messaging_notifications] topics: never `notifications`, which other agents consume */
  topic: string;
  /** polling.yaml's interval, s */
  interval: number;
  /** FakeOpenStack.authUrl */
  authUrl: string;
  /** more lines after [service_credentials], e.g. a [ceilopoll] section */
  extra?: readonly string[];
}

/** Writes DIR/polling.yaml and DIR/ceilometer.conf; returns the path of the latter. */
export function writePollingConf(c: PollingConf): string {
  const pollingYaml = path.join(c.dir, 'polling.yaml');
  writeFileSync(pollingYaml, ['---', 'sources:', '  - name: memory', `    interval: ${c.interval}`, '    meters:', ...MEMORY_METERS.map((m) => `      - ${m}`), ''].join('\n'));
  const conf = path.join(c.dir, 'ceilometer.conf');
  writeFileSync(
    conf,
    [
      '[DEFAULT]',
      `transport_url = ${c.transportUrl}`,
      'libvirt_type = qemu',
      `libvirt_uri = ${c.libvirtUri}`,
      `host = ${c.host}`,
      'debug = false',
      '[polling]',
      `cfg_file = ${pollingYaml}`,
      '[oslo_messaging_notifications]',
      'driver = messagingv2',
      `topics = ${c.topic}`,
      '[compute]',
      'instance_discovery_method = libvirt_metadata',
      '[service_credentials]',
      'auth_type = password',
      `auth_url = ${c.authUrl}`,
      `username = ${DEFAULT_USER.name}`,
      `password = ${DEFAULT_USER.password}`,
      'project_name = service',
      'user_domain_name = Default',
      'project_domain_name = Default',
      'interface = public',
      'region_name = RegionOne',
      ...(c.extra ?? []),
      '',
    ].join('\n'),
  );
  return conf;
}
