// The XML edge of discovery: one strict, namespace-aware parse of what libvirt hands us, and the
// few read helpers the Nova metadata and domain XML readers share. Nothing here throws.
//
// @xmldom/xmldom is a namespace-aware DOM parser: it resolves every prefix to its namespace URI
// wherever the declaration sits (libvirt moves `xmlns:nova` to <metadata> when the domain was
// defined with it on <domain>), it never expands entities declared in a DTD (a reference to one is
// an "entity not found" error, so a billion-laughs document cannot grow), and its traversals are
// iterative, so deep nesting cannot overflow the stack. It only *reports* some well-formedness
// errors; parseXml turns every report into a rejection.

import { DOMParser } from '@xmldom/xmldom';
import type { Element, Node } from '@xmldom/xmldom';

import { fail, ok, type Result } from './result.js';

/**
 * The largest document accepted, in UTF-8 bytes. A real domain XML is 2–20 KiB and Nova's metadata
 * under 2 KiB; the cap bounds the parse time (about 3 s for 1 MiB of tiny elements on this
 * project's machines) of a document nobody should be sending.
 */
export const MAX_XML_BYTES = 1024 * 1024;

const ELEMENT_NODE = 1;
const TEXT_NODE = 3;
const CDATA_SECTION_NODE = 4;

interface Problem {
  message: string;
  line: number | null;
  column: number | null;
}

/** Parses `xml` and returns its root element, or why it is not a well-formed document of ours. */
export function parseXml(xml: string, what: string): Result<Element> {
  if (typeof xml !== 'string') return fail(`${what} is not a string but ${xml === null ? 'null' : typeof xml}`);
  const bytes = Buffer.byteLength(xml, 'utf8');
  if (bytes > MAX_XML_BYTES) return fail(`${what} is ${bytes} bytes, more than the ${MAX_XML_BYTES} accepted`);
  if (xml.trim() === '') return fail(`${what} is empty`);

  let problem: Problem | null = null;
  const parser = new DOMParser({
    normalizeLineEndings: xml10LineEndings,
    onError: (level, message, context: unknown) => {
      // A U+FFFD in a display name is legitimate text, not a syntax problem.
      if (level === 'warning' && message.startsWith('Unicode replacement character')) return;
      problem ??= { message, ...position(context) };
      throw new Error(message);
    },
  });
  try {
    const doc = parser.parseFromString(xml, 'text/xml');
    // libvirt never writes a DTD; refusing any keeps entity declarations out of the question.
    if (doc.doctype !== null) return fail(`${what} has a DOCTYPE (<!DOCTYPE ${doc.doctype.name}>), which libvirt never writes`);
    const root = doc.documentElement;
    if (root === null) return fail(`${what} has no root element`);
    return ok(root);
  } catch (err) {
    const p: Problem = problem ?? { message: err instanceof Error ? err.message : String(err), line: null, column: null };
    const where = p.line !== null && p.column !== null ? ` (line ${p.line}, column ${p.column})` : '';
    return fail(`${what} is not well-formed XML: ${oneLine(p.message)}${where}`);
  }
}

/**
 * XML 1.0 §2.11: only CR LF and lone CR become LF. xmldom's default also folds U+0085 and U+2028
 * (XML 1.1 rules), which would change display names that contain them; libxml2 (libvirt, lxml) does not.
 */
function xml10LineEndings(s: string): string {
  return s.replace(/\r\n?/g, '\n');
}

function position(context: unknown): { line: number | null; column: number | null } {
  const locator = typeof context === 'object' && context !== null ? (context as { locator?: unknown }).locator : undefined;
  if (typeof locator !== 'object' || locator === null) return { line: null, column: null };
  const { lineNumber, columnNumber } = locator as { lineNumber?: unknown; columnNumber?: unknown };
  return {
    line: typeof lineNumber === 'number' ? lineNumber : null,
    column: typeof columnNumber === 'number' ? columnNumber : null,
  };
}

/** Reasons end up in one log line: no newlines, and no parser message longer than a line. */
function oneLine(s: string, max = 200): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}

function isElement(node: Node): node is Element {
  return node.nodeType === ELEMENT_NODE;
}

/** The child elements of `parent` named `localName` in namespace `ns` (null: no namespace), in document order. */
export function children(parent: Element, ns: string | null, localName: string): Element[] {
  const found: Element[] = [];
  for (let n = parent.firstChild; n !== null; n = n.nextSibling) {
    if (isElement(n) && n.localName === localName && n.namespaceURI === ns) found.push(n);
  }
  return found;
}

/** The first such child, as ElementTree's `find('./x')` would return it. */
export function child(parent: Element, ns: string | null, localName: string): Element | undefined {
  for (let n = parent.firstChild; n !== null; n = n.nextSibling) {
    if (isElement(n) && n.localName === localName && n.namespaceURI === ns) return n;
  }
  return undefined;
}

/** Every element child, whatever its name or namespace. */
export function elementChildren(parent: Element): Element[] {
  const found: Element[] = [];
  for (let n = parent.firstChild; n !== null; n = n.nextSibling) if (isElement(n)) found.push(n);
  return found;
}

/**
 * The element's own character data: its text and CDATA children joined, verbatim (no trimming).
 * Comments and nested elements are skipped. An empty element gives ''.
 */
export function text(el: Element): string {
  let s = '';
  for (let n = el.firstChild; n !== null; n = n.nextSibling) {
    if (n.nodeType === TEXT_NODE || n.nodeType === CDATA_SECTION_NODE) s += n.nodeValue ?? '';
  }
  return s;
}

/** An unprefixed attribute's value, or undefined when it is absent. */
export function attr(el: Element, name: string): string | undefined {
  return el.hasAttributeNS(null, name) ? (el.getAttributeNS(null, name) ?? undefined) : undefined;
}

/** How a reason names an element: its qualified name as written, plus its namespace when it has one. */
export function elementName(el: Element): string {
  return el.namespaceURI === null ? `<${el.tagName}>` : `<${el.tagName}> in namespace "${el.namespaceURI}"`;
}

/**
 * Runs a reader that is written not to throw, and keeps that promise if it ever does: discovery
 * must go on with the other domains. The reason says it is a bug, so it gets reported.
 */
export function guarded<T>(what: string, read: () => Result<T>): Result<T> {
  try {
    return read();
  } catch (err) {
    return fail(`${what} could not be read (a ceilopoll bug, please report it): ${oneLine(err instanceof Error ? err.message : String(err))}`);
  }
}
