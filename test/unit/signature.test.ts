import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { isPyMap, pyFloat, pyJsonDumps, type PyDict, type PyMap, type PyValue } from '../../src/samples/pyjson.js';
import { DEFAULT_TELEMETRY_SECRET, computeSignature, verifySignature } from '../../src/samples/signature.js';
import { PY_DECODE, PY_DECODE_UNICODE, Rng, tag } from '../support/python-oracle.js';

// ---- the §5 test vectors -----------------------------------------------------------------------------

const IMAGE = 'bdaf114a-35e9-4163-accd-226d5944bf11';
const RESOURCE = 'a75c2fa5-6c03-45a8-bbf7-b993cfcdec27';

// resource_metadata in the §2.3 insertion order for a libvirt_metadata instance
const VECTOR_METADATA = {
  display_name: 'test.dom.com',
  name: 'instance-00000001',
  instance_id: RESOURCE,
  instance_type: 'm1.tiny',
  host: '63f527eaf5180fb63d1b73fe039a92508a05b475b31397b91ed3c574',
  instance_host: 'compute-1',
  flavor: { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, swap: 0 },
  status: 'active',
  state: 'running',
  task_state: '',
  image: { id: IMAGE },
  image_ref: IMAGE,
  image_ref_url: null,
  architecture: 'x86_64',
  os_type: 'hvm',
  vcpus: 1,
  memory_mb: 512,
  disk_gb: 1,
  ephemeral_gb: 0,
  root_gb: 1,
};

// The Zed 13-key wire dict of §3.2, before message_signature is added
const ZED_VECTOR = {
  source: 'openstack',
  counter_name: 'memory.usage',
  counter_type: 'gauge',
  counter_unit: 'MB',
  counter_volume: pyFloat((4046788 - 3421140) / 1024),
  user_id: 'a1f4684e58bd4c88aefd2ecb0783b497',
  project_id: 'd99c829753f64057bc0f2030da309943',
  resource_id: RESOURCE,
  timestamp: '2024-05-01T12:00:00.123456',
  resource_metadata: VECTOR_METADATA,
  message_id: '6c3a6c52-07d4-11ef-9f0a-525400123456',
  monotonic_time: pyFloat(8812.345678912),
};

// 2023.1+: user_name after user_id, project_name after project_id
const NAMED_VECTOR = {
  source: ZED_VECTOR.source,
  counter_name: ZED_VECTOR.counter_name,
  counter_type: ZED_VECTOR.counter_type,
  counter_unit: ZED_VECTOR.counter_unit,
  counter_volume: ZED_VECTOR.counter_volume,
  user_id: ZED_VECTOR.user_id,
  user_name: null,
  project_id: ZED_VECTOR.project_id,
  project_name: null,
  resource_id: ZED_VECTOR.resource_id,
  timestamp: ZED_VECTOR.timestamp,
  resource_metadata: ZED_VECTOR.resource_metadata,
  message_id: ZED_VECTOR.message_id,
  monotonic_time: ZED_VECTOR.monotonic_time,
};

describe('computeSignature reproduces the §5 test vectors (Zed code, default secret)', () => {
  it('signs the Zed 13-key sample', () => {
    expect(computeSignature(ZED_VECTOR, DEFAULT_TELEMETRY_SECRET)).toBe(
      '942b44468de96574ccc99ffe4df6b24510f8408ec1129ebab7d1487062f93a91',
    );
  });

  it('signs the 2023.1+ sample with user_name and project_name None', () => {
    expect(computeSignature(NAMED_VECTOR, DEFAULT_TELEMETRY_SECRET)).toBe(
      '443b4ba1117a247140a6ec14ae8b93a5122a5821e15dd74bbb962e5ba7382942',
    );
  });

  it('does not depend on key insertion order, only on the sorted keys', () => {
    const reversed = Object.fromEntries(Object.entries(ZED_VECTOR).reverse());
    expect(computeSignature(reversed, DEFAULT_TELEMETRY_SECRET)).toBe(computeSignature(ZED_VECTOR, DEFAULT_TELEMETRY_SECRET));
    expect(computeSignature(new Map(Object.entries(ZED_VECTOR)), DEFAULT_TELEMETRY_SECRET)).toBe(
      '942b44468de96574ccc99ffe4df6b24510f8408ec1129ebab7d1487062f93a91',
    );
  });

  it('verifies once the signature is added, and skips an existing message_signature', () => {
    const signed = { ...ZED_VECTOR, message_signature: computeSignature(ZED_VECTOR, DEFAULT_TELEMETRY_SECRET) };
    expect(computeSignature(signed, DEFAULT_TELEMETRY_SECRET)).toBe(signed.message_signature);
    expect(verifySignature(signed, DEFAULT_TELEMETRY_SECRET)).toBe(true);
    expect(verifySignature(signed, 'another secret')).toBe(false);
    expect(verifySignature({ ...signed, counter_volume: 610 }, DEFAULT_TELEMETRY_SECRET)).toBe(false);
  });
});

describe('computeSignature follows compute_signature / recursive_keypairs (§5)', () => {
  const S = 'k';
  // The pre-image is name + str(value) for each leaf, with no separators.
  const hmac = (secret: string, preimage: string): string => createHmac('sha256', secret).update(preimage).digest('hex');
  it('joins nested names with ":" and contributes nothing for an empty dict', () => {
    expect(computeSignature({ e: {}, a: { c: { d: 'x' }, b: 1 } }, S)).toBe(hmac(S, 'a:b1a:c:dx'));
  });

  it('signs int, float, bool, None and list values as Python str() renders them', () => {
    expect(computeSignature({ v: pyFloat(1024) }, S)).toBe(computeSignature({ v: '1024.0' }, S));
    expect(computeSignature({ v: 1024 }, S)).toBe(computeSignature({ v: '1024' }, S));
    expect(computeSignature({ v: pyFloat(1024) }, S)).not.toBe(computeSignature({ v: 1024 }, S));
    expect(computeSignature({ t: true, n: null }, S)).toBe(computeSignature({ t: 'True', n: 'None' }, S));
    expect(computeSignature({ l: ['a', { rel: 'self', href: 'x' }] }, S)).toBe(
      computeSignature({ l: "[b'a', {b'href': b'x', b'rel': b'self'}]" }, S),
    );
  });

  it('sorts keys per level in code-point order, not JS UTF-16 order', () => {
    // '\ue000' < '\u{10000}' in Python; JS's default sort says the opposite
    expect(computeSignature({ '\u{10000}': 1, '\ue000': 2 }, S)).toBe(hmac(S, '\ue0002\u{10000}1'));
    // per level on the raw key: 'a' and its children come before 'a-', though the joined 'a:z' > 'a-'
    expect(computeSignature({ 'a-': 1, a: { z: 2 }, 'a\u{1F600}': 3, 'a\uffff': 4 }, S)).toBe(
      hmac(S, 'a:z2a-1a\uffff4a\u{1F600}3'),
    );
  });

  it('skips only a top-level message_signature leaf', () => {
    expect(computeSignature({ a: 1, message_signature: 'zz' }, S)).toBe(computeSignature({ a: 1 }, S));
    expect(computeSignature({ a: { message_signature: 'zz' } }, S)).not.toBe(computeSignature({ a: {} }, S));
    expect(computeSignature({ message_signature: { x: 1 } }, S)).toBe(computeSignature({ 'message_signature:x': 1 }, S));
  });

  it('returns an empty signature for an empty secret, which verifies anything', () => {
    expect(computeSignature(ZED_VECTOR, '')).toBe('');
    expect(verifySignature({ message_signature: 'bogus' }, '')).toBe(true);
  });

  it('returns false where Python verify_signature would raise or mismatch', () => {
    expect(verifySignature({ a: 1 }, S)).toBe(false); // no signature: compared with ''
    expect(verifySignature({ a: 1, message_signature: 5 }, S)).toBe(false);
    expect(verifySignature({ a: 1, message_signature: '\u00e9' }, S)).toBe(false);
  });

  it('throws where Python cannot encode to UTF-8 (lone surrogates), naming the key', () => {
    expect(() => computeSignature({ a: { b: '\udc00' } }, S)).toThrow(/value of "a:b" has a lone surrogate U\+DC00/);
    expect(() => computeSignature({ ['\ud800']: 1 }, S)).toThrow(/key "\\ud800" has a lone surrogate/);
    expect(() => computeSignature({ a: 1 }, '\ud800')).toThrow(/the secret has a lone surrogate/);
    // joined, these two halves would make a valid pair; Python encodes name and value separately
    expect(() => computeSignature({ ['k\ud83d']: '\ude00' }, S)).toThrow(/key "k\\ud83d" has a lone surrogate U\+D83D/);
    expect(() => computeSignature({ a: 1.5 }, S)).toThrow(/plain number 1\.5 is not an integer/);
  });
});

// ---- against CPython ---------------------------------------------------------------------------------

// Python re-computes each signature with Zed's publisher/utils.py code, and verifies our JSON output
// after json.loads, as a consumer of ceilopoll's messages would. SIGNATURE_SEED reproduces a failing run.
const SEED = Number(process.env.SIGNATURE_SEED ?? 0x516_2024);


// Zed's decode_unicode / recursive_keypairs / compute_signature / verify_signature, as in §5
const PY_SIGN = String.raw`
import hmac, hashlib


def recursive_keypairs(d, separator=':'):
    for name, value in sorted(d.items()):
        if isinstance(value, dict):
            for subname, subvalue in recursive_keypairs(value, separator):
                yield ('%s%s%s' % (name, separator, subname), subvalue)
        elif isinstance(value, (tuple, list)):
            yield name, decode_unicode(value)
        else:
            yield name, value

def compute_signature(message, secret):
    if not secret:
        return ''
    if isinstance(secret, str):
        secret = secret.encode('utf-8')
    digest_maker = hmac.new(secret, b'', hashlib.sha256)
    for name, value in recursive_keypairs(message):
        if name == 'message_signature':
            continue
        digest_maker.update(str(name).encode('utf-8'))
        digest_maker.update(str(value).encode('utf-8'))
    return digest_maker.hexdigest()

def verify_signature(message, secret):
    if not secret:
        return True
    old_sig = message.get('message_signature', '')
    new_sig = compute_signature(message, secret)
    if isinstance(old_sig, str):
        try:
            old_sig = old_sig.encode('ascii')
        except UnicodeDecodeError:
            return False
    new_sig = new_sig.encode('ascii')
    return hmac.compare_digest(new_sig, old_sig)

out = []
for secret, tagged, ours in json.loads(sys.stdin.buffer.read()):
    try:
        sig = compute_signature(dec(tagged), secret)
    except UnicodeEncodeError:
        sig = None
    out.append([sig, None if ours is None else verify_signature(json.loads(ours), secret)])
sys.stdout.write(json.dumps(out))
`;

// Small key alphabet so siblings share prefixes, ":" and "_" meet, and astral vs U+E000..U+FFFF collide.
const KEY_PARTS = ['a', 'b', 'A', '_', ':', 'id', 'flavor', '9', '10', 'message_signature'].concat(
  ['\u00e9', '\ue000', '\uffff', '\u{10000}', '\u{1F600}'],
);
const STR_CHARS = ['a', 'Z', ' ', "'", '"', '\\', '\n', '\t', '\x00', '\x7f', '\u00e9', '\u20ac', '\uffff', '\u{1F600}'];

function randomKey(rng: Rng): string {
  let k = '';
  for (let n = rng.int(0, 3); n > 0; n--) k += rng.pick(KEY_PARTS);
  return k;
}

function randomStr(rng: Rng, surrogates: boolean): string {
  let s = '';
  for (let n = rng.int(0, 8); n > 0; n--) {
    s += surrogates && rng.chance(0.05) ? rng.pick(['\ud800', '\udfff']) : rng.pick(STR_CHARS);
  }
  return s;
}

const SPECIAL_FLOATS = [0, -0, 1e16, 1e-5, 1.5e-7, NaN, Infinity, -Infinity, 0.1, 8812.345678912, 2 ** 70];

function randomLeaf(rng: Rng, surrogates: boolean): PyValue {
  switch (rng.int(0, 7)) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.chance(0.8) ? rng.int(-1e6, 1e6) : 2n ** BigInt(rng.int(53, 70)) * (rng.chance(0.5) ? -1n : 1n);
    case 3:
      return pyFloat(rng.int(0, 2 ** 31) / 1024);
    case 4:
      return pyFloat(rng.pick(SPECIAL_FLOATS) * (rng.chance(0.5) ? 1 : -1));
    default:
      return randomStr(rng, surrogates);
  }
}

function randomTree(rng: Rng, depth: number, surrogates: boolean): PyValue {
  const r = rng.int(0, 9);
  if (depth <= 0 || r < 5) return randomLeaf(rng, surrogates);
  if (r < 7) return Array.from({ length: rng.int(0, 4) }, () => randomTree(rng, depth - 1, surrogates));
  return randomDict(rng, depth - 1, surrogates);
}

function randomDict(rng: Rng, depth: number, surrogates: boolean): PyDict | PyMap {
  const m = new Map<string, PyValue>();
  for (let n = rng.int(0, 5); n > 0; n--) m.set(randomKey(rng), randomTree(rng, depth, surrogates));
  return rng.chance(0.5) ? m : Object.fromEntries(m);
}

function randomSample(rng: Rng, surrogates: boolean): PyDict | PyMap {
  const uuid = (): string => `${rng.hex(8)}-${rng.hex(4)}-${rng.hex(4)}-${rng.hex(4)}-${rng.hex(12)}`;
  const m = new Map<string, PyValue>([
    ['source', 'openstack'],
    ['counter_name', rng.pick(['memory.usage', 'memory.resident', 'memory.swap.in', 'memory.swap.out'])],
    ['counter_type', rng.pick(['gauge', 'cumulative'])],
    ['counter_unit', 'MB'],
    ['counter_volume', rng.chance(0.9) ? pyFloat(rng.int(0, 2 ** 24) / 1024) : rng.int(0, 4096)],
    ['user_id', rng.hex(32)],
    ['project_id', rng.hex(32)],
    ['resource_id', uuid()],
    ['timestamp', `2026-11-26T14:22:${String(rng.int(10, 59))}.${rng.int(100000, 999999)}`],
    ['resource_metadata', randomDict(rng, 3, surrogates)],
    ['message_id', uuid()],
    ['monotonic_time', rng.chance(0.9) ? pyFloat(rng.int(0, 1e9) / 1e6) : null],
  ]);
  if (rng.chance(0.3)) m.set('message_signature', rng.chance(0.5) ? rng.hex(64) : randomDict(rng, 1, false));
  for (let n = rng.int(0, 3); n > 0; n--) m.set(randomKey(rng), randomTree(rng, 3, surrogates));
  return rng.chance(0.5) ? m : Object.fromEntries(m);
}

const SECRETS = [DEFAULT_TELEMETRY_SECRET, 'k', 's\u00e9cr\u00e8t \u{1F511}', 'x'.repeat(100)];

describe(`computeSignature agrees with Zed's compute_signature in CPython (seed ${SEED})`, () => {
  it('on 2,000 random sample-like dicts: nested dicts, lists of dicts, floats, unicode keys and secrets', () => {
    const rng = new Rng(SEED);
    const cases: { secret: string; msg: PyDict | PyMap; ours: string | null; json: string | null }[] = [];
    for (let i = 0; i < 2000; i++) {
      const surrogates = i % 10 === 0;
      const msg = randomSample(rng, surrogates);
      const secret = rng.pick(SECRETS);
      let ours: string | null;
      try {
        ours = computeSignature(msg, secret);
      } catch (err) {
        expect(String(err)).toMatch(/lone surrogate/);
        ours = null;
      }
      // What goes on the wire: the signed dict, message_signature last (replacing an earlier string one;
      // a dict there was signed leaf by leaf, so replacing it must not verify, and is not tried)
      const earlier = isPyMap(msg) ? msg.get('message_signature') : msg['message_signature'];
      let json: string | null = null;
      if (ours !== null && (earlier === undefined || typeof earlier === 'string')) {
        const entries = (msg instanceof Map ? [...msg] : Object.entries(msg)).filter(([k]) => k !== 'message_signature');
        json = pyJsonDumps(new Map([...entries, ['message_signature', ours]]));
      }
      cases.push({ secret, msg, ours, json });
    }
    const text = JSON.stringify(cases.map((c) => [c.secret, tag(c.msg), c.json])).replace(
      /[\u007f-\uffff]/g,
      (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'),
    );
    const out = execFileSync('python3', ['-c', PY_DECODE + PY_DECODE_UNICODE + PY_SIGN], { input: text, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' });
    const python = JSON.parse(out) as [string | null, boolean | null][];

    const mismatches = cases
      .map((c, i) => ({ i, ours: c.ours, python: python[i]![0], verified: python[i]![1], json: c.json }))
      .filter((r) => r.ours !== r.python || (r.json !== null && r.verified !== true))
      .slice(0, 5);
    expect(mismatches).toEqual([]);
    const thrown = cases.filter((c) => c.ours === null).length;
    expect(thrown).toBeGreaterThan(0); // Python raising UnicodeEncodeError is exercised too
    expect(thrown).toBeLessThan(200);
  });
});
