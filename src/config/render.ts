// What `ceilopoll check-config` prints, and the short summary the state report carries. Both come from
// CeilopollConfig.effective, whose secret values options.ts has already replaced (telemetry_secret and
// passwords by ***, the password inside a transport_url by redactTransportUrl); the few typed values
// shown here directly are not secret.

import { isIP } from 'node:net';

import { redactTransportUrl } from '../publish/transport-url.js';
import { DEFAULT_TELEMETRY_SECRET } from '../samples/signature.js';
import { DEFAULT_ORIGIN } from './errors.js';
import type { CeilopollConfig, EffectiveOption } from './options.js';

/** The comment above a value: where it came from (nothing for a plain default), and its note. */
function provenance(o: EffectiveOption): string | null {
  if (o.origin === DEFAULT_ORIGIN) return o.note ? `# default; ${o.note}` : null;
  const at = o.line !== undefined ? `${o.origin}:${o.line}` : o.origin;
  return `# from ${at}${o.via ? ` (as ${o.via}, a deprecated name)` : ''}${o.note ? `; ${o.note}` : ''}`;
}

/** A value as an ini line shows it: continuation lines indented, as oslo reads them back. */
function iniValue(value: string): string {
  return value.replace(/\n/g, '\n    ');
}

/** INI-like text of every option ceilopoll reads, where each came from, then polling.yaml's tasks and the warnings. */
export function renderEffectiveConfig(cfg: CeilopollConfig): string {
  const out: string[] = [];
  out.push('# ceilopoll effective configuration (values without a comment are defaults)');
  out.push(`# ceilometer.conf files, in order: ${cfg.files.length > 0 ? cfg.files.join(', ') : '(none: every value is a default)'}`);

  let section = '';
  for (const o of cfg.effective) {
    if (o.section !== section) {
      section = o.section;
      out.push('', `[${section}]`);
    }
    const comment = provenance(o);
    if (comment !== null) out.push(comment);
    out.push(`${o.key} = ${iniValue(o.value)}`);
  }
  if (cfg.serviceCredentials === null) {
    out.push('', '[service_credentials]', '# no auth_url: flavor.id is the flavor name (Nova is not asked)');
  }

  out.push('', `# polling.yaml: ${cfg.pollingFile || '(not read)'}`);
  if (cfg.polling.tasks.length === 0) {
    out.push("#   no task: no source selects one of ceilopoll's meters");
  }
  for (const t of cfg.polling.tasks) {
    out.push(`#   every ${t.intervalSeconds} s: ${t.meters.join(', ')} (source${t.sources.length === 1 ? '' : 's'} ${t.sources.join(', ')})`);
  }
  if (cfg.polling.notPolled.length > 0) {
    out.push(`# polled by ceilometer-polling, not by ceilopoll: ${cfg.polling.notPolled.join(', ')}`);
  }

  if (cfg.ignored.length > 0) {
    out.push('', "# Zed's Ceilometer options that ceilopoll does not read (ignored):");
    for (const i of cfg.ignored) out.push(`#   ${i.file}:${i.line}: [${i.section}] ${i.key}`);
  }
  out.push('', cfg.warnings.length === 0 ? '# warnings: none' : `# warnings (${cfg.warnings.length}):`);
  for (const w of cfg.warnings) out.push(`#   ${w}`);
  return out.join('\n');
}

/** A short, flat, secret-free map of the configuration for a state report. */
export function redactedSummary(cfg: CeilopollConfig): Record<string, string> {
  const listen = cfg.ceilopoll.httpListen;
  return {
    files: cfg.files.length > 0 ? cfg.files.join(', ') : '(defaults)',
    polling_file: cfg.pollingFile || '(not read)',
    host: cfg.host,
    libvirt_uri: cfg.libvirtUriFromType ? `${cfg.libvirtUri} (from libvirt_type ${cfg.libvirtType})` : cfg.libvirtUri,
    transport_url: redactTransportUrl(cfg.transportUrl),
    control_exchange: cfg.controlExchange,
    topics: cfg.topics.join(', '),
    batch_size: String(cfg.batchSize),
    telemetry_secret: cfg.telemetrySecret === DEFAULT_TELEMETRY_SECRET ? 'the default (not secret)' : 'set',
    service_credentials: cfg.serviceCredentials ? `${cfg.serviceCredentials.auth_url} as ${cfg.serviceCredentials.username ?? cfg.serviceCredentials.user_id ?? '?'}` : 'none (flavor.id = flavor name)',
    tasks: cfg.polling.tasks.map((t) => `${t.intervalSeconds}s: ${t.meters.join(' ')}`).join('; ') || 'none',
    spool: `${cfg.ceilopoll.spoolPath} (max ${cfg.ceilopoll.spoolMaxMb} MB, ${cfg.ceilopoll.spoolMaxAgeHours} h)`,
    unit: cfg.ceilopoll.unit,
    name_keys: String(cfg.ceilopoll.nameKeys),
    http_listen: listen ? (isIP(listen.host) === 6 ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`) : 'off',
    warnings: String(cfg.warnings.length),
  };
}
