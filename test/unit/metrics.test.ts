import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';

import { AgentMetrics } from '../../src/agent/metrics.js';
import { MISSING_REASONS } from '../../src/inspect/memory.js';

interface Series {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format 0.0.4, enough of it for prom-client's output: `name{a="b",...} value`. */
function parse(text: string): { series: Series[]; types: Map<string, string> } {
  const series: Series[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    series.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { series, types };
}

async function scrape(m: AgentMetrics): Promise<{ series: Series[]; types: Map<string, string>; value: (name: string, labels?: Record<string, string>) => number | undefined }> {
  const { series, types } = parse(await m.render());
  const value = (name: string, labels: Record<string, string> = {}): number | undefined =>
    series.find((s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
  return { series, types, value };
}

const CONTRACT: Record<string, string> = {
  ceilopoll_cycle_duration_seconds: 'histogram',
  ceilopoll_cycles_total: 'counter',
  ceilopoll_samples_total: 'counter',
  ceilopoll_missing_stats: 'gauge',
  ceilopoll_instances: 'gauge',
  ceilopoll_skipped_domains: 'gauge',
  ceilopoll_spool_depth: 'gauge',
  ceilopoll_spool_bytes: 'gauge',
  ceilopoll_spool_dropped_total: 'counter',
  ceilopoll_notifications_confirmed_total: 'counter',
  ceilopoll_publish_failures_total: 'counter',
  ceilopoll_libvirt_call_duration_seconds: 'histogram',
  ceilopoll_connection_up: 'gauge',
  ceilopoll_reconnects_total: 'counter',
  ceilopoll_last_cycle_timestamp_seconds: 'gauge',
};

describe('the registry', () => {
  it('declares every metric of the contract with its type', async () => {
    const { types } = await scrape(new AgentMetrics({ defaultMetrics: false }));
    for (const [name, type] of Object.entries(CONTRACT)) expect([name, types.get(name)]).toEqual([name, type]);
  });

  it('is its own: two instances in one process do not collide, the global registry stays empty', async () => {
    const a = new AgentMetrics({ defaultMetrics: false });
    const b = new AgentMetrics({ defaultMetrics: false });
    a.confirmed(3);
    expect((await scrape(a)).value('ceilopoll_notifications_confirmed_total')).toBe(3);
    expect((await scrape(b)).value('ceilopoll_notifications_confirmed_total')).toBe(0);
    expect(await globalRegistry.metrics()).not.toContain('ceilopoll_');
  });

  it("includes prom-client's process and Node.js metrics under their standard names, unless turned off", async () => {
    const { types } = await scrape(new AgentMetrics());
    expect(types.get('process_resident_memory_bytes')).toBe('gauge');
    expect(types.get('process_cpu_seconds_total')).toBe('counter');
    expect(types.get('nodejs_eventloop_lag_seconds')).toBe('gauge');
    const bare = await scrape(new AgentMetrics({ defaultMetrics: false }));
    expect(bare.series.some((s) => s.name.startsWith('process_') || s.name.startsWith('nodejs_'))).toBe(false);
  });

  it('serves the Prometheus text content type', () => {
    expect(new AgentMetrics({ defaultMetrics: false }).contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('starts with the series alerts need at 0: connections down, no reconnects, no missing stats', async () => {
    const { value } = await scrape(new AgentMetrics({ defaultMetrics: false }));
    for (const peer of ['libvirt', 'broker']) {
      expect(value('ceilopoll_connection_up', { peer })).toBe(0);
      expect(value('ceilopoll_reconnects_total', { peer })).toBe(0);
    }
    for (const reason of MISSING_REASONS) expect(value('ceilopoll_missing_stats', { reason })).toBe(0);
  });
});

describe('cycle()', () => {
  it('counts each outcome and observes the duration of the cycles that ran', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.cycle('memory-10s', 250, 'ok', 1_700_000_000_000);
    m.cycle('memory-10s', 1500, 'failed', 1_700_000_010_000);
    m.cycle('memory-10s', 0, 'skipped');
    const { value } = await scrape(m);
    expect(value('ceilopoll_cycles_total', { task: 'memory-10s', outcome: 'ok' })).toBe(1);
    expect(value('ceilopoll_cycles_total', { task: 'memory-10s', outcome: 'failed' })).toBe(1);
    expect(value('ceilopoll_cycles_total', { task: 'memory-10s', outcome: 'skipped' })).toBe(1);
    expect(value('ceilopoll_cycle_duration_seconds_count', { task: 'memory-10s' })).toBe(2);
    expect(value('ceilopoll_cycle_duration_seconds_sum', { task: 'memory-10s' })).toBe(1.75);
    expect(value('ceilopoll_cycle_duration_seconds_bucket', { task: 'memory-10s', le: '0.25' })).toBe(1);
    expect(value('ceilopoll_cycle_duration_seconds_bucket', { task: 'memory-10s', le: '2.5' })).toBe(2);
  });

  it('sets the last-cycle timestamp from successful cycles only', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.cycle('memory-10s', 250, 'ok', 1_700_000_000_000);
    m.cycle('memory-10s', 250, 'failed', 1_700_000_010_000);
    expect((await scrape(m)).value('ceilopoll_last_cycle_timestamp_seconds', { task: 'memory-10s' })).toBe(1_700_000_000);
  });

  it('has buckets from 1 ms to 60 s', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.cycle('t', 1, 'ok');
    const les = (await scrape(m)).series.filter((s) => s.name === 'ceilopoll_cycle_duration_seconds_bucket').map((s) => s.labels.le);
    expect(les[0]).toBe('0.001');
    expect(les.at(-2)).toBe('60');
    expect(les.at(-1)).toBe('+Inf');
  });
});

describe('samples and the last cycle', () => {
  it('counts samples by meter and outcome', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.samples('memory.usage', 'produced', 40);
    m.samples('memory.usage', 'missing', 2);
    m.samples('memory.usage', 'produced');
    const { value } = await scrape(m);
    expect(value('ceilopoll_samples_total', { meter: 'memory.usage', outcome: 'produced' })).toBe(41);
    expect(value('ceilopoll_samples_total', { meter: 'memory.usage', outcome: 'missing' })).toBe(2);
  });

  it('sets every missing reason each cycle, so a reason that went away goes back to 0', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.missingByReason({ stale: 3, 'no-balloon-device': 1 });
    let { value } = await scrape(m);
    expect(value('ceilopoll_missing_stats', { reason: 'stale' })).toBe(3);
    expect(value('ceilopoll_missing_stats', { reason: 'no-balloon-device' })).toBe(1);
    m.missingByReason({ busy: 2 });
    ({ value } = await scrape(m));
    expect(value('ceilopoll_missing_stats', { reason: 'stale' })).toBe(0);
    expect(value('ceilopoll_missing_stats', { reason: 'no-balloon-device' })).toBe(0);
    expect(value('ceilopoll_missing_stats', { reason: 'busy' })).toBe(2);
  });

  it('resets an unforeseen reason too once it is gone', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.missingByReason({ 'something-new': 1 });
    m.missingByReason({});
    expect((await scrape(m)).value('ceilopoll_missing_stats', { reason: 'something-new' })).toBe(0);
  });

  it('counts stalled cycles by cause and by whose answer was used, from 0', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    expect((await scrape(m)).value('ceilopoll_libvirt_stalls_total', { cause: 'stalled', answered_by: 'per_domain' })).toBe(0);
    m.stall('stalled', 'per-domain');
    m.stall('pending', 'per-domain');
    m.stall('pending', 'per-domain');
    m.stall('stalled', 'bulk');
    const { value } = await scrape(m);
    expect(value('ceilopoll_libvirt_stalls_total', { cause: 'stalled', answered_by: 'per_domain' })).toBe(1);
    expect(value('ceilopoll_libvirt_stalls_total', { cause: 'pending', answered_by: 'per_domain' })).toBe(2);
    expect(value('ceilopoll_libvirt_stalls_total', { cause: 'stalled', answered_by: 'bulk' })).toBe(1);
  });

  it('sets the instance and skipped-domain gauges', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.instances(12, 3);
    const { value } = await scrape(m);
    expect(value('ceilopoll_instances')).toBe(12);
    expect(value('ceilopoll_skipped_domains')).toBe(3);
  });
});

describe('spool and delivery', () => {
  it('sets the spool gauges and counts drops, confirms and publish failures', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.spool(7, 12_345);
    m.spoolDropped(4);
    m.spoolDropped(1);
    m.confirmed();
    m.confirmed(9);
    m.publishFailed();
    const { value } = await scrape(m);
    expect(value('ceilopoll_spool_depth')).toBe(7);
    expect(value('ceilopoll_spool_bytes')).toBe(12_345);
    expect(value('ceilopoll_spool_dropped_total')).toBe(5);
    expect(value('ceilopoll_notifications_confirmed_total')).toBe(10);
    expect(value('ceilopoll_publish_failures_total')).toBe(1);
  });
});

describe('libvirt calls and connections', () => {
  it('observes call durations by procedure and outcome', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.libvirtCall('CONNECT_GET_ALL_DOMAIN_STATS', 2, 'ok');
    m.libvirtCall('CONNECT_GET_ALL_DOMAIN_STATS', 30_000, 'timeout');
    m.libvirtCall('DOMAIN_GET_XML_DESC', 1, 'error');
    const { value } = await scrape(m);
    const ok = { procedure: 'CONNECT_GET_ALL_DOMAIN_STATS', outcome: 'ok' };
    expect(value('ceilopoll_libvirt_call_duration_seconds_count', ok)).toBe(1);
    expect(value('ceilopoll_libvirt_call_duration_seconds_bucket', { ...ok, le: '0.001' })).toBe(0);
    expect(value('ceilopoll_libvirt_call_duration_seconds_bucket', { ...ok, le: '0.0025' })).toBe(1);
    expect(value('ceilopoll_libvirt_call_duration_seconds_sum', { procedure: 'CONNECT_GET_ALL_DOMAIN_STATS', outcome: 'timeout' })).toBe(30);
    expect(value('ceilopoll_libvirt_call_duration_seconds_count', { procedure: 'DOMAIN_GET_XML_DESC', outcome: 'error' })).toBe(1);
  });

  it('names procedures by number through libvirtCallObserver()', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    const observe = m.libvirtCallObserver();
    observe(344, 5, 'ok');
    observe(9999, 5, 'error');
    const { value } = await scrape(m);
    expect(value('ceilopoll_libvirt_call_duration_seconds_count', { procedure: 'CONNECT_GET_ALL_DOMAIN_STATS', outcome: 'ok' })).toBe(1);
    expect(value('ceilopoll_libvirt_call_duration_seconds_count', { procedure: 'procedure 9999', outcome: 'error' })).toBe(1);
  });

  it('sets connection_up per peer and counts reconnects', async () => {
    const m = new AgentMetrics({ defaultMetrics: false });
    m.connection('libvirt', true);
    m.connection('broker', true);
    m.connection('broker', false);
    m.reconnect('libvirt');
    m.reconnect('libvirt');
    const { value } = await scrape(m);
    expect(value('ceilopoll_connection_up', { peer: 'libvirt' })).toBe(1);
    expect(value('ceilopoll_connection_up', { peer: 'broker' })).toBe(0);
    expect(value('ceilopoll_reconnects_total', { peer: 'libvirt' })).toBe(2);
    expect(value('ceilopoll_reconnects_total', { peer: 'broker' })).toBe(0);
  });
});
