// ceilometer.conf as oslo.config's ini parser reads it (oslo.config 9.0, Zed):
// - `[section]` headers; the name is kept as written except that every section but `DEFAULT` is
//   looked up lower-cased (oslo normalises group names that way: `[Polling]` is [polling], `[default]`
//   is NOT [DEFAULT]);
// - `key = value` or `key: value`, split at whichever of "=" and ":" comes first; the value is trimmed
//   and one pair of matching surrounding quotes removed; inline comments are part of the value;
// - a line starting (column 1) with "#" or ";" is a comment; a blank line ends a multi-line value;
// - an indented line continues the previous value, joined with "\n" (an indented "#" is a continuation,
//   not a comment, as in oslo);
// - a key may repeat: every occurrence is kept, in order, with its line (the option decides: last wins
//   for single-valued options, all of them count for multi-valued ones).
// Keys are normalised '-' -> '_' so that `auth-url` and `auth_url` are the same option.
// Unlike oslo, which stops at the first parse error, every error of the file is reported.

import { readFile } from 'node:fs/promises';

import { ConfigError, ConfigErrors, unreadable } from './errors.js';

export interface IniValue {
  file: string;
  /** normalised: `DEFAULT`, else lower case */
  section: string;
  /** normalised: '-' -> '_' */
  key: string;
  value: string;
  line: number;
}

export interface IniSection {
  /** normalised like IniValue.section */
  name: string;
  line: number;
}

export interface IniFile {
  file: string;
  /** every assignment, in file order */
  values: IniValue[];
  /** every header, in file order (a section may appear more than once) */
  sections: IniSection[];
}

export function normalizeSectionName(name: string): string {
  return name === 'DEFAULT' ? name : name.toLowerCase();
}

export function normalizeKey(key: string): string {
  return key.replace(/-/g, '_');
}

/** Parses one file's text. Throws ConfigErrors listing every malformed line (never showing a value). */
export function parseIni(text: string, file: string): IniFile {
  const values: IniValue[] = [];
  const sections: IniSection[] = [];
  const errors: ConfigError[] = [];
  const fail = (line: number, problem: string): void => {
    errors.push(new ConfigError({ file, line, problem }));
  };

  let section: string | null = null;
  // the assignment being built: its key, first line and value lines
  let pending: { key: string; line: number; parts: string[] } | null = null;
  const flush = (): void => {
    if (pending === null) return;
    if (section === null) {
      fail(pending.line, `"${pending.key}" is set before any [section] header: options belong in a section such as [DEFAULT]`);
    } else {
      values.push({ file, section, key: normalizeKey(pending.key), value: pending.parts.join('\n'), line: pending.line });
    }
    pending = null;
  };

  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  // a final newline does not make a last, empty line
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();

  for (const [index, raw] of lines.entries()) {
    const lineNo = index + 1;
    const line = raw.trimEnd();
    if (line === '') {
      flush();
      continue;
    }
    const first = line[0];
    if (first === ' ' || first === '\t') {
      if (pending === null) {
        fail(lineNo, 'an indented line, but there is no option to continue: a continuation line must directly follow a "key = value" line, and comments must start in column 1');
      } else {
        pending.parts.push(line.trimStart());
      }
      continue;
    }
    flush();
    if (first === '[') {
      if (!line.endsWith(']')) {
        fail(lineNo, `section header ${JSON.stringify(line)} has no closing "]" at the end of the line`);
      } else if (line.length <= 2) {
        fail(lineNo, 'section header "[]" has no name');
      } else {
        section = normalizeSectionName(line.slice(1, -1));
        sections.push({ name: section, line: lineNo });
      }
      continue;
    }
    if (first === '#' || first === ';') continue;

    const colon = line.indexOf(':');
    const equal = line.indexOf('=');
    if (colon < 0 && equal < 0) {
      fail(lineNo, 'expected "key = value", "key: value", a [section] header or a comment; the line has no "=" or ":"');
      continue;
    }
    const at = colon < 0 || (equal >= 0 && equal < colon) ? equal : colon;
    const key = line.slice(0, at).trim();
    let value = line.slice(at + 1).trim();
    if (value !== '' && (value[0] === '"' || value[0] === "'") && value[0] === value[value.length - 1]) {
      value = value.slice(1, -1);
    }
    if (key === '') {
      fail(lineNo, `the line starts with "${line[at]}": the option name is missing`);
      continue;
    }
    pending = { key, line: lineNo, parts: [value] };
  }
  flush();

  if (errors.length > 0) throw new ConfigErrors(errors);
  return { file, values, sections };
}

/** Reads and parses one file. An unreadable file (missing, a directory, no permission, not UTF-8) is a ConfigError. */
export async function readIniFile(file: string): Promise<IniFile> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new ConfigErrors([unreadable(file, err)]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigErrors([new ConfigError({ file, problem: 'cannot read the file: it is not UTF-8 text' })]);
  }
  return parseIni(text, file);
}
