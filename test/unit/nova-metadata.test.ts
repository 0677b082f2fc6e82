import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { Element } from '@xmldom/xmldom';
import { describe, expect, it } from 'vitest';

import { parseDomainXml } from '../../src/discovery/domain-xml.js';
import { MAX_FLAVOR_INT, NOVA_NAMESPACES, parseNovaMetadata, readNovaInstance, type NovaInstanceMetadata } from '../../src/discovery/nova-metadata.js';
import type { Result } from '../../src/discovery/result.js';
import { MAX_XML_BYTES } from '../../src/discovery/xml.js';
import { reason, value } from '../support/result.js';

// Fixtures (test/fixtures/xml/README.md): what libvirt itself returned for Nova-shaped domains, the
// DOMAIN_GET_METADATA string (namespace stripped) and the dumpxml text (namespaced).
const FIXTURES = fileURLToPath(new URL('../fixtures/xml/', import.meta.url));
const fixture = (name: string): string => readFileSync(FIXTURES + name, 'utf8');

const NOVA_1_1 = 'http://openstack.org/xmlns/libvirt/nova/1.1';
const NOVA_1_0 = 'http://openstack.org/xmlns/libvirt/nova/1.0';

const LAB_METADATA = fixture('zed-lab-1.metadata.xml');
/** The same guest's Nova element as it stands in its dumpxml: `<nova:instance xmlns:nova=…>`. */
const LAB_PREFIXED = /<nova:instance[\s\S]*<\/nova:instance>/.exec(fixture('zed-lab-1.domain.xml'))![0];


/** A stripped-form document with the lab guest's content, parts replaced as a test needs. */
function doc(parts: { name?: string; flavor?: string; owner?: string; root?: string; extra?: string } = {}): string {
  return [
    '<instance>',
    '<package version="26.2.1"/>',
    parts.name ?? '<name>lab-vm-1</name>',
    parts.flavor ??
      '<flavor name="m1.tiny"><memory>128</memory><disk>1</disk><swap>0</swap><ephemeral>0</ephemeral><vcpus>1</vcpus></flavor>',
    parts.owner ??
      '<owner><user uuid="a1b2c3d4-0000-4000-8000-000000000001">admin</user><project uuid="a1b2c3d4-0000-4000-8000-0000000000aa">demo</project></owner>',
    parts.root ?? '<root type="image" uuid="a1b2c3d4-0000-4000-8000-00000000beef"/>',
    parts.extra ?? '',
    '</instance>',
  ].join('');
}

const LAB_VALUE: NovaInstanceMetadata = {
  displayName: 'lab-vm-1',
  flavor: { id: null, name: 'm1.tiny', vcpus: 1, ram: 128, disk: 1, ephemeral: 0, swap: 0, extraSpecs: null },
  userId: 'a1b2c3d4-0000-4000-8000-000000000001',
  userName: 'admin',
  projectId: 'a1b2c3d4-0000-4000-8000-0000000000aa',
  projectName: 'demo',
  imageId: 'a1b2c3d4-0000-4000-8000-00000000beef',
  imageMeta: null,
  namespace: null,
};

describe('what libvirt returns from DOMAIN_GET_METADATA (Nova namespace stripped)', () => {
  it('reads a real lab guest completely', () => {
    expect(parseNovaMetadata(LAB_METADATA)).toEqual({ ok: true, value: LAB_VALUE });
  });

  it('gives the values Ceilometer Zed published for that same guest', () => {
    // memory.usage message of the golden capture: one sample per lab guest
    const body = JSON.parse(readFileSync(new URL('../fixtures/golden/zed-3guests/amqp/0001.body', import.meta.url), 'utf8')) as Record<string, string>;
    const msg = JSON.parse(body['oslo.message']!) as { payload: { samples: Array<Record<string, unknown>> } };
    const sample = msg.payload.samples.find((s) => s.resource_id === 'c0ffee00-0000-4000-8000-000000000001')!;
    const rm = sample.resource_metadata as Record<string, unknown>;
    const v = value(parseNovaMetadata(LAB_METADATA));
    expect(v.displayName).toBe(rm.display_name);
    expect(v.userId).toBe(sample.user_id);
    expect(v.projectId).toBe(sample.project_id);
    expect(v.imageId).toBe((rm.image as { id: string }).id);
    const { id: _zedFallbackId, ...flavor } = rm.flavor as Record<string, unknown>;
    expect({ name: v.flavor.name, vcpus: v.flavor.vcpus, ram: v.flavor.ram, disk: v.flavor.disk, ephemeral: v.flavor.ephemeral, swap: v.flavor.swap }).toEqual(flavor);
  });

  it('reads metadata Nova wrote in the 1.0 namespace the same way', () => {
    const v = value(parseNovaMetadata(fixture('nova-1.0.metadata.xml')));
    expect(v).toMatchObject({ displayName: 'icehouse-vm', userId: '3472c2a6de914fb5b61842bc781ef670', namespace: null });
    expect(v.flavor).toMatchObject({ name: 'm1.small', ram: 2048, disk: 20 });
  });
});

describe('the namespaced element, as it stands in the domain XML', () => {
  it('reads the prefixed form to the same values, and says which namespace it was in', () => {
    expect(LAB_PREFIXED.startsWith('<nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">')).toBe(true);
    expect(parseNovaMetadata(LAB_PREFIXED)).toEqual({ ok: true, value: { ...LAB_VALUE, namespace: NOVA_1_1 } });
  });

  it('reads the 1.0 namespace', () => {
    const v = value(parseNovaMetadata(LAB_PREFIXED.replace(NOVA_1_1, NOVA_1_0)));
    expect(v).toEqual({ ...LAB_VALUE, namespace: NOVA_1_0 });
  });

  it('goes by namespace, not by prefix: a default namespace or any other prefix works', () => {
    const defaultNs = doc().replace('<instance>', `<instance xmlns="${NOVA_1_1}">`);
    expect(value(parseNovaMetadata(defaultNs))).toEqual({ ...LAB_VALUE, namespace: NOVA_1_1 });
    const otherPrefix = LAB_PREFIXED.replaceAll('nova:', 'n:').replace('xmlns:nova=', 'xmlns:n=');
    expect(value(parseNovaMetadata(otherPrefix))).toEqual({ ...LAB_VALUE, namespace: NOVA_1_1 });
  });

  it('tries nothing but the two Nova namespaces, 1.1 first', () => {
    expect(NOVA_NAMESPACES).toEqual([NOVA_1_1, NOVA_1_0]);
  });

  it('ignores children in another namespace, even with Nova names', () => {
    const xml = doc({ name: '<x:name xmlns:x="http://example.org/x">intruder</x:name>' });
    expect(reason(parseNovaMetadata(xml))).toBe('Nova metadata: missing <name> element');
    // and in the prefixed form, unprefixed children are in no namespace, so not Nova's either
    const mixed = LAB_PREFIXED.replace('<nova:name>lab-vm-1</nova:name>', '<name>lab-vm-1</name>');
    expect(reason(parseNovaMetadata(mixed))).toBe('Nova metadata: missing <name> element');
  });

  it('refuses an <instance> of an unknown namespace', () => {
    const xml = LAB_PREFIXED.replace(NOVA_1_1, 'http://openstack.org/xmlns/libvirt/nova/9.9');
    expect(reason(parseNovaMetadata(xml))).toBe(
      'Nova metadata: the root element is <nova:instance> in namespace "http://openstack.org/xmlns/libvirt/nova/9.9", not Nova\'s <instance>',
    );
  });

  it('refuses a root that is not <instance>, with a hint when it is a whole domain XML', () => {
    expect(reason(parseNovaMetadata('<flavor name="m1.tiny"/>'))).toBe("Nova metadata: the root element is <flavor>, not Nova's <instance>");
    expect(reason(parseNovaMetadata(fixture('zed-lab-1.domain.xml')))).toBe(
      "Nova metadata: the root element is <domain>, not Nova's <instance> (that is a domain XML: use parseDomainXml)",
    );
  });
});

describe('flavor', () => {
  it('takes the id attribute Nova ≥ 2025.2 writes; an empty or absent id is null (Ceilometer then asks Nova)', () => {
    const withId = (attrs: string) => doc({ flavor: `<flavor name="m1.tiny"${attrs}><memory>128</memory></flavor>` });
    expect(value(parseNovaMetadata(withId(' id="1"'))).flavor.id).toBe('1');
    expect(value(parseNovaMetadata(withId(' id="eba4213d-3c6c-4b5f-8158-dd0022d71d62"'))).flavor.id).toBe('eba4213d-3c6c-4b5f-8158-dd0022d71d62');
    expect(value(parseNovaMetadata(withId(' id=""'))).flavor.id).toBeNull();
    expect(value(parseNovaMetadata(withId(''))).flavor.id).toBeNull();
  });

  it('counts an absent size element as 0, as Ceilometer\'s _safe_find_int does', () => {
    const f = value(parseNovaMetadata(doc({ flavor: '<flavor name="tiny"/>' }))).flavor;
    expect(f).toEqual({ id: null, name: 'tiny', vcpus: 0, ram: 0, disk: 0, ephemeral: 0, swap: 0, extraSpecs: null });
  });

  it.each([
    [' 128 ', 128],
    ['\n  512\n', 512],
    ['0128', 128],
    ['+5', 5],
    ['-0', 0],
    [String(MAX_FLAVOR_INT), MAX_FLAVOR_INT],
  ])('reads <memory>%j as %j, as Python int() would', (text, expected) => {
    expect(value(parseNovaMetadata(doc({ flavor: `<flavor name="f"><memory>${text}</memory></flavor>` }))).flavor.ram).toBe(expected);
  });

  it.each([
    ['1.5', '<flavor><memory> is "1.5", not an integer'],
    ['abc', '<flavor><memory> is "abc", not an integer'],
    ['', '<flavor><memory> is "", not an integer'],
    ['   ', '<flavor><memory> is "   ", not an integer'],
    ['-1', '<flavor><memory> is "-1", a negative number'],
    ['99999999999999999999', '<flavor><memory> is "99999999999999999999", more than 2147483647'],
    ['2147483648', '<flavor><memory> is "2147483648", more than 2147483647'],
    ['1e3', '<flavor><memory> is "1e3", not an integer'],
    ['0x10', '<flavor><memory> is "0x10", not an integer'],
    ['1_000', '<flavor><memory> is "1_000", not an integer'],
    ['٣', '<flavor><memory> is "٣", not an integer'],
    ['12abc', '<flavor><memory> is "12abc", not an integer'],
  ])('rejects <memory>%j, naming the element and the value', (text, message) => {
    const xml = doc({ flavor: `<flavor name="f"><memory>${text}</memory></flavor>` });
    expect(reason(parseNovaMetadata(xml))).toBe(`Nova metadata: ${message}`);
  });

  it('reports every bad field at once', () => {
    const xml = doc({ flavor: '<flavor name="f"><memory>x</memory><disk>-2</disk><swap>1.0</swap><ephemeral>3</ephemeral><vcpus>9999999999</vcpus></flavor>' });
    expect(reason(parseNovaMetadata(xml))).toBe(
      'Nova metadata: <flavor><vcpus> is "9999999999", more than 2147483647; <flavor><memory> is "x", not an integer; ' +
        '<flavor><disk> is "-2", a negative number; <flavor><swap> is "1.0", not an integer',
    );
  });

  it('shortens a huge bad value in the reason', () => {
    const r = reason(parseNovaMetadata(doc({ flavor: `<flavor name="f"><disk>${'9'.repeat(5000)}x</disk></flavor>` })));
    expect(r.length).toBeLessThan(150);
    expect(r).toContain('(5001 characters)');
  });

  it('reads <extraSpecs> (Nova ≥ 2025.2) in order; empty is [], absent is null', () => {
    const v = value(parseNovaMetadata(fixture('nova-2025.2-bfv.metadata.xml')));
    expect(v.flavor).toEqual({
      id: '2',
      name: 'm1.small',
      vcpus: 1,
      ram: 2048,
      disk: 20,
      ephemeral: 0,
      swap: 0,
      extraSpecs: [
        { name: 'hw_rng:allowed', value: 'true' },
        { name: 'hw:mem_page_size', value: 'small' },
      ],
    });
    const empty = doc({ flavor: '<flavor name="f" id="1"><extraSpecs></extraSpecs></flavor>' });
    expect(value(parseNovaMetadata(empty)).flavor.extraSpecs).toEqual([]);
  });

  it('keeps extra specs as a Python dict would: a repeated name keeps its first place and last value; unnamed ones are dropped', () => {
    const xml = doc({
      flavor:
        '<flavor name="f"><extraSpecs><extraSpec name="a">1</extraSpec><extraSpec>no name</extraSpec>' +
        '<extraSpec name="b">2</extraSpec><extraSpec name="a">3</extraSpec><extraSpec name="__proto__">x</extraSpec></extraSpecs></flavor>',
    });
    expect(value(parseNovaMetadata(xml)).flavor.extraSpecs).toEqual([
      { name: 'a', value: '3' },
      { name: 'b', value: '2' },
      { name: '__proto__', value: 'x' },
    ]);
  });

  it('needs the flavor and its name', () => {
    expect(reason(parseNovaMetadata(doc({ flavor: '' })))).toBe('Nova metadata: missing <flavor> element');
    expect(reason(parseNovaMetadata(doc({ flavor: '<flavor><memory>1</memory></flavor>' })))).toBe('Nova metadata: missing name attribute on <flavor>');
  });

  it('keeps an empty flavor name, as Ceilometer does', () => {
    expect(value(parseNovaMetadata(doc({ flavor: '<flavor name=""/>' }))).flavor.name).toBe('');
  });
});

describe('owner', () => {
  it.each([
    ['no <owner>', '', 'missing <owner><user> element; missing <owner><project> element'],
    ['no <user>', '<owner><project uuid="p">demo</project></owner>', 'missing <owner><user> element'],
    ['no <project>', '<owner><user uuid="u">admin</user></owner>', 'missing <owner><project> element'],
    ['no user uuid', '<owner><user>admin</user><project uuid="p">demo</project></owner>', 'missing uuid attribute on <owner><user>'],
    ['no project uuid', '<owner><user uuid="u">admin</user><project>demo</project></owner>', 'missing uuid attribute on <owner><project>'],
    ['an empty user uuid', '<owner><user uuid="">admin</user><project uuid="p">demo</project></owner>', 'empty uuid attribute on <owner><user>'],
    ['a blank project uuid', '<owner><user uuid="u">admin</user><project uuid="  ">demo</project></owner>', 'empty uuid attribute on <owner><project>'],
  ])('rejects %s, saying what is missing', (_what, owner, message) => {
    expect(reason(parseNovaMetadata(doc({ owner })))).toBe(`Nova metadata: ${message}`);
  });

  it('reads the names Nova writes as text (Ceilometer ignores them); empty text is null', () => {
    const v = value(parseNovaMetadata(doc({ owner: '<owner><user uuid="u"></user><project uuid="p">demo</project></owner>' })));
    expect([v.userId, v.userName, v.projectId, v.projectName]).toEqual(['u', null, 'p', 'demo']);
  });
});

describe('image', () => {
  it('is the uuid of <root type="image">', () => {
    expect(value(parseNovaMetadata(LAB_METADATA)).imageId).toBe('a1b2c3d4-0000-4000-8000-00000000beef');
  });

  it('is null for boot-from-volume as Nova before 2024.2 writes it: no <root> at all', () => {
    expect(value(parseNovaMetadata(doc({ root: '' }))).imageId).toBeNull();
  });

  it('is null for boot-from-volume as Nova since 2024.2 writes it: <root type="volume" uuid="">', () => {
    const v = value(parseNovaMetadata(fixture('nova-2025.2-bfv.metadata.xml')));
    expect(v.imageId).toBeNull();
    expect(v.imageMeta).toEqual({
      baseImageRef: '',
      containerFormat: 'bare',
      diskFormat: 'raw',
      minDisk: '1',
      minRam: '0',
      properties: [
        { name: 'os_distro', value: 'debian' },
        { name: 'hw_qemu_guest_agent', value: 'yes' },
      ],
    });
  });

  it('takes the first <root> of type image, wherever it is', () => {
    const root = '<root type="volume" uuid="v"/><root type="image" uuid="i1"/><root type="image" uuid="i2"/>';
    expect(value(parseNovaMetadata(doc({ root }))).imageId).toBe('i1');
  });

  it('is null when <root type="image"> has no usable uuid (Ceilometer would crash the cycle)', () => {
    expect(value(parseNovaMetadata(doc({ root: '<root type="image"/>' }))).imageId).toBeNull();
    expect(value(parseNovaMetadata(doc({ root: '<root type="image" uuid=""/>' }))).imageId).toBeNull();
  });

  it('has no image meta before Nova 2025.2, and an <image> without children gives nulls and no properties', () => {
    expect(value(parseNovaMetadata(LAB_METADATA)).imageMeta).toBeNull();
    expect(value(parseNovaMetadata(doc({ extra: '<image/>' }))).imageMeta).toEqual({
      baseImageRef: null,
      containerFormat: null,
      diskFormat: null,
      minDisk: null,
      minRam: null,
      properties: [],
    });
  });
});

describe('display name', () => {
  it.each([
    ['a C0 control character written raw', 'a\u0001b', 'a\u0001b'],
    ['a C0 control character as a reference', 'a&#1;b&#x1F;c', 'a\u0001b\u001fc'],
    ['DEL and C1 controls', 'x\u007fy\u0085z', 'x\u007fy\u0085z'],
    ['a LINE SEPARATOR, which XML 1.0 leaves alone', 'a\u2028b', 'a\u2028b'],
    ['NUL as a reference', 'a&#0;b', 'a\u0000b'],
    ['emoji outside the BMP', '🦄 vm 🚀', '🦄 vm 🚀'],
    ['right-to-left text with an override mark', 'خادم-١ \u202Eevil\u202C', 'خادم-١ \u202Eevil\u202C'],
    ['Hebrew', 'שרת-ווב', 'שרת-ווב'],
    ['a replacement character', 'bad\uFFFDbyte', 'bad\uFFFDbyte'],
    ['a lone surrogate reference', 'x&#xD800;y', 'x\uD800y'],
    ['XML escapes', 'R&amp;D &lt;db&gt; &quot;q&quot; &apos;a&apos;', 'R&D <db> "q" \'a\''],
    ['CDATA', '<![CDATA[<not a tag> & more]]>', '<not a tag> & more'],
    ['surrounding and inner whitespace', '  two  spaces\t', '  two  spaces\t'],
    ['a CRLF, which XML turns into LF', 'a\r\nb', 'a\nb'],
    ['nothing', '', ''],
  ])('keeps %s verbatim', (_what, xmlText, expected) => {
    expect(value(parseNovaMetadata(doc({ name: `<name>${xmlText}</name>` }))).displayName).toBe(expected);
  });

  it('is empty for <name/>, where Ceilometer would publish None (which Gnocchi refuses)', () => {
    expect(value(parseNovaMetadata(doc({ name: '<name/>' }))).displayName).toBe('');
  });

  it('is required', () => {
    expect(reason(parseNovaMetadata(doc({ name: '' })))).toBe('Nova metadata: missing <name> element');
  });

  it('is the first <name> when there are several, as ElementTree find() gives', () => {
    expect(value(parseNovaMetadata(doc({ name: '<name>first</name><name>second</name>' }))).displayName).toBe('first');
  });

  it('ignores comments and processing instructions in the text', () => {
    expect(value(parseNovaMetadata(doc({ name: '<name>a<!-- c -->b<?pi x?>c</name>' }))).displayName).toBe('abc');
  });
});

describe('input that is not Nova metadata: a reason, never an exception', () => {
  it.each([
    ['an empty string', '', 'Nova metadata is empty'],
    ['only whitespace', ' \n\t', 'Nova metadata is empty'],
    ['plain text', 'hello', 'Nova metadata is not well-formed XML: missing root element'],
    ['a lone declaration', '<?xml version="1.0"?>', 'Nova metadata is not well-formed XML: missing root element'],
    ['two roots', '<instance/><instance/>', 'Nova metadata is not well-formed XML:'],
    ['an unbound prefix', '<nova:instance><nova:name>x</nova:name></nova:instance>', 'Nova metadata is not well-formed XML:'],
    ['mismatched tags', '<instance><name>x</flavor></instance>', 'Nova metadata is not well-formed XML: Opening and ending tag mismatch'],
    ['a duplicated attribute', '<instance><flavor name="a" name="b"/></instance>', 'Nova metadata is not well-formed XML: Attribute name redefined'],
    ['an unquoted attribute', '<instance><flavor name=a/></instance>', 'Nova metadata is not well-formed XML:'],
    ['an unknown entity', '<instance><name>&nbsp;</name></instance>', 'Nova metadata is not well-formed XML: entity not found:&nbsp;'],
    ['text after the root', `${LAB_METADATA}trailing`, 'Nova metadata is not well-formed XML: Extra content at the end of the document'],
  ])('%s', (_what, xml, prefix) => {
    const r = reason(parseNovaMetadata(xml));
    expect(r.startsWith(prefix)).toBe(true);
    expect(r).not.toContain('\n');
  });

  it('rejects every truncation of a real document, saying where it ends', () => {
    const cut = LAB_METADATA.trimEnd();
    for (let n = 1; n < cut.length; n++) {
      const r = parseNovaMetadata(cut.slice(0, n));
      expect(r.ok, `cut at ${n}`).toBe(false);
      expect(r.ok ? '' : r.reason, `cut at ${n}`).toMatch(/^Nova metadata (is not well-formed XML: .+|is empty)$/);
    }
    expect(reason(parseNovaMetadata(cut.slice(0, 200)))).toMatch(/^Nova metadata is not well-formed XML: .* \(line \d+, column \d+\)$/);
  });

  it('refuses a document over the size cap before parsing it', () => {
    const big = doc({ name: `<name>${'x'.repeat(2 * 1024 * 1024)}</name>` });
    const started = performance.now();
    expect(reason(parseNovaMetadata(big))).toBe(`Nova metadata is ${Buffer.byteLength(big)} bytes, more than the ${MAX_XML_BYTES} accepted`);
    expect(performance.now() - started).toBeLessThan(100);
    // the cap counts UTF-8 bytes, not UTF-16 units: 400 000 × 3 bytes is over it
    expect(reason(parseNovaMetadata(doc({ name: `<name>${'€'.repeat(400_000)}</name>` })))).toMatch(/more than the 1048576 accepted$/);
  });

  it('accepts a document just under the cap', () => {
    const name = 'n'.repeat(MAX_XML_BYTES - 1000);
    expect(value(parseNovaMetadata(doc({ name: `<name>${name}</name>` }))).displayName).toBe(name);
  });

  it('survives deep nesting: ignored where it is junk, a short reason where it is unclosed', () => {
    const depth = 20_000;
    const junk = `${'<junk>'.repeat(depth)}${'</junk>'.repeat(depth)}`;
    expect(value(parseNovaMetadata(doc({ extra: junk })))).toEqual(LAB_VALUE);
    const unclosed = `<instance>${'<a>'.repeat(depth)}`;
    const r = reason(parseNovaMetadata(unclosed));
    expect(r).toMatch(/^Nova metadata is not well-formed XML: unclosed xml tag\(s\): instance, a, a, /);
    expect(r.length).toBeLessThan(300);
  });

  it('does not expand a billion-laughs entity bomb', () => {
    const lol = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) lol.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
    const bomb = `<?xml version="1.0"?>\n<!DOCTYPE instance [\n${lol.join('\n')}\n]>\n${doc({ name: '<name>&lol9;</name>' })}`;
    const started = performance.now();
    expect(reason(parseNovaMetadata(bomb))).toMatch(/^Nova metadata is not well-formed XML: entity not found:&lol9;/);
    expect(performance.now() - started).toBeLessThan(200);
  });

  it('does not resolve an external entity', () => {
    const xxe = `<!DOCTYPE instance [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>${doc({ name: '<name>&xxe;</name>' })}`;
    const r = reason(parseNovaMetadata(xxe));
    expect(r).toMatch(/^Nova metadata is not well-formed XML: entity not found:&xxe;/);
    expect(r).not.toContain('root:');
  });

  it('does not use an internal entity either, and refuses any DOCTYPE', () => {
    const internal = `<!DOCTYPE instance [<!ENTITY n "EXPANDED">]>${doc({ name: '<name>&n;</name>' })}`;
    expect(reason(parseNovaMetadata(internal))).toMatch(/entity not found:&n;/);
    const unused = `<!DOCTYPE instance [<!ENTITY n "x">]>${doc()}`;
    expect(reason(parseNovaMetadata(unused))).toBe('Nova metadata has a DOCTYPE (<!DOCTYPE instance>), which libvirt never writes');
  });

  it('turns an exception from a bug of ours into a reason that says so', () => {
    const exploding = {
      get namespaceURI(): string {
        throw new TypeError('boom');
      },
    } as unknown as Element;
    expect(readNovaInstance(exploding)).toEqual({ ok: false, reason: 'Nova metadata could not be read (a ceilopoll bug, please report it): boom' });
  });

  it('answers a caller that passes no string at all', () => {
    expect(reason(parseNovaMetadata(null as unknown as string))).toBe('Nova metadata is not a string but null');
    expect(reason(parseNovaMetadata(undefined as unknown as string))).toBe('Nova metadata is not a string but undefined');
    expect(reason(parseNovaMetadata(42 as unknown as string))).toBe('Nova metadata is not a string but number');
  });
});

// ---------------------------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so a failing mutation can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYNTAX = Buffer.from('<>&;"\'/=!?[]-#x0 \n\t:');

/** 1–4 byte-level edits of the UTF-8 bytes: flip a byte, truncate, duplicate or drop a fragment. */
function mutate(src: Buffer, rnd: () => number): Buffer {
  const int = (n: number) => Math.floor(rnd() * n);
  let b = Buffer.from(src);
  for (let k = 1 + int(4); k > 0 && b.length > 0; k--) {
    const op = int(4);
    if (op === 0) b[int(b.length)] = rnd() < 0.5 ? SYNTAX[int(SYNTAX.length)]! : int(256);
    else if (op === 1) b = b.subarray(0, int(b.length));
    else if (op === 2) {
      const from = int(b.length);
      const at = int(b.length);
      b = Buffer.concat([b.subarray(0, at), b.subarray(from, from + int(64)), b.subarray(at)]);
    } else {
      const from = int(b.length);
      b = Buffer.concat([b.subarray(0, from), b.subarray(from + int(32))]);
    }
  }
  return b;
}

/** What is wrong with a Result, or null: a value, or a non-empty one-line reason. */
function malformed(r: Result<unknown>): string | null {
  if (r.ok === true) return null;
  if (r.ok !== false) return 'ok is not a boolean';
  return typeof r.reason === 'string' && r.reason.length > 0 && !/[\r\n]/.test(r.reason) ? null : `bad reason ${JSON.stringify(r.reason)}`;
}

describe('random mutations of a real metadata document', () => {
  it('never throw, always give a value or a one-line reason (20 000 mutations, seed 20261126)', () => {
    const rnd = prng(20261126);
    const original = Buffer.from(LAB_METADATA, 'utf8');
    const problems: string[] = [];
    let values = 0;
    // plain checks in the loop, one expect at the end: expect() per iteration would double the run time
    for (let i = 0; i < 20_000; i++) {
      // bytes → string as the libvirt client decodes remote_string: invalid UTF-8 becomes U+FFFD
      const text = mutate(original, rnd).toString('utf8');
      let r: Result<NovaInstanceMetadata>;
      if (i % 2 === 0) {
        r = parseNovaMetadata(text);
      } else {
        // the same mutated element inside a domain XML, as the agent reads it
        const nova = text.replace('<instance>', `<instance xmlns="${NOVA_1_1}">`);
        const d = parseDomainXml(
          `<domain type='kvm'><name>instance-00000001</name><uuid>c0ffee00-0000-4000-8000-000000000001</uuid><metadata>${nova}</metadata>` +
            "<os><type arch='x86_64'>hvm</type></os><devices><memballoon model='virtio'><stats period='10'/></memballoon></devices></domain>",
        );
        r = !d.ok ? d : (d.value.nova ?? { ok: false, reason: 'no Nova element' });
      }
      const problem = malformed(r);
      if (problem !== null) problems.push(`#${i} ${problem}: ${JSON.stringify(text)}`);
      if (r.ok) {
        values++;
        const f = r.value.flavor;
        for (const n of [f.vcpus, f.ram, f.disk, f.ephemeral, f.swap]) {
          if (!Number.isSafeInteger(n) || n < 0 || n > MAX_FLAVOR_INT) problems.push(`#${i} flavor size ${n}: ${JSON.stringify(text)}`);
        }
      }
    }
    expect(problems.slice(0, 5)).toEqual([]);
    // enough mutations leave the document readable for the value path to be exercised too
    expect(values).toBeGreaterThan(500);
  });
});
