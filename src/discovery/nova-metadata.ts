// Nova's instance metadata, the element nova-compute writes into every guest's <metadata>
// (nova/virt/libvirt/config.py, LibvirtConfigGuestMetaNova*). We read what Ceilometer reads
// (ceilometer-wire.md §2.2 steps 4–5): the display name, the flavor, the owner and the image.
//
// It arrives in two shapes, and both are accepted:
// - DOMAIN_GET_METADATA returns it with Nova's namespace removed: `<instance><name>…`;
// - the domain XML (DOMAIN_GET_XML_DESC) has it namespaced: `<nova:instance xmlns:nova="…/nova/1.1">`,
//   or with a default namespace, or with the declaration on an ancestor (see domain-xml.ts).
// Children count only in <instance>'s own namespace, whatever prefix spells it.
//
// Where Ceilometer would crash the whole discovery cycle (a KeyError or ValueError), or skip the
// domain (an AttributeError), we reject this one domain with a reason. What is only enrichment
// (image, extra specs) is read leniently: a malformed part is dropped, the domain is kept.

import type { Element } from '@xmldom/xmldom';
import { z } from 'zod';

import { fail, ok, type Result } from './result.js';
import { attr, child, children, elementName, guarded, parseXml, text } from './xml.js';

export type { Result } from './result.js';

/** The namespaces Nova has written its metadata in, in the order Ceilometer tries them. */
export const NOVA_NAMESPACES = [
  'http://openstack.org/xmlns/libvirt/nova/1.1',
  'http://openstack.org/xmlns/libvirt/nova/1.0',
] as const;

export interface NovaExtraSpec {
  name: string;
  value: string;
}

export interface NovaFlavor {
  /** `<flavor id>`, written by Nova ≥ 2025.2; null when absent or empty (Ceilometer then asks Nova) */
  id: string | null;
  name: string;
  vcpus: number;
  /** MiB */
  ram: number;
  /** GiB */
  disk: number;
  /** GiB */
  ephemeral: number;
  /** MiB */
  swap: number;
  /** `<flavor><extraSpecs>` (Nova ≥ 2025.2), in document order; null when Nova did not write the element */
  extraSpecs: NovaExtraSpec[] | null;
}

/** `<image>` (Nova ≥ 2025.2): the image properties Ceilometer ≥ 2025.2 publishes as `image_meta`. */
export interface NovaImageMeta {
  /** the `uuid` attribute verbatim: '' for a boot-from-volume instance, null when absent */
  baseImageRef: string | null;
  /** each null when Nova did not write the element */
  containerFormat: string | null;
  diskFormat: string | null;
  minDisk: string | null;
  minRam: string | null;
  properties: NovaExtraSpec[];
}

export interface NovaInstanceMetadata {
  /** `<name>`, verbatim: any Unicode, control characters, surrounding spaces, or '' */
  displayName: string;
  flavor: NovaFlavor;
  userId: string;
  /** the text of `<owner><user>`; null when empty */
  userName: string | null;
  projectId: string;
  projectName: string | null;
  /** `<root type="image" uuid>`; null when booted from a volume */
  imageId: string | null;
  imageMeta: NovaImageMeta | null;
  /** the Nova namespace the element was in; null for libvirt's namespace-stripped form */
  namespace: string | null;
}

/** Nova keeps flavor sizes in 32-bit signed database columns: anything above cannot be real. */
export const MAX_FLAVOR_INT = 2 ** 31 - 1;

/**
 * Parses the Nova instance element: the string DOMAIN_GET_METADATA returns, or the element as
 * found in a domain XML's <metadata>. Never throws.
 */
export function parseNovaMetadata(xml: string): Result<NovaInstanceMetadata> {
  return guarded('Nova metadata', () => {
    const root = parseXml(xml, 'Nova metadata');
    return root.ok ? readNovaInstance(root.value) : root;
  });
}

/** Reads an already parsed Nova <instance> element (see parseDomainXml). Never throws. */
export function readNovaInstance(el: Element): Result<NovaInstanceMetadata> {
  return guarded('Nova metadata', () => readInstance(el));
}

function readInstance(el: Element): Result<NovaInstanceMetadata> {
  const ns = el.namespaceURI;
  if (el.localName !== 'instance' || (ns !== null && !isNovaNamespace(ns))) {
    const hint = el.localName === 'domain' && ns === null ? ' (that is a domain XML: use parseDomainXml)' : '';
    return fail(`Nova metadata: the root element is ${elementName(el)}, not Nova's <instance>${hint}`);
  }
  const parsed = novaInstanceSchema.safeParse(rawInstance(el));
  if (!parsed.success) return fail(`Nova metadata: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  return ok(parsed.data);
}

export function isNovaNamespace(uri: string): boolean {
  return (NOVA_NAMESPACES as readonly string[]).includes(uri);
}

// ---------------------------------------------------------------------------------------------------
// DOM → plain strings: what the document holds, undefined where it holds nothing. No judgement yet.
// ---------------------------------------------------------------------------------------------------

interface RawPair {
  name: string | undefined;
  value: string;
}

function rawInstance(el: Element) {
  const ns = el.namespaceURI;
  const find = (parent: Element | undefined, name: string) => (parent === undefined ? undefined : child(parent, ns, name));
  const textOf = (e: Element | undefined) => (e === undefined ? undefined : text(e));
  const pairs = (parent: Element | undefined, name: string): RawPair[] | undefined =>
    parent === undefined ? undefined : children(parent, ns, name).map((e) => ({ name: attr(e, 'name'), value: text(e) }));
  const owned = (e: Element | undefined) => (e === undefined ? undefined : { uuid: attr(e, 'uuid'), name: text(e) });

  const nameEl = find(el, 'name');
  const flavor = find(el, 'flavor');
  const owner = find(el, 'owner');
  const image = find(el, 'image');
  // Ceilometer: ./root[@type='image'] — the first <root> whose type is image.
  const imageRoot = children(el, ns, 'root').find((r) => attr(r, 'type') === 'image');
  return {
    name: textOf(nameEl),
    flavor:
      flavor === undefined
        ? undefined
        : {
            name: attr(flavor, 'name'),
            id: attr(flavor, 'id'),
            vcpus: textOf(find(flavor, 'vcpus')),
            memory: textOf(find(flavor, 'memory')),
            disk: textOf(find(flavor, 'disk')),
            ephemeral: textOf(find(flavor, 'ephemeral')),
            swap: textOf(find(flavor, 'swap')),
            extraSpecs: pairs(find(flavor, 'extraSpecs'), 'extraSpec'),
          },
    user: owned(find(owner, 'user')),
    project: owned(find(owner, 'project')),
    imageId: imageRoot === undefined ? undefined : attr(imageRoot, 'uuid'),
    image:
      image === undefined
        ? undefined
        : {
            uuid: attr(image, 'uuid'),
            containerFormat: textOf(find(image, 'containerFormat')),
            diskFormat: textOf(find(image, 'diskFormat')),
            minDisk: textOf(find(image, 'minDisk')),
            minRam: textOf(find(image, 'minRam')),
            properties: pairs(find(image, 'properties'), 'property') ?? [],
          },
    namespace: ns,
  };
}

// ---------------------------------------------------------------------------------------------------
// The schema: which of those strings must be there, what they must look like, and what they become.
// ---------------------------------------------------------------------------------------------------

/** A bad value as it appears in a reason: quoted, escaped, and short. */
export function quote(value: string, max = 40): string {
  const q = JSON.stringify(value);
  return q.length > max ? `${q.slice(0, max)}…" (${value.length} characters)` : q;
}

/**
 * A flavor size: Ceilometer's `_safe_find_int`, i.e. int(text), 0 when the element is absent.
 * Python's int() also takes '1_000', '+5' and non-ASCII digits; Nova writes str(int), so we accept
 * only optional surrounding whitespace, an optional sign and ASCII digits.
 */
function flavorSize(element: string) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined) return 0;
      const t = raw.trim();
      const problem = !/^[+-]?[0-9]+$/.test(t)
        ? `<flavor><${element}> is ${quote(raw)}, not an integer`
        : Number(t) < 0
          ? `<flavor><${element}> is ${quote(t)}, a negative number`
          : Number(t) > MAX_FLAVOR_INT
            ? `<flavor><${element}> is ${quote(t)}, more than ${MAX_FLAVOR_INT}`
            : null;
      if (problem !== null) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      return Number(t) + 0; // + 0 turns "-0" into 0
    });
}

/** An owner id: must be there and not blank, since it becomes the sample's user_id or project_id. */
function ownerId(element: 'user' | 'project') {
  return z
    .string({ error: `missing uuid attribute on <owner><${element}>` })
    .refine((s) => s.trim() !== '', { error: `empty uuid attribute on <owner><${element}>` });
}

const rawPairSchema = z.object({ name: z.string().optional(), value: z.string() });

/**
 * Name/value elements as a Python dict built from them would hold them: unnamed ones dropped
 * (Ceilometer would crash on them), a repeated name keeps its first position and last value.
 */
const pairsSchema = z.array(rawPairSchema).transform((list) => {
  const byName = new Map<string, string>();
  for (const { name, value } of list) if (name !== undefined) byName.set(name, value);
  return [...byName].map(([name, value]): NovaExtraSpec => ({ name, value }));
});

const blankToNull = (s: string | undefined): string | null => (s === undefined || s === '' ? null : s);

const novaInstanceSchema = z
  .object({
    // Kept verbatim, even '': Ceilometer publishes whatever text is there (None for an empty
    // element, which Gnocchi's display_name would refuse; '' it takes).
    name: z.string({ error: 'missing <name> element' }),
    flavor: z.object(
      {
        name: z.string({ error: 'missing name attribute on <flavor>' }),
        id: z.string().optional(),
        vcpus: flavorSize('vcpus'),
        memory: flavorSize('memory'),
        disk: flavorSize('disk'),
        ephemeral: flavorSize('ephemeral'),
        swap: flavorSize('swap'),
        extraSpecs: pairsSchema.optional(),
      },
      { error: 'missing <flavor> element' },
    ),
    user: z.object({ uuid: ownerId('user'), name: z.string() }, { error: 'missing <owner><user> element' }),
    project: z.object({ uuid: ownerId('project'), name: z.string() }, { error: 'missing <owner><project> element' }),
    imageId: z.string().optional(),
    image: z
      .object({
        uuid: z.string().optional(),
        containerFormat: z.string().optional(),
        diskFormat: z.string().optional(),
        minDisk: z.string().optional(),
        minRam: z.string().optional(),
        properties: pairsSchema,
      })
      .optional(),
    namespace: z.string().nullable(),
  })
  .transform(
    (r): NovaInstanceMetadata => ({
      displayName: r.name,
      flavor: {
        // Ceilometer: `if flavor_id:` — an empty id counts as none.
        id: blankToNull(r.flavor.id),
        name: r.flavor.name,
        vcpus: r.flavor.vcpus,
        ram: r.flavor.memory,
        disk: r.flavor.disk,
        ephemeral: r.flavor.ephemeral,
        swap: r.flavor.swap,
        extraSpecs: r.flavor.extraSpecs ?? null,
      },
      userId: r.user.uuid,
      userName: blankToNull(r.user.name),
      projectId: r.project.uuid,
      projectName: blankToNull(r.project.name),
      // A <root type="image"> without a usable uuid names no image; Ceilometer would crash on it.
      imageId: blankToNull(r.imageId),
      imageMeta:
        r.image === undefined
          ? null
          : {
              baseImageRef: r.image.uuid ?? null,
              containerFormat: r.image.containerFormat ?? null,
              diskFormat: r.image.diskFormat ?? null,
              minDisk: r.image.minDisk ?? null,
              minRam: r.image.minRam ?? null,
              properties: r.image.properties,
            },
      namespace: r.namespace,
    }),
  );
