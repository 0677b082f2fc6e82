// Configuration errors: each names the file, the place in it (an ini [section] key, or a polling.yaml
// path, with the line when known), the bad value as written (secrets already redacted by the caller),
// and what would have been accepted. One line each; ConfigErrors carries every problem of one load so
// that a person fixes them all in one go. The CLI exits 2 on either.
//
//   <file>[:<line>[:<column>]]: [<section>] <key> = "<value>": expected <allowed>
//   <file>[:<line>]: <yaml path> = <value as YAML shows it>: expected <allowed>
//   <file>[:<line>]: <subject>: <problem>                 (no value: a missing key, an unknown reference...)
//   <file>: <problem>                                     (the whole file: unreadable, no sources...)

/** Where a default value "comes from", in messages and in check-config's provenance comments. */
export const DEFAULT_ORIGIN = '(default)';

export interface ConfigErrorInit {
  file: string;
  section?: string;
  key?: string;
  /** e.g. `sources[0].interval` */
  yamlPath?: string;
  line?: number;
  column?: number;
  /** the bad value, redacted if the key is secret */
  value?: string;
  /** 'quoted' (ini values: shown as a JSON string) or 'yaml' (shown as the YAML source text); default quoted */
  valueStyle?: 'quoted' | 'yaml';
  /** what is allowed, e.g. "an integer >= 0"; the message says "expected <allowed>" unless `problem` is given */
  allowed?: string;
  /** a complete description of what is wrong, used instead of "expected <allowed>" */
  problem?: string;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}

function formatMessage(e: ConfigErrorInit): string {
  let where = e.file;
  if (e.line !== undefined) where += `:${e.line}`;
  if (e.line !== undefined && e.column !== undefined) where += `:${e.column}`;

  let subject = '';
  if (e.section !== undefined && e.key !== undefined) subject = `[${e.section}] ${e.key}`;
  else if (e.section !== undefined) subject = `[${e.section}]`;
  else if (e.yamlPath !== undefined) subject = e.yamlPath;
  if (e.value !== undefined) {
    const shown = e.valueStyle === 'yaml' ? oneLine(e.value) : JSON.stringify(e.value);
    subject += subject === '' ? shown : ` = ${shown}`;
  }

  const problem = e.problem ?? (e.allowed !== undefined ? `expected ${e.allowed}` : 'invalid');
  return subject === '' ? `${where}: ${problem}` : `${where}: ${subject}: ${problem}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly file: string;
  readonly section?: string;
  readonly key?: string;
  readonly yamlPath?: string;
  readonly line?: number;
  readonly column?: number;
  readonly value?: string;
  readonly allowed?: string;
  readonly problem?: string;

  constructor(init: ConfigErrorInit) {
    super(formatMessage(init));
    this.file = init.file;
    if (init.section !== undefined) this.section = init.section;
    if (init.key !== undefined) this.key = init.key;
    if (init.yamlPath !== undefined) this.yamlPath = init.yamlPath;
    if (init.line !== undefined) this.line = init.line;
    if (init.column !== undefined) this.column = init.column;
    if (init.value !== undefined) this.value = init.value;
    if (init.allowed !== undefined) this.allowed = init.allowed;
    if (init.problem !== undefined) this.problem = init.problem;
  }
}

/** Every problem found in one load; the message is their messages, one a line, in the order found. */
export class ConfigErrors extends Error {
  override readonly name = 'ConfigErrors';
  readonly errors: readonly ConfigError[];

  constructor(errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
    this.errors = errors;
  }
}

const OS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EIO: 'input/output error',
};

/** "no such file or directory (ENOENT)" for a Node.js fs error; the error's own message otherwise. */
export function osReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string') return `${OS_REASONS[code] ?? (err as Error).message} (${code})`;
  return err instanceof Error ? err.message : String(err);
}

/** A ConfigError for a file or directory that cannot be read. */
export function unreadable(file: string, err: unknown, what = 'file'): ConfigError {
  return new ConfigError({ file, problem: `cannot read the ${what}: ${osReason(err)}` });
}
