import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { parseIni, readIniFile } from '../../src/config/ini.js';
import { asyncErrorsOf, errorsOf } from '../support/config-errors.js';

const F = '/etc/ceilometer/ceilometer.conf';

function values(text: string): Array<[string, string, string, number]> {
  return parseIni(text, F).values.map((v) => [v.section, v.key, v.value, v.line]);
}



describe('ini: assignments as oslo.config reads them', () => {
  it('reads "key = value" and "key: value", split at the first of "=" and ":"', () => {
    expect(values('[DEFAULT]\nhost = compute-1\nlibvirt_type: qemu\ntransport_url = rabbit://u:p@h:5672/\n')).toEqual([
      ['DEFAULT', 'host', 'compute-1', 2],
      ['DEFAULT', 'libvirt_type', 'qemu', 3],
      ['DEFAULT', 'transport_url', 'rabbit://u:p@h:5672/', 4],
    ]);
    expect(values('[a]\nk: v=w\n')).toEqual([['a', 'k', 'v=w', 2]]);
  });

  it('strips one pair of matching quotes, keeps inline comments as part of the value', () => {
    expect(values(`[a]\nx = "quoted"\ny = 'single'\nz = "mixed'\nw = v # not a comment\nq = "\n`)).toEqual([
      ['a', 'x', 'quoted', 2],
      ['a', 'y', 'single', 3],
      ['a', 'z', `"mixed'`, 4],
      ['a', 'w', 'v # not a comment', 5],
      ['a', 'q', '', 6],
    ]);
  });

  it('skips comments (column 1, "#" or ";") and blank lines', () => {
    expect(values('# c\n; c\n\n[a]\n#k = 1\n;k = 2\n\nk = 3\n')).toEqual([['a', 'k', '3', 8]]);
  });

  it('joins indented continuation lines with "\\n"; a blank line ends the value', () => {
    expect(values('[a]\nk = first\n  second\n\tthird\n\nj = x\n')).toEqual([
      ['a', 'k', 'first\nsecond\nthird', 2],
      ['a', 'j', 'x', 6],
    ]);
    expect(values('[a]\nk =\n  only\n')).toEqual([['a', 'k', '\nonly', 2]]);
  });

  it('keeps every occurrence of a repeated key, in order, with its line', () => {
    expect(values('[a]\nk = 1\n[b]\nk = x\n[a]\nk = 2\n')).toEqual([
      ['a', 'k', '1', 2],
      ['b', 'k', 'x', 4],
      ['a', 'k', '2', 6],
    ]);
  });

  it('treats "-" and "_" in keys the same; lower-cases section names except DEFAULT', () => {
    expect(values('[Service_Credentials]\nauth-url = http://k:5000/v3\n[default]\nx = 1\n')).toEqual([
      ['service_credentials', 'auth_url', 'http://k:5000/v3', 2],
      ['default', 'x', '1', 4],
    ]);
  });

  it('accepts CRLF line ends and a UTF-8 byte order mark', () => {
    expect(values('\uFEFF[a]\r\nk = v\r\n')).toEqual([['a', 'k', 'v', 2]]);
  });

  it('lists the section headers with their lines', () => {
    expect(parseIni('[DEFAULT]\n[polling]\n[polling]\n', F).sections).toEqual([
      { name: 'DEFAULT', line: 1 },
      { name: 'polling', line: 2 },
      { name: 'polling', line: 3 },
    ]);
  });
});

describe('ini: malformed lines, every one reported with file and line, no value shown', () => {
  it('an option before any section', () => {
    const [e] = errorsOf(() => parseIni('password = hunter2\n[DEFAULT]\n', F));
    expect(e!.message).toBe('/etc/ceilometer/ceilometer.conf:1: "password" is set before any [section] header: options belong in a section such as [DEFAULT]');
    expect(e!.message).not.toContain('hunter2');
    expect(e).toMatchObject({ file: F, line: 1 });
  });

  it('a header without "]"', () => {
    const [e] = errorsOf(() => parseIni('[DEFAULT]\n[polling\nbatch_size = 1\n', F));
    expect(e!.message).toBe('/etc/ceilometer/ceilometer.conf:2: section header "[polling" has no closing "]" at the end of the line');
  });

  it('a header with no name', () => {
    const [e] = errorsOf(() => parseIni('[]\n', F));
    expect(e!.message).toBe('/etc/ceilometer/ceilometer.conf:1: section header "[]" has no name');
  });

  it('a line with neither "=" nor ":"', () => {
    const [e] = errorsOf(() => parseIni('[DEFAULT]\nhunter2\n', F));
    expect(e!.message).toBe('/etc/ceilometer/ceilometer.conf:2: expected "key = value", "key: value", a [section] header or a comment; the line has no "=" or ":"');
    expect(e!.message).not.toContain('hunter2');
  });

  it('a line with no key', () => {
    const [e] = errorsOf(() => parseIni('[DEFAULT]\n= value\n', F));
    expect(e!.message).toBe('/etc/ceilometer/ceilometer.conf:2: the line starts with "=": the option name is missing');
  });

  it('an indented line with nothing to continue (an indented comment is one, as in oslo)', () => {
    const [e] = errorsOf(() => parseIni('[DEFAULT]\n  # indented comment\n', F));
    expect(e!.message).toBe('/etc/ceilometer/ceilometer.conf:2: an indented line, but there is no option to continue: a continuation line must directly follow a "key = value" line, and comments must start in column 1');
  });

  it('reports every bad line of the file, not only the first', () => {
    const errors = errorsOf(() => parseIni('k = 1\n[DEFAULT]\nnope\n[x\n', F));
    expect(errors.map((e) => e.line)).toEqual([1, 3, 4]);
  });
});

describe('ini: files that cannot be read name the file and the OS reason', () => {
  it('a missing file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-ini-'));
    const [e] = await asyncErrorsOf(readIniFile(join(dir, 'missing.conf')));
    expect(e!.message).toBe(`${dir}/missing.conf: cannot read the file: no such file or directory (ENOENT)`);
    expect(e!.file).toBe(join(dir, 'missing.conf'));
  });

  it('a directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-ini-'));
    await mkdir(join(dir, 'ceilometer.conf'));
    const [e] = await asyncErrorsOf(readIniFile(join(dir, 'ceilometer.conf')));
    expect(e!.message).toBe(`${dir}/ceilometer.conf: cannot read the file: is a directory (EISDIR)`);
  });

  // The tests run as root, which reads a chmod 000 file anyway; a path through a regular file is
  // the permission-independent way to get an open() that fails for a reason other than ENOENT.
  it('a path whose parent is a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-ini-'));
    await writeFile(join(dir, 'plain'), 'x');
    const [e] = await asyncErrorsOf(readIniFile(join(dir, 'plain', 'ceilometer.conf')));
    expect(e!.message).toBe(`${dir}/plain/ceilometer.conf: cannot read the file: a component of the path is not a directory (ENOTDIR)`);
  });

  it('a file that is not UTF-8', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ceilopoll-ini-'));
    await writeFile(join(dir, 'latin1.conf'), Buffer.from([0x5b, 0x61, 0x5d, 0x0a, 0x6b, 0x3d, 0xe9, 0x0a]));
    const [e] = await asyncErrorsOf(readIniFile(join(dir, 'latin1.conf')));
    expect(e!.message).toBe(`${dir}/latin1.conf: cannot read the file: it is not UTF-8 text`);
  });
});
