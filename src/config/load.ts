// Loading the configuration the way ceilometer-polling's oslo.config does:
// - the --config-file and --config-dir arguments in command-line order; a directory contributes its
//   `*.conf` files (not hidden ones, as Python's glob) sorted by name; a later file wins;
// - none given: the default file and conf.d directory for project "ceilometer" when they exist
//   (oslo's find_config_files/find_config_dirs; ceilopoll looks in /etc/ceilometer only, not in
//   ~/.ceilometer or ~ as oslo would, since a service's home directory is not where its config lives);
// - `[polling] cfg_file` located like oslo's ConfOpts.find_file: absolute as is, else in each
//   --config-dir, then beside each config file (last first), then /etc/ceilometer, then /etc.
// Every problem of the load (unreadable files, parse errors, bad values, a bad transport_url,
// polling.yaml's) is collected and thrown together as ConfigErrors.

import { readFile, readdir, stat } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';

import { parse as parseYaml } from 'yaml';

import { TransportUrlError, parseTransportUrl, redactTransportUrl } from '../publish/transport-url.js';
import { ConfigError, ConfigErrors, DEFAULT_ORIGIN, unreadable } from './errors.js';
import { readIniFile, type IniFile } from './ini.js';
import { buildOptions, type CeilopollConfig, type EffectiveOption, type OptionOrigin } from './options.js';
import { readPollingYaml, type PollingConfig, type PollingYamlOptions } from './polling-yaml.js';

export interface ConfigSource {
  kind: 'file' | 'dir';
  path: string;
}

export interface LoadConfigOptions {
  /** --config-file values; read before configDirs' files */
  configFiles?: string[];
  /** --config-dir values */
  configDirs?: string[];
  /** --config-file and --config-dir interleaved in command-line order; used instead of configFiles/configDirs */
  sources?: ConfigSource[];
  /** OS_<GROUP>__<OPTION> overrides and HOME for "~"; default process.env */
  env?: NodeJS.ProcessEnv;
  /** [DEFAULT] host's default; default os.hostname */
  hostname?: () => string;
  /** where to look when no file and no dir is given: the first existing file, the first existing dir */
  defaultSearch?: { files: string[]; dirs: string[] };
  /** the standard directories find_file searches last; default /etc/ceilometer, /etc */
  findDirs?: string[];
  /** read and check polling.yaml (default true); without it `polling` is empty and `pollingFile` best effort */
  polling?: boolean;
}

export type LoadedConfig = CeilopollConfig;

export const DEFAULT_SEARCH: Readonly<{ files: readonly string[]; dirs: readonly string[] }> = {
  files: ['/etc/ceilometer/ceilometer.conf'],
  dirs: ['/etc/ceilometer/ceilometer.conf.d'],
};

export const DEFAULT_FIND_DIRS: readonly string[] = ['/etc/ceilometer', '/etc'];

/** oslo's _fixpath: "~" expanded, then absolute. */
function fixPath(p: string, env: NodeJS.ProcessEnv): string {
  const home = env.HOME;
  const expanded = home && (p === '~' || p.startsWith('~/')) ? join(home, p.slice(1)) : p;
  return resolve(expanded);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

async function firstExisting(paths: readonly string[]): Promise<string | null> {
  for (const p of paths) if (await exists(p)) return p;
  return null;
}

/** The *.conf files of a --config-dir, sorted by name; a missing or unreadable directory is an error. */
async function confFilesIn(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new ConfigErrors([unreadable(dir, err, 'config directory')]);
  }
  return names
    .filter((n) => n.endsWith('.conf') && !n.startsWith('.'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => join(dir, n));
}

/** The command-line sources, or oslo's defaults when there are none. */
async function effectiveSources(opts: LoadConfigOptions, env: NodeJS.ProcessEnv): Promise<ConfigSource[]> {
  const given = opts.sources ?? [
    ...(opts.configFiles ?? []).map((path) => ({ kind: 'file' as const, path })),
    ...(opts.configDirs ?? []).map((path) => ({ kind: 'dir' as const, path })),
  ];
  if (given.length > 0) return given.map((s) => ({ kind: s.kind, path: fixPath(s.path, env) }));
  const search = opts.defaultSearch ?? DEFAULT_SEARCH;
  const file = await firstExisting(search.files);
  const dir = await firstExisting(search.dirs);
  return [...(file ? [{ kind: 'file' as const, path: file }] : []), ...(dir ? [{ kind: 'dir' as const, path: dir }] : [])];
}

/**
 * oslo's find_file: an absolute name as is; else the first `<dir>/<name>` that exists, trying each
 * config dir, the directory of each config file (last first), then `findDirs`.
 */
export async function findConfigFile(
  name: string,
  sources: readonly ConfigSource[],
  findDirs: readonly string[] = DEFAULT_FIND_DIRS,
): Promise<{ path: string | null; searched: string[] }> {
  if (isAbsolute(name)) return { path: (await exists(name)) ? name : null, searched: [name] };
  const dirs = [
    ...sources.filter((s) => s.kind === 'dir').map((s) => s.path),
    ...sources.filter((s) => s.kind === 'file').map((s) => dirname(s.path)).reverse(),
    ...findDirs,
  ];
  const searched = [...new Set(dirs)].map((d) => join(d, name));
  return { path: await firstExisting(searched), searched };
}

/** Meter names of the dynamic pollsters in pollsters_definitions_dirs (each *.yaml: a list of definitions with a name). */
async function dynamicPollsterMeters(dirs: readonly string[], warnings: string[]): Promise<string[]> {
  const names: string[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = (await readdir(dir)).filter((n) => n.endsWith('.yaml')).sort();
    } catch {
      continue; // Ceilometer too polls no dynamic pollster from a directory that is not there
    }
    for (const entry of entries) {
      const file = join(dir, entry);
      try {
        const doc: unknown = parseYaml(await readFile(file, 'utf8'), { version: '1.1' });
        for (const def of Array.isArray(doc) ? doc : []) {
          const name = (def as { name?: unknown } | null)?.name;
          if (typeof name === 'string' && name !== '') names.push(name);
        }
      } catch (err) {
        warnings.push(`${file}: dynamic pollster definitions not read, their meters are unknown to ceilopoll: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }
  }
  return names;
}

function atOrigin(o: OptionOrigin): { file: string; line?: number } {
  return { file: o.origin, ...(o.line !== undefined ? { line: o.line } : {}) };
}

/** A TransportUrlError as a ConfigError against the option that holds the URL (or the rabbit option it names). */
function transportError(
  err: TransportUrlError,
  url: string,
  urlOrigin: { section: string; key: string; origin: OptionOrigin } | null,
  effective: readonly EffectiveOption[],
): ConfigError {
  const shown = redactTransportUrl(url);
  const prefix = `transport_url "${shown}"`;
  const where = urlOrigin ?? { section: 'DEFAULT', key: 'transport_url', origin: { origin: DEFAULT_ORIGIN } };
  if (err.message.startsWith(prefix)) {
    const problem = err.message.slice(prefix.length).replace(/^:?\s*/, '');
    return new ConfigError({ ...atOrigin(where.origin), section: where.section, key: where.key, value: shown, problem });
  }
  const rabbit = /^\[oslo_messaging_rabbit\] ((\w+).*)$/s.exec(err.message);
  if (rabbit) {
    const [, problem = '', key = ''] = rabbit;
    const entry = effective.find((o) => o.section === 'oslo_messaging_rabbit' && o.key === key);
    return new ConfigError({ ...atOrigin(entry ?? { origin: DEFAULT_ORIGIN }), section: 'oslo_messaging_rabbit', key, problem });
  }
  return new ConfigError({ ...atOrigin(where.origin), section: where.section, key: where.key, value: shown, problem: err.message });
}

function emptyPolling(file: string): PollingConfig {
  return { file, sources: [], tasks: [], notPolled: [], warnings: [] };
}

/** Reads ceilometer.conf (and polling.yaml) into a CeilopollConfig. Throws ConfigErrors listing every problem. */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const env = opts.env ?? process.env;
  const errors: ConfigError[] = [];
  const warnings: string[] = [];
  const keep = (err: unknown): void => {
    if (err instanceof ConfigErrors) errors.push(...err.errors);
    else if (err instanceof ConfigError) errors.push(err);
    else throw err;
  };

  const sources = await effectiveSources(opts, env);
  const files: IniFile[] = [];
  for (const source of sources) {
    let paths: string[] = [source.path];
    if (source.kind === 'dir') {
      try {
        paths = await confFilesIn(source.path);
      } catch (err) {
        keep(err);
        continue;
      }
    }
    for (const path of paths) {
      try {
        files.push(await readIniFile(path));
      } catch (err) {
        keep(err);
      }
    }
  }

  const built = buildOptions(files, { env, hostname: (opts.hostname ?? osHostname)() });
  const valueErrors = [...built.errors];
  warnings.push(...built.warnings);
  if (built.transport) {
    const { url, rabbit, origin } = built.transport;
    try {
      parseTransportUrl(url, rabbit);
    } catch (err) {
      if (!(err instanceof TransportUrlError)) throw err;
      valueErrors.push(transportError(err, url, origin, built.effective));
    }
  }
  // in the order a person reads the files: file by file, line by line; the environment and defaults last
  const fileOrder = new Map(files.map((f, i) => [f.file, i]));
  const rank = (e: ConfigError): [number, number] => [fileOrder.get(e.file) ?? files.length, e.line ?? 0];
  errors.push(...valueErrors.sort((a, b) => rank(a)[0] - rank(b)[0] || rank(a)[1] - rank(b)[1]));

  const pollingOptions: PollingYamlOptions = {};
  let pollingFile = '';
  let polling: PollingConfig | null = null;
  if (built.pollingCfgFile) {
    const { name, origin } = built.pollingCfgFile;
    const found = await findConfigFile(name, sources, opts.findDirs ?? DEFAULT_FIND_DIRS);
    if (found.path !== null) pollingFile = found.path;
    if (opts.polling !== false) {
      if (found.path === null) {
        errors.push(new ConfigError({
          ...atOrigin(origin),
          section: 'polling',
          key: 'cfg_file',
          value: name,
          problem: `not found; looked for ${found.searched.join(', ')}`,
        }));
      } else {
        const extraMeters = await dynamicPollsterMeters(built.pollstersDefinitionsDirs, warnings);
        if (extraMeters.length > 0) pollingOptions.extraMeters = extraMeters;
        try {
          polling = await readPollingYaml(found.path, pollingOptions);
          warnings.push(...polling.warnings);
        } catch (err) {
          keep(err);
        }
      }
    }
  }

  if (errors.length > 0 || !built.options) throw new ConfigErrors(errors);
  return {
    ...built.options,
    pollingFile,
    polling: polling ?? emptyPolling(pollingFile),
    pollingOptions,
    warnings,
  };
}
