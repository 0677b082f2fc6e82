import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { type DomainFacts, extractNovaFromDomainXml, parseDomainXml } from '../../src/discovery/domain-xml.js';
import { parseNovaMetadata } from '../../src/discovery/nova-metadata.js';
import { MAX_XML_BYTES } from '../../src/discovery/xml.js';
import { reason, value } from '../support/result.js';

// Fixtures (test/fixtures/xml/README.md): dumpxml output of real libvirt — the qemu lab guest the
// golden capture was taken from, and test-driver domains shaped like what Nova writes.
const FIXTURES = fileURLToPath(new URL('../fixtures/xml/', import.meta.url));
const fixture = (name: string): string => readFileSync(FIXTURES + name, 'utf8');

const NOVA_1_1 = 'http://openstack.org/xmlns/libvirt/nova/1.1';
const NOVA_1_0 = 'http://openstack.org/xmlns/libvirt/nova/1.0';

const LAB_DOMAIN = fixture('zed-lab-1.domain.xml');


/** The Nova metadata of a domain, which must be there and readable. */
function nova(facts: DomainFacts) {
  expect(facts.nova).not.toBeNull();
  return value(facts.nova!);
}

/** A small domain XML in libvirt's shape, parts replaced as a test needs. */
function domain(parts: { metadata?: string; os?: string; devices?: string; head?: string } = {}): string {
  return [
    "<domain type='kvm'>",
    parts.head ?? '<name>instance-00000001</name><uuid>c0ffee00-0000-4000-8000-000000000001</uuid>',
    parts.metadata ?? '',
    parts.os ?? "<os><type arch='x86_64' machine='pc'>hvm</type></os>",
    parts.devices ?? "<devices><memballoon model='virtio'><stats period='10'/></memballoon></devices>",
    '</domain>',
  ].join('');
}

describe('a real domain XML (qemu guest, libvirt 9.0.0)', () => {
  it('gives the domain facts Ceilometer takes from it', () => {
    const facts = value(parseDomainXml(LAB_DOMAIN));
    expect({ ...facts, nova: undefined }).toEqual({
      name: 'instance-00000001',
      uuid: 'c0ffee00-0000-4000-8000-000000000001',
      osType: 'hvm',
      arch: 'x86_64',
      balloon: { model: 'virtio', statsPeriod: 10 },
      nova: undefined,
    });
  });

  it('reads the Nova metadata in it exactly as DOMAIN_GET_METADATA gives it, plus the namespace', () => {
    const facts = value(parseDomainXml(LAB_DOMAIN));
    const fromMetadataCall = value(parseNovaMetadata(fixture('zed-lab-1.metadata.xml')));
    expect(nova(facts)).toEqual({ ...fromMetadataCall, namespace: NOVA_1_1 });
  });

  it('reads Nova 1.0 metadata', () => {
    const facts = value(parseDomainXml(fixture('nova-1.0.domain.xml')));
    expect(nova(facts)).toEqual({ ...value(parseNovaMetadata(fixture('nova-1.0.metadata.xml'))), namespace: NOVA_1_0 });
  });

  it('reads Nova 2025.2 metadata of a boot-from-volume guest on another architecture', () => {
    const facts = value(parseDomainXml(fixture('nova-2025.2-bfv.domain.xml')));
    expect(facts.arch).toBe('aarch64');
    expect(nova(facts)).toEqual({ ...value(parseNovaMetadata(fixture('nova-2025.2-bfv.metadata.xml'))), namespace: NOVA_1_1 });
    expect(nova(facts).imageId).toBeNull();
    expect(nova(facts).flavor.id).toBe('2');
  });
});

describe('balloon facts', () => {
  it('virtio with <stats period>: the period', () => {
    expect(value(parseDomainXml(LAB_DOMAIN)).balloon).toEqual({ model: 'virtio', statsPeriod: 10 });
  });

  it('virtio without <stats>: period 0 (libvirt does not even write period 0)', () => {
    expect(value(parseDomainXml(fixture('nova-2025.2-bfv.domain.xml'))).balloon).toEqual({ model: 'virtio', statsPeriod: 0 });
    // nova-1.0.domain.xml was defined with <stats period='0'/>; libvirt wrote no <stats> back
    expect(fixture('nova-1.0.domain.xml')).not.toContain('<stats');
    expect(value(parseDomainXml(fixture('nova-1.0.domain.xml'))).balloon).toEqual({ model: 'virtio', statsPeriod: 0 });
    expect(value(parseDomainXml(domain({ devices: "<devices><memballoon model='virtio'><stats period='0'/></memballoon></devices>" }))).balloon).toEqual({
      model: 'virtio',
      statsPeriod: 0,
    });
  });

  it("model='none'", () => {
    expect(value(parseDomainXml(fixture('testdrv-balloon-none.domain.xml'))).balloon).toEqual({ model: 'none', statsPeriod: 0 });
  });

  it('no <memballoon> at all: model null', () => {
    expect(value(parseDomainXml(fixture('ns-on-metadata.domain.xml'))).balloon).toEqual({ model: null, statsPeriod: 0 });
    expect(value(parseDomainXml(domain({ devices: '' }))).balloon).toEqual({ model: null, statsPeriod: 0 });
  });

  it('another model is passed on as written; a missing one is ""', () => {
    expect(value(parseDomainXml(domain({ devices: "<devices><memballoon model='xen'/></devices>" }))).balloon).toEqual({ model: 'xen', statsPeriod: 0 });
    expect(value(parseDomainXml(domain({ devices: '<devices><memballoon/></devices>' }))).balloon).toEqual({ model: '', statsPeriod: 0 });
  });

  it.each(['abc', '-5', '1.5', '', '99999999999'])('rejects <stats period=%j>, which libvirt would never write', (period) => {
    const xml = domain({ devices: `<devices><memballoon model='virtio'><stats period='${period}'/></memballoon></devices>` });
    expect(reason(parseDomainXml(xml))).toBe(`domain XML: <memballoon><stats period> is ${JSON.stringify(period)}, not a number of seconds`);
  });

  it('a <stats> without period counts as period 0', () => {
    expect(value(parseDomainXml(domain({ devices: "<devices><memballoon model='virtio'><stats/></memballoon></devices>" }))).balloon.statsPeriod).toBe(0);
  });
});

describe('finding the Nova element in <metadata>', () => {
  it('finds it when libvirt moved the namespace declaration up to <metadata>', () => {
    const xml = fixture('ns-on-metadata.domain.xml');
    expect(xml).toContain('<metadata xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">\n    <nova:instance>');
    expect(nova(value(parseDomainXml(xml)))).toMatchObject({ displayName: 'ns declared on domain', namespace: NOVA_1_1 });
  });

  it('finds it by namespace under a default namespace, past another namespace\'s <instance>', () => {
    const xml = fixture('default-ns.domain.xml');
    expect(xml).toContain('<other:instance xmlns:other="http://example.org/other/1">');
    expect(nova(value(parseDomainXml(xml)))).toMatchObject({ displayName: 'R&D <db> ☺', namespace: NOVA_1_1, userName: 'admin' });
  });

  it('prefers 1.1 over 1.0 when both are there, as Ceilometer tries them', () => {
    const v10 = `<n0:instance xmlns:n0="${NOVA_1_0}"><n0:name>old</n0:name></n0:instance>`;
    const v11 = /<nova:instance[\s\S]*<\/nova:instance>/.exec(LAB_DOMAIN)![0];
    const facts = value(parseDomainXml(domain({ metadata: `<metadata>${v10}${v11}</metadata>` })));
    expect(nova(facts)).toMatchObject({ displayName: 'lab-vm-1', namespace: NOVA_1_1 });
  });

  it('is null for a domain Nova did not define: no <metadata>, or none of Nova\'s', () => {
    expect(value(parseDomainXml(domain())).nova).toBeNull();
    expect(value(parseDomainXml(domain({ metadata: '<metadata/>' }))).nova).toBeNull();
    const foreign = '<metadata><app:instance xmlns:app="http://example.org/app/1"><app:name>x</app:name></app:instance></metadata>';
    expect(value(parseDomainXml(domain({ metadata: foreign }))).nova).toBeNull();
  });

  it('only looks at direct children of the domain\'s own <metadata>', () => {
    const nested = `<metadata><wrapper><instance xmlns="${NOVA_1_1}"><name>deep</name></instance></wrapper></metadata>`;
    expect(value(parseDomainXml(domain({ metadata: nested }))).nova).toBeNull();
  });

  it('keeps the domain facts when the Nova element is broken, with the reason for it', () => {
    const broken = `<metadata><nova:instance xmlns:nova="${NOVA_1_1}"><nova:name>x</nova:name></nova:instance></metadata>`;
    const facts = value(parseDomainXml(domain({ metadata: broken })));
    expect(facts.name).toBe('instance-00000001');
    expect(facts.nova).toEqual({
      ok: false,
      reason: 'Nova metadata: missing <flavor> element; missing <owner><user> element; missing <owner><project> element',
    });
  });

  it('reports an element in Nova\'s namespace that is not <instance>', () => {
    const odd = `<metadata><nova:server xmlns:nova="${NOVA_1_1}"/></metadata>`;
    expect(value(parseDomainXml(domain({ metadata: odd }))).nova).toEqual({
      ok: false,
      reason: `Nova metadata: the root element is <nova:server> in namespace "${NOVA_1_1}", not Nova's <instance>`,
    });
  });
});

describe('extractNovaFromDomainXml', () => {
  it('gives the Nova element as a standalone document that parseNovaMetadata reads to the same value', () => {
    for (const name of ['zed-lab-1', 'nova-1.0', 'nova-2025.2-bfv', 'ns-on-metadata', 'default-ns', 'testdrv-balloon-none']) {
      const xml = fixture(`${name}.domain.xml`);
      const extracted = value(extractNovaFromDomainXml(xml));
      expect(extracted, name).not.toBeNull();
      expect(parseNovaMetadata(extracted!), name).toEqual(value(parseDomainXml(xml)).nova);
    }
  });

  it('declares the namespace on the element even when libvirt declared it on <metadata>', () => {
    const extracted = value(extractNovaFromDomainXml(fixture('ns-on-metadata.domain.xml')))!;
    expect(extracted.startsWith(`<nova:instance xmlns:nova="${NOVA_1_1}">`)).toBe(true);
  });

  it('is null without Nova metadata, and a reason for a document that is not a domain XML', () => {
    expect(extractNovaFromDomainXml(domain())).toEqual({ ok: true, value: null });
    expect(reason(extractNovaFromDomainXml(fixture('zed-lab-1.metadata.xml')))).toBe("domain XML: the root element is <instance>, not libvirt's <domain>");
  });
});

describe('what Ceilometer skips or crashes on: a reason for this domain', () => {
  it('no <os><type> (Ceilometer skips the domain)', () => {
    expect(reason(parseDomainXml(domain({ os: '' })))).toBe('domain XML: missing <os><type> element');
    expect(reason(parseDomainXml(domain({ os: '<os><boot dev="hd"/></os>' })))).toBe('domain XML: missing <os><type> element');
  });

  it('no arch attribute (Ceilometer aborts the whole discovery with a KeyError)', () => {
    expect(reason(parseDomainXml(domain({ os: '<os><type>hvm</type></os>' })))).toBe('domain XML: missing arch attribute on <os><type>');
  });

  it('no name or uuid', () => {
    expect(reason(parseDomainXml(domain({ head: '' })))).toBe('domain XML: missing <name> element; missing <uuid> element');
    expect(reason(parseDomainXml(domain({ head: '<name> </name><uuid>u</uuid>' })))).toBe('domain XML: empty <name> element');
  });

  it('keeps an empty os type as written', () => {
    expect(value(parseDomainXml(domain({ os: "<os><type arch='x86_64'></type></os>" }))).osType).toBe('');
  });

  it('a root that is not libvirt\'s <domain>', () => {
    expect(reason(parseDomainXml('<node><domain/></node>'))).toBe("domain XML: the root element is <node>, not libvirt's <domain>");
    expect(reason(parseDomainXml('<domain xmlns="http://example.org/d"/>'))).toBe(
      'domain XML: the root element is <domain> in namespace "http://example.org/d", not libvirt\'s <domain>',
    );
  });
});

describe('input that is not a domain XML: a reason, never an exception', () => {
  it.each([
    ['an empty string', '', 'domain XML is empty'],
    ['plain text', 'not xml', 'domain XML is not well-formed XML: missing root element'],
    ['a real document cut before <os>', LAB_DOMAIN.slice(0, LAB_DOMAIN.indexOf('<os>')), 'domain XML is not well-formed XML: unclosed xml tag(s): domain'],
    ['a real document cut in an end tag', LAB_DOMAIN.slice(0, LAB_DOMAIN.indexOf('</sysinfo>') + 8), 'domain XML is not well-formed XML: end tag name contains invalid characters: "sysinf"'],
    ['an unbound prefix in the metadata', domain({ metadata: '<metadata><nova:instance/></metadata>' }), 'domain XML is not well-formed XML:'],
  ])('%s', (_what, xml, prefix) => {
    const r = reason(parseDomainXml(xml));
    expect(r.startsWith(prefix)).toBe(true);
    expect(r).not.toMatch(/[\r\n]/);
  });

  it('rejects every truncation of a real document', () => {
    const cut = LAB_DOMAIN.trimEnd();
    for (let n = 1; n < cut.length; n += 7) {
      const r = parseDomainXml(cut.slice(0, n));
      expect(r.ok ? '' : r.reason, `cut at ${n}`).toMatch(/^domain XML (is not well-formed XML: .+|is empty)$/);
    }
  });

  it('refuses a 2 MiB document before parsing it', () => {
    const big = domain({ metadata: `<metadata>${'<x/>'.repeat(512 * 1024)}</metadata>` });
    expect(Buffer.byteLength(big)).toBeGreaterThan(2 * 1024 * 1024);
    const started = performance.now();
    expect(reason(parseDomainXml(big))).toBe(`domain XML is ${Buffer.byteLength(big)} bytes, more than the ${MAX_XML_BYTES} accepted`);
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('survives deeply nested junk', () => {
    const depth = 20_000;
    const junk = `<metadata><j:junk xmlns:j="urn:junk">${'<j:a>'.repeat(depth)}${'</j:a>'.repeat(depth)}</j:junk></metadata>`;
    expect(value(parseDomainXml(domain({ metadata: junk })))).toMatchObject({ name: 'instance-00000001', nova: null });
  });

  it('does not expand entities', () => {
    const lol = ['<!ENTITY lol "lol">'];
    for (let i = 1; i <= 9; i++) lol.push(`<!ENTITY lol${i} "${`&lol${i === 1 ? '' : i - 1};`.repeat(10)}">`);
    const bomb = `<!DOCTYPE domain [${lol.join('')}]>${domain({ head: '<name>&lol9;</name><uuid>u</uuid>' })}`;
    expect(reason(parseDomainXml(bomb))).toMatch(/^domain XML is not well-formed XML: entity not found:&lol9;/);
    const xxe = `<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/hostname">]>${domain({ head: '<name>&x;</name><uuid>u</uuid>' })}`;
    expect(reason(parseDomainXml(xxe))).toMatch(/^domain XML is not well-formed XML: entity not found:&x;/);
  });
});
