// The log line formats: oslo.log's `YYYY-MM-DD HH:MM:SS.mmm PID LEVEL module [-] message` and JSON.

import { describe, expect, it } from 'vitest';

import { createLogger, osloTimestamp } from '../../src/agent/log.js';

const at = new Date(2026, 10, 26, 9, 5, 7, 42); // local time, as oslo.log writes it

function capture(opts: Parameters<typeof createLogger>[1] = {}): { lines: string[]; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  return { lines, log: createLogger('ceilopoll.agent', { now: () => at, write: (l) => lines.push(l), ...opts }) };
}

describe('createLogger', () => {
  it("writes oslo.log's line format by default", () => {
    const { lines, log } = capture();
    log.warning('instance instance-00000005: no memory.usage');
    expect(lines).toEqual([`2026-11-26 09:05:07.042 ${process.pid} WARNING ceilopoll.agent [-] instance instance-00000005: no memory.usage`]);
    expect(osloTimestamp(at)).toBe('2026-11-26 09:05:07.042');
  });

  it('drops what is below the level, and child loggers keep level and format but change the module', () => {
    const { lines, log } = capture({ level: 'WARNING' });
    log.debug('d');
    log.info('i');
    log.error('e');
    log.child('ceilopoll.http').warning('w');
    expect(lines.map((l) => l.split(' ').slice(3, 5).join(' '))).toEqual(['ERROR ceilopoll.agent', 'WARNING ceilopoll.http']);
  });

  it('writes one JSON object a line with format json', () => {
    const { lines, log } = capture({ format: 'json' });
    log.info('connected to libvirt qemu:///system (read-only)');
    expect(JSON.parse(lines[0]!)).toEqual({
      timestamp: at.toISOString(),
      pid: process.pid,
      level: 'INFO',
      module: 'ceilopoll.agent',
      message: 'connected to libvirt qemu:///system (read-only)',
    });
  });

  it('never lets a newline in a message (a display name, an error) forge a second line', () => {
    for (const format of ['oslo', 'json'] as const) {
      const { lines, log } = capture({ format });
      log.warning('instance "evil\n2026-11-26 09:05:07.042 1 INFO ceilopoll.agent [-] forged" discovered');
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toContain('\n');
      expect(lines[0]).toContain('\\n2026-11-26');
    }
  });
});
