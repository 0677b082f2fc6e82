// Agent options for tests: the lab's libvirt, every memory meter, host compute-1, the real clock
// and ids; each test says what differs (broker, spool, interval, logger).

import type { AgentOptions } from '../../src/agent/agent.js';
import { createLogger } from '../../src/agent/log.js';
import { parseTransportUrl } from '../../src/publish/transport-url.js';
import { randomIds, systemClock } from '../../src/samples/clock.js';
import { MEMORY_METERS } from '../../src/samples/meters.js';
import { DEFAULT_SAMPLE_OPTIONS } from '../../src/samples/sample.js';

export function testAgentOptions(o: { transportUrl: string; spoolPath: string } & Partial<AgentOptions>): AgentOptions {
  const { transportUrl, ...rest } = o;
  return {
    libvirtUri: 'qemu:///system',
    intervalSeconds: 2,
    meters: MEMORY_METERS,
    sample: { ...DEFAULT_SAMPLE_OPTIONS, host: 'compute-1' },
    batchSize: 50,
    transport: parseTransportUrl(transportUrl),
    exchange: 'ceilometer',
    topics: ['notifications'],
    spoolMaxBytes: 64 * 1024 * 1024,
    spoolMaxAgeMs: 3600_000,
    stalenessFactor: 3,
    resourceUpdateIntervalMs: 0,
    log: createLogger('test', { level: 'WARNING', write: () => undefined }),
    clock: systemClock,
    ids: randomIds,
    ...rest,
  };
}
