// The fuzzing engine, run as its own process (`node --expose-gc --import tsx test/chaos/fuzz-runner.ts
// TARGET SEED CASES`) so that the test can stop a case that hangs: it prints "progress N" to stderr
// every 1000 cases and one JSON summary line to stdout at the end. Each case must return a result or
// fail with the parser's own typed failure (ProtocolError for the libvirt decoders, a Result with
// ok false for the XML parsers); anything else is recorded as a failure with its case number, which
// the seed reproduces.

import { performance } from 'node:perf_hooks';

import { extractNovaFromDomainXml, parseDomainXml } from '../../src/discovery/domain-xml.js';
import { parseNovaMetadata } from '../../src/discovery/nova-metadata.js';
import { ProtocolError } from '../../src/libvirt/errors.js';
import { decode, decodeRemoteError, Proc } from '../../src/libvirt/protocol.js';
import { FrameSplitter, MessageStatus } from '../../src/libvirt/wire.js';
import { seedFrames, seedXml } from './fuzz-corpus.js';
import { Prng, mutateBytes } from './prng.js';

export interface FuzzSummary {
  target: string;
  seed: number;
  cases: number;
  /** by kind of input: random, mutated, ... */
  kinds: Record<string, number>;
  /** what the cases ended in: ok, ProtocolError, Result-error, ... */
  outcomes: Record<string, number>;
  failures: Array<{ case: number; kind: string; error: string }>;
  seconds: number;
  casesPerSec: number;
  maxCaseMs: number;
  maxCase: number;
  heapBeforeMB: number;
  heapAfterMB: number;
  maxRssMB: number;
  gc: boolean;
}

type Case = { kind: string; run: () => string };

const DECODERS: Record<number, (p: Buffer) => unknown> = {
  [Proc.AUTH_LIST]: (p) => decode.authList(p),
  [Proc.CONNECT_OPEN]: (p) => decode.empty(p, 'CONNECT_OPEN reply'),
  [Proc.CONNECT_SUPPORTS_FEATURE]: (p) => decode.int(p, 'CONNECT_SUPPORTS_FEATURE reply'),
  [Proc.CONNECT_GET_HOSTNAME]: (p) => decode.string(p, 'CONNECT_GET_HOSTNAME reply'),
  [Proc.CONNECT_GET_LIB_VERSION]: (p) => decode.uhyper(p, 'CONNECT_GET_LIB_VERSION reply'),
  [Proc.CONNECT_LIST_ALL_DOMAINS]: (p) => decode.listAllDomains(p),
  [Proc.CONNECT_GET_ALL_DOMAIN_STATS]: (p) => decode.allDomainStats(p),
  [Proc.DOMAIN_MEMORY_STATS]: (p) => decode.memoryStats(p),
  [Proc.DOMAIN_GET_STATE]: (p) => decode.domainState(p),
  [Proc.DOMAIN_LOOKUP_BY_UUID]: (p) => decode.domain(p, 'DOMAIN_LOOKUP_BY_UUID reply'),
  [Proc.DOMAIN_GET_XML_DESC]: (p) => decode.string(p, 'DOMAIN_GET_XML_DESC reply'),
  [Proc.DOMAIN_GET_METADATA]: (p) => decode.string(p, 'DOMAIN_GET_METADATA reply'),
  [Proc.CONNECT_CLOSE]: (p) => decode.empty(p, 'CONNECT_CLOSE reply'),
  [Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE]: (p) => decode.lifecycleEvent(p),
  [Proc.DOMAIN_EVENT_CALLBACK_METADATA_CHANGE]: (p) => decode.metadataChangeEvent(p),
};
const DECODER_LIST = Object.values(DECODERS);

/** Runs `fn`; a ProtocolError is the decoder's typed refusal, anything else escapes. */
function protocolOutcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof ProtocolError) return 'ProtocolError';
    throw err;
  }
}

/** Feeds a byte stream in random pieces and decodes every packet that comes out. */
function feed(rng: Prng, stream: Buffer): string {
  const splitter = new FrameSplitter();
  let at = 0;
  let outcome = 'ok';
  while (at < stream.length) {
    const n = 1 + rng.int(rng.chance(0.5) ? 64 : stream.length);
    const piece = stream.subarray(at, at + n);
    at += n;
    let packets;
    try {
      packets = splitter.push(piece);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      // the splitter stays failed: the next push must throw the same error, and nothing else
      let again: unknown;
      try {
        splitter.push(Buffer.from([0, 0, 0, 28]));
      } catch (e) {
        again = e;
      }
      if (again !== err) throw new Error(`FrameSplitter did not stay failed after "${err.message}"`);
      return 'ProtocolError(frame)';
    }
    for (const p of packets) {
      const dec = p.header.status === MessageStatus.ERROR ? decodeRemoteError : (DECODERS[p.header.proc] ?? rng.pick(DECODER_LIST));
      const o = protocolOutcome(() => dec(p.payload));
      if (o !== 'ok') outcome = o;
    }
  }
  if (splitter.buffered > stream.length) throw new Error(`FrameSplitter buffers ${splitter.buffered} bytes of a ${stream.length}-byte stream`);
  return outcome;
}

function libvirtCase(rng: Prng, seeds: ReturnType<typeof seedFrames>): Case {
  const k = rng.int(5);
  if (k === 0) return { kind: 'random bytes', run: () => feed(rng, rng.bytes(rng.int(600))) };
  if (k === 1) {
    // random packets with a plausible length word, so that random headers and payloads reach the decoders
    return {
      kind: 'random packets',
      run: () => {
        const parts: Buffer[] = [];
        for (let i = 1 + rng.int(3); i > 0; i--) {
          const body = rng.bytes(24 + rng.int(400));
          const len = Buffer.alloc(4);
          len.writeUInt32BE(body.length + 4);
          if (rng.chance(0.5)) body.writeInt32BE(rng.pick(Object.values(Proc)), 8);
          parts.push(len, body);
        }
        return feed(rng, Buffer.concat(parts));
      },
    };
  }
  if (k === 2) {
    return {
      kind: 'mutated payloads',
      run: () => {
        const s = rng.pick(seeds);
        const m = mutateBytes(rng, s.payload);
        const own = s.what.includes('error') ? decodeRemoteError : (DECODERS[s.proc] ?? decodeRemoteError);
        const dec = rng.chance(0.8) ? own : rng.chance(0.5) ? decodeRemoteError : rng.pick(DECODER_LIST);
        return protocolOutcome(() => dec(m));
      },
    };
  }
  return {
    kind: 'mutated frame streams',
    run: () => {
      const parts: Buffer[] = [];
      for (let i = 1 + rng.int(3); i > 0; i--) parts.push(rng.pick(seeds).packet);
      return feed(rng, mutateBytes(rng, Buffer.concat(parts), 6));
    },
  };
}

// ---- XML ---------------------------------------------------------------------------------------------

const XML_SNIPPETS = [
  '<', '>', '/>', '</', '&', '&amp;', '&#0;', '&#x110000;', '&nope;', '"', "'", '=', '<![CDATA[', ']]>', '<!--', '-->', '<?xml version="1.0"?>',
  'xmlns="http://openstack.org/xmlns/libvirt/nova/1.1"', 'xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.0"', 'nova:', '<nova:flavor name="x">',
  '<nova:memory>', '</nova:memory>', '<memballoon model="virtio"><stats period="10"/></memballoon>', '<stats period="-1"/>', '<uuid>', '</uuid>',
  '99999999999999999999999', '-1', '1e309', 'NaN', '0x10', '\u0000', '\uffff', '\ud800', 'é', '𝕏', ' ', '\n', '__proto__', 'constructor',
];

const BILLION_LAUGHS =
  '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
  '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">' +
  '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"><!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">' +
  '<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">]>';

function mutateXml(rng: Prng, xml: string): string {
  let s = xml;
  for (let ops = rng.chance(0.6) ? 1 : 1 + rng.int(4); ops > 0; ops--) {
    const at = rng.int(s.length + 1);
    switch (rng.int(9)) {
      case 0:
        s = s.slice(0, at) + s.slice(at + 1 + rng.int(40));
        break;
      case 1:
        s = s.slice(0, at) + rng.pick(XML_SNIPPETS) + s.slice(at);
        break;
      case 2: {
        const len = 1 + rng.int(200);
        s = s.slice(0, at + len) + s.slice(at, at + len) + s.slice(at + len);
        break;
      }
      case 3:
        s = s.slice(0, at);
        break;
      case 4: {
        // a number replaced by an extreme one
        const nums = [...s.matchAll(/\d+/g)];
        if (nums.length > 0) {
          const m = rng.pick(nums);
          s = s.slice(0, m.index) + rng.pick(['0', '-1', '2147483648', '99999999999999999999999', '1e309', 'NaN', '', ' 1', '٣']) + s.slice(m.index + m[0].length);
        }
        break;
      }
      case 5: {
        // an attribute value or a text replaced by odd text
        const vals = [...s.matchAll(/(="[^"]*"|='[^']*'|>[^<]{1,80}<)/g)];
        if (vals.length > 0) {
          const m = rng.pick(vals);
          const q = m[0][0] === '=' ? m[0][1]! : '';
          const odd = rng.pick(['', '&amp;', '<', '__proto__', '\u0000', 'x'.repeat(5000), rng.bytes(8).toString('latin1')]);
          s = s.slice(0, m.index) + (q ? `=${q}${odd}${q}` : `>${odd}<`) + s.slice(m.index + m[0].length);
        }
        break;
      }
      case 6:
        s = (rng.chance(0.5) ? BILLION_LAUGHS : '<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>') + s.replace(/<\?xml[^>]*\?>/, '').replace(/>[^<]*</, '>&lol6;&x;<');
        break;
      case 7:
        s = s.slice(0, at) + rng.bytes(1 + rng.int(12)).toString('latin1') + s.slice(at);
        break;
      default: {
        // swap a tag name for another one found in the document
        const tags = [...s.matchAll(/<\/?([A-Za-z][\w:.-]*)/g)];
        if (tags.length > 1) {
          const a = rng.pick(tags);
          const b = rng.pick(tags);
          s = s.slice(0, a.index + a[0].length - a[1]!.length) + b[1] + s.slice(a.index + a[0].length);
        }
      }
    }
  }
  return s;
}

function resultOutcome(what: string, r: unknown): string {
  if (typeof r !== 'object' || r === null || typeof (r as { ok?: unknown }).ok !== 'boolean') throw new Error(`${what} returned ${String(r)}, not a Result`);
  const res = r as { ok: boolean; reason?: unknown };
  if (!res.ok && (typeof res.reason !== 'string' || res.reason === '')) throw new Error(`${what} failed without a reason`);
  return res.ok ? 'ok' : 'Result-error';
}

function xmlCase(rng: Prng, seeds: ReturnType<typeof seedXml>): Case {
  const k = rng.int(10);
  let input: () => string;
  let kind: string;
  if (k === 0) {
    kind = 'random text';
    input = () => rng.bytes(rng.int(400)).toString(rng.chance(0.5) ? 'latin1' : 'utf8');
  } else if (k === 1) {
    kind = 'random snippets';
    input = () => Array.from({ length: rng.int(60) }, () => rng.pick(XML_SNIPPETS)).join('');
  } else {
    kind = 'mutated fixtures';
    input = () => mutateXml(rng, rng.pick(seeds).xml);
  }
  return {
    kind,
    run: () => {
      const xml = input();
      const a = resultOutcome('parseNovaMetadata', parseNovaMetadata(xml));
      const b = resultOutcome('parseDomainXml', parseDomainXml(xml));
      const c = resultOutcome('extractNovaFromDomainXml', extractNovaFromDomainXml(xml));
      // the Nova element of a domain, when there is one, parses as a metadata document by itself
      return [a, b, c].join('/');
    },
  };
}

// ---- the loop ----------------------------------------------------------------------------------------

const mb = (n: number): number => Math.round((n / 1048576) * 10) / 10;

/**
 * A bug planted on purpose, to show that the harness catches it: `throw` makes the bulk-stats decoder
 * throw a TypeError on one payload length in 7, `hang` makes case 1500 loop forever.
 */
export type Plant = 'none' | 'throw' | 'hang';

export function fuzz(target: 'libvirt' | 'xml', seed: number, cases: number, progress: (n: number) => void = () => undefined, plant: Plant = 'none'): FuzzSummary {
  const rng = new Prng(seed);
  if (plant === 'throw') {
    const real = DECODERS[Proc.CONNECT_GET_ALL_DOMAIN_STATS]!;
    DECODERS[Proc.CONNECT_GET_ALL_DOMAIN_STATS] = (p) => {
      if (p.length % 7 === 3) throw new TypeError('planted bug');
      return real(p);
    };
  }
  const frames = seedFrames();
  const xmls = seedXml();
  /** The target's next case, drawn from `r`. */
  const nextCase = (r: Prng): Case => (target === 'libvirt' ? libvirtCase(r, frames) : xmlCase(r, xmls));
  const gc = (globalThis as { gc?: () => void }).gc;
  // warm up (JIT, first-use allocations) so that the heap comparison sees growth, not start-up; each
  // case draws from its own Prng, so the seed's cases below are the same with or without it
  for (let i = 0; i < 2000; i++) {
    try {
      nextCase(new Prng(i)).run();
    } catch {
      // counted in the real loop
    }
  }
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const s: FuzzSummary = { target, seed, cases: 0, kinds: {}, outcomes: {}, failures: [], seconds: 0, casesPerSec: 0, maxCaseMs: 0, maxCase: -1, heapBeforeMB: mb(heapBefore), heapAfterMB: 0, maxRssMB: 0, gc: gc !== undefined };
  const t0 = performance.now();
  for (let i = 0; i < cases; i++) {
    const c = nextCase(rng);
    const start = performance.now();
    let outcome: string;
    try {
      if (plant === 'hang' && i === 1500) for (;;);
      outcome = c.run();
    } catch (err) {
      outcome = 'FAILURE';
      if (s.failures.length < 20) s.failures.push({ case: i, kind: c.kind, error: err instanceof Error ? `${err.name}: ${err.message}`.slice(0, 300) : String(err) });
    }
    const ms = performance.now() - start;
    if (ms > s.maxCaseMs) {
      s.maxCaseMs = ms;
      s.maxCase = i;
    }
    s.kinds[c.kind] = (s.kinds[c.kind] ?? 0) + 1;
    s.outcomes[outcome] = (s.outcomes[outcome] ?? 0) + 1;
    s.cases++;
    if (i % 1000 === 999) {
      progress(i + 1);
      s.maxRssMB = Math.max(s.maxRssMB, mb(process.memoryUsage().rss));
    }
  }
  s.seconds = (performance.now() - t0) / 1000;
  s.casesPerSec = Math.round(s.cases / s.seconds);
  s.maxCaseMs = Math.round(s.maxCaseMs * 100) / 100;
  gc?.();
  s.heapAfterMB = mb(process.memoryUsage().heapUsed);
  s.maxRssMB = Math.max(s.maxRssMB, mb(process.memoryUsage().rss));
  s.seconds = Math.round(s.seconds * 10) / 10;
  return s;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [target, seed, cases, plant = 'none'] = process.argv.slice(2);
  if (target !== 'libvirt' && target !== 'xml') throw new Error(`usage: fuzz-runner.ts libvirt|xml SEED CASES [none|throw|hang] (got ${target})`);
  const summary = fuzz(target, Number(seed ?? 1), Number(cases ?? 100_000), (n) => process.stderr.write(`progress ${n}\n`), plant as Plant);
  process.stdout.write(JSON.stringify(summary) + '\n');
}
