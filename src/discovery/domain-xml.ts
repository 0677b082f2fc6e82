// The few facts discovery takes from a domain's XML (DOMAIN_GET_XML_DESC), and the Nova metadata
// inside it, so that one RPC per new or changed domain is enough (Ceilometer makes two:
// DOMAIN_GET_METADATA, then XMLDesc; ceilometer-wire.md §2.2 steps 1–3).
//
// What real libvirt writes, and this reader relies on:
// - the root is <domain> with no namespace; <name>, <uuid> and <os><type arch='…'> are always there
//   for a defined domain (libvirt fills in arch when the definition left it out);
// - the Nova element sits in <metadata>, one element per namespace; its namespace may be declared on
//   the element itself (what Nova sends), as a default namespace, or on <metadata> (libvirt moves it
//   there when the definition declared it on <domain>), so it is found by namespace URI, never by prefix;
// - <memballoon model='…'> appears at most once in <devices>; `<stats period='0'/>` is not written
//   at all, so "virtio without <stats>" and "period 0" are the same XML.

import { XMLSerializer } from '@xmldom/xmldom';
import type { Element } from '@xmldom/xmldom';
import { z } from 'zod';

import type { BalloonDevice } from '../inspect/memory.js';
import { NOVA_NAMESPACES, type NovaInstanceMetadata, quote, readNovaInstance } from './nova-metadata.js';
import { fail, ok, type Result } from './result.js';
import { attr, child, elementChildren, elementName, guarded, parseXml, text } from './xml.js';

export interface DomainFacts {
  /** libvirt's domain name, e.g. instance-00000001 (Ceilometer's OS-EXT-SRV-ATTR:instance_name) */
  name: string;
  /** the domain uuid = Nova's instance uuid */
  uuid: string;
  /** text of <os><type>, e.g. hvm (resource_metadata os_type) */
  osType: string;
  /** <os><type arch>, e.g. x86_64 (resource_metadata architecture) */
  arch: string;
  /** model null: no <memballoon> at all; statsPeriod 0: no <stats period> */
  balloon: BalloonDevice;
  /**
   * The Nova instance metadata found in <metadata>, read as parseNovaMetadata reads it; null when
   * the domain has none (not a Nova guest: Ceilometer logs an ERROR for it every cycle).
   */
  nova: Result<NovaInstanceMetadata> | null;
}

/** Reads a domain XML. A domain without Nova metadata is fine here (`nova: null`). Never throws. */
export function parseDomainXml(xml: string): Result<DomainFacts> {
  return guarded('domain XML', () => {
    const root = parseDomainRoot(xml);
    if (!root.ok) return root;
    const parsed = domainSchema.safeParse(rawDomain(root.value));
    if (!parsed.success) return fail(`domain XML: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    const novaEl = findNovaElement(root.value);
    return ok({ ...parsed.data, nova: novaEl === undefined ? null : readNovaInstance(novaEl) });
  });
}

/**
 * The Nova element of a domain XML as a standalone document (its namespace declared on it), which
 * parseNovaMetadata accepts; null when the domain has no Nova metadata. Never throws.
 */
export function extractNovaFromDomainXml(xml: string): Result<string | null> {
  return guarded('domain XML', () => {
    const root = parseDomainRoot(xml);
    if (!root.ok) return root;
    const el = findNovaElement(root.value);
    return ok(el === undefined ? null : new XMLSerializer().serializeToString(el));
  });
}

function parseDomainRoot(xml: string): Result<Element> {
  const root = parseXml(xml, 'domain XML');
  if (!root.ok) return root;
  if (root.value.localName !== 'domain' || root.value.namespaceURI !== null) {
    return fail(`domain XML: the root element is ${elementName(root.value)}, not libvirt's <domain>`);
  }
  return root;
}

/** The element in <metadata> in Nova's namespace, trying 1.1 then 1.0 as Ceilometer does. */
function findNovaElement(domain: Element): Element | undefined {
  const metadata = child(domain, null, 'metadata');
  if (metadata === undefined) return undefined;
  const elements = elementChildren(metadata);
  for (const ns of NOVA_NAMESPACES) {
    const found = elements.find((e) => e.namespaceURI === ns);
    if (found !== undefined) return found;
  }
  return undefined;
}

function rawDomain(domain: Element) {
  const name = child(domain, null, 'name');
  const uuid = child(domain, null, 'uuid');
  const os = child(domain, null, 'os');
  const type = os === undefined ? undefined : child(os, null, 'type');
  const devices = child(domain, null, 'devices');
  const balloon = devices === undefined ? undefined : child(devices, null, 'memballoon');
  const stats = balloon === undefined ? undefined : child(balloon, null, 'stats');
  return {
    name: name === undefined ? undefined : text(name),
    uuid: uuid === undefined ? undefined : text(uuid),
    os: type === undefined ? undefined : { type: text(type), arch: attr(type, 'arch') },
    balloon: balloon === undefined ? undefined : { model: attr(balloon, 'model'), period: stats === undefined ? undefined : attr(stats, 'period') },
  };
}

const requiredText = (element: string) =>
  z.string({ error: `missing ${element} element` }).refine((s) => s.trim() !== '', { error: `empty ${element} element` });

/** libvirt keeps the period as a non-negative int; anything else did not come from libvirt. */
const statsPeriod = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined) return 0;
    const t = raw.trim();
    if (!/^[0-9]+$/.test(t) || Number(t) > 2 ** 31 - 1) {
      ctx.addIssue({ code: 'custom', message: `<memballoon><stats period> is ${quote(raw)}, not a number of seconds` });
      return z.NEVER;
    }
    return Number(t);
  });

const domainSchema = z
  .object({
    name: requiredText('<name>'),
    uuid: requiredText('<uuid>'),
    // Ceilometer skips a domain without <os><type> and crashes on one without arch.
    os: z.object({ type: z.string(), arch: z.string({ error: 'missing arch attribute on <os><type>' }) }, { error: 'missing <os><type> element' }),
    balloon: z.object({ model: z.string().optional(), period: statsPeriod }).optional(),
  })
  .transform(
    (r): Omit<DomainFacts, 'nova'> => ({
      name: r.name,
      uuid: r.uuid,
      osType: r.os.type,
      arch: r.os.arch,
      balloon:
        r.balloon === undefined
          ? { model: null, statsPeriod: 0 }
          : // libvirt requires the model; should it ever be missing, '' still says "a device, of no known model".
            { model: r.balloon.model ?? '', statsPeriod: r.balloon.period },
    }),
  );
