// The configuration flags every command shares (--config-file, --config-dir, in command-line
// order, as oslo.config takes them) and loading the configuration for a command: errors are
// printed one a line and become exit status 2.

import type { parseArgs } from 'node:util';

import { ConfigError, ConfigErrors } from '../config/errors.js';
import { loadConfig, parseListen, type CeilopollConfig } from '../config/index.js';
import { parseTransportUrl, redactTransportUrl } from '../publish/transport-url.js';

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

export const CONFIG_OPTIONS = {
  'config-file': { type: 'string', multiple: true },
  'config-dir': { type: 'string', multiple: true },
} as const;

export const CONFIG_HELP = `configuration (oslo.config rules, as ceilometer-polling reads them):
  --config-file F    a ceilometer.conf; repeatable, a later file wins over an earlier one.
                     Default: /etc/ceilometer/ceilometer.conf and
                     /etc/ceilometer/ceilometer.conf.d/*.conf, when they exist
  --config-dir D     every D/*.conf in name order, at its place among the --config-file's`;

export interface ConfigSource {
  kind: 'file' | 'dir';
  path: string;
}

/** --config-file and --config-dir in the order they were given. */
export function configSources(tokens: readonly Token[]): ConfigSource[] {
  const out: ConfigSource[] = [];
  for (const t of tokens) {
    if (t.kind !== 'option' || t.value === undefined) continue;
    if (t.name === 'config-file') out.push({ kind: 'file', path: t.value });
    if (t.name === 'config-dir') out.push({ kind: 'dir', path: t.value });
  }
  return out;
}

/** Flags and environment variables that win over the configuration files. */
export interface Overrides {
  libvirtUri?: string;
  host?: string;
  transportUrl?: string;
  telemetrySecret?: string;
  spoolPath?: string;
  httpListen?: string;
  logFormat?: string;
}

export interface LoadOptions {
  /** read and check polling.yaml too (run, check-config); the other commands do not need it */
  polling?: boolean;
  overrides?: Overrides;
}

/** The configuration with the overrides applied; a bad override is a usage error (a string). */
export function applyOverrides(cfg: CeilopollConfig, o: Overrides): CeilopollConfig | string {
  const out: CeilopollConfig = { ...cfg, ceilopoll: { ...cfg.ceilopoll } };
  if (o.libvirtUri !== undefined) {
    out.libvirtUri = o.libvirtUri;
    out.libvirtUriFromType = false;
  }
  if (o.host !== undefined) out.host = o.host;
  if (o.transportUrl !== undefined) {
    try {
      parseTransportUrl(o.transportUrl, cfg.rabbit);
    } catch (err) {
      return `transport_url ${redactTransportUrl(o.transportUrl)} (from the command line or CEILOPOLL_TRANSPORT_URL): ${(err as Error).message}`;
    }
    out.transportUrl = o.transportUrl;
  }
  if (o.telemetrySecret !== undefined) out.telemetrySecret = o.telemetrySecret;
  if (o.spoolPath !== undefined) out.ceilopoll.spoolPath = o.spoolPath;
  if (o.httpListen !== undefined) {
    const listen = parseListen(o.httpListen);
    if (listen === undefined) return `--http-listen ${o.httpListen}: expected host:port, [ipv6]:port, or off`;
    out.ceilopoll.httpListen = listen;
  }
  if (o.logFormat === 'oslo' || o.logFormat === 'json') out.ceilopoll.logFormat = o.logFormat;
  return out;
}

/**
 * The configuration, or the exit status 2 after printing every problem found (each naming its file
 * and section/key or YAML path). Warnings go to `warn`, each once.
 */
export async function loadCliConfig(sources: ConfigSource[], warn: (msg: string) => void, opts: LoadOptions = {}): Promise<CeilopollConfig | number> {
  try {
    const cfg = await loadConfig({ sources, polling: opts.polling ?? true });
    for (const w of cfg.warnings) warn(w);
    const out = applyOverrides(cfg, opts.overrides ?? {});
    if (typeof out === 'string') {
      process.stderr.write(`ceilopoll: ${out}\n`);
      return 2;
    }
    return out;
  } catch (err) {
    if (err instanceof ConfigErrors) {
      for (const e of err.errors) process.stderr.write(`ceilopoll: ${e.message}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`ceilopoll: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
