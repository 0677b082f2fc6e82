// Bad broker settings never stop polling: wrong credentials, an unreachable host, a missing vhost,
// and a queue declared earlier with other flags (406) each give one clear error line, the cycles go
// on, and the spool keeps every notification until the broker can take it.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import amqp from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';

import { Agent } from '../../src/agent/agent.js';
import { createLogger } from '../../src/agent/log.js';
import { testAgentOptions } from '../support/agent.js';
import { guestOf, until } from '../support/lab.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ceilopoll-broker-errors-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function agentFor(url: string, name: string, topics = ['notifications']): { agent: Agent; logs: string[] } {
  const logs: string[] = [];
  const agent = new Agent(testAgentOptions({
    transportUrl: url,
    spoolPath: path.join(dir, `${name}.sqlite`),
    intervalSeconds: 1,
    exchange: `ceilopoll-test-${name}`,
    topics,
    log: createLogger('test', { level: 'INFO', write: (l) => logs.push(l) }),
  }));
  return { agent, logs };
}

async function pollsWithout(url: string, name: string, expected: RegExp, topics?: string[]): Promise<string[]> {
  const { agent, logs } = agentFor(url, name, topics);
  agent.start();
  try {
    await until('4 cycles', () => (agent.taskStats?.runs ?? 0) >= 4, 30_000, 100);
    expect(agent.spoolDepth).toBeGreaterThanOrEqual(4 * 3); // nothing sent, nothing lost
    expect(agent.deliveryStats!.confirmed).toBe(0);
    const errors = logs.filter((l) => / ERROR /.test(l));
    expect(errors.some((l) => expected.test(l)), errors.join('\n')).toBe(true);
    // one line per distinct problem, not one per attempt
    expect(new Set(errors).size).toBe(errors.length);
    // a guest's missing-value reason: one line over 4 cycles, not one per cycle
    const none = guestOf('none');
    expect(logs.filter((l) => l.includes(`instance ${none.name} `) && l.includes('no-balloon-device'))).toHaveLength(1);
    return logs;
  } finally {
    await agent.stop(500);
  }
}

describe('the agent with a broker it cannot use', () => {
  it('wrong credentials', { timeout: 60_000 }, async () => {
    const logs = await pollsWithout('rabbit://guest:not-the-password@127.0.0.1:5672/', 'creds', /ACCESS_REFUSED.*check transport_url user and password/);
    expect(logs.join('\n')).not.toContain('not-the-password');
  });

  it('an unreachable host', { timeout: 60_000 }, async () => {
    await pollsWithout('rabbit://guest:guest@127.0.0.1:1/', 'unreachable', /cannot reach RabbitMQ at 127\.0\.0\.1:1/);
  });

  it('a missing vhost', { timeout: 60_000 }, async () => {
    await pollsWithout('rabbit://guest:guest@127.0.0.1:5672/ceilopoll-no-such-vhost', 'vhost', /vhost "ceilopoll-no-such-vhost".*does not exist/);
  });

  it('a queue declared earlier with other flags (406), then fixed: everything spooled is sent', { timeout: 90_000 }, async () => {
    const topic = `ceilopoll-406-${process.pid}`;
    const conn = await amqp.connect('amqp://guest:guest@127.0.0.1:5672');
    const ch = await conn.createChannel();
    await ch.assertQueue(`${topic}.sample`, { durable: true });
    const { agent, logs } = agentFor('rabbit://guest:guest@127.0.0.1:5672/', 'precondition', [topic]);
    agent.start();
    try {
      await until('3 cycles', () => (agent.taskStats?.runs ?? 0) >= 3, 30_000, 100);
      expect(logs.join('\n')).toMatch(/406 PRECONDITION_FAILED.*amqp_durable_queues/);
      expect(agent.deliveryStats!.confirmed).toBe(0);
      const spooled = agent.spoolDepth;
      expect(spooled).toBeGreaterThan(0);
      await ch.deleteQueue(`${topic}.sample`); // the operator fixes it
      await until('the spool to drain', () => agent.spoolDepth === 0, 60_000, 200);
      expect(agent.deliveryStats!.confirmed).toBeGreaterThanOrEqual(spooled);
    } finally {
      await agent.stop(2000);
      await ch.deleteQueue(`${topic}.sample`).catch(() => undefined);
      await ch.deleteExchange('ceilopoll-test-precondition').catch(() => undefined);
      await conn.close();
    }
  });
});
