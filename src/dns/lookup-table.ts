import type { NameInfo, NameTable } from '../proto/index.js';
import { ipBytes } from '../net/index.js';
import { NameIndex, hashName } from './name-index.js';
import { CLASS_IN, EMPTY_ANSWERS, RECORD_HEADER_LENGTH, TYPE_A, TYPE_AAAA, TYPE_CNAME, encodeName, nameKey, type AnswerSet, type HostAnswers } from './wire.js';

/** Istio's TTL for every record it serves from the table. */
export const TTL_SECONDS = 30;
/** Orderings kept per multi-address answer: enough for round robin to vary the first address. */
const MAX_VARIANTS = 8;
const KUBERNETES_REGISTRY = 'Kubernetes';
/** Owner name = the question's name (a compression pointer to offset 12). */
const POINTER_TO_QUESTION = 0xc00c;

export interface LookupTableOptions {
  /** The proxy's namespace: only its services get a bare `<short>.` name. */
  proxyNamespace: string;
  /** The proxy's DNS domain, e.g. `istio-demo.svc.cluster.local` (the namespace part is dropped). */
  proxyDomain: string;
  /** The first `search` domain of resolv.conf, for the CNAME shortcut; absent = none. */
  searchDomain?: string | undefined;
}

/** The proxy's domain without its leading namespace label (`svc.cluster.local`), split into labels. */
export function domainParts(options: Pick<LookupTableOptions, 'proxyNamespace' | 'proxyDomain'>): string[] {
  const parts = options.proxyDomain.split('.');
  if (parts[0] === options.proxyNamespace) parts.shift();
  return parts;
}

/**
 * The names (with trailing dot, as given) under which a NameTable entry is served (SPEC §6.3):
 * `Kubernetes` entries get `<host>.` and, when the host is in the proxy's domain, `<short>.<ns>.`,
 * `<short>.<ns>.<first domain label>.`, `<short>.` in the proxy's own namespace and the alt hosts;
 * other registries get the host with a trailing dot.
 */
export function altHosts(hostname: string, info: NameInfo, proxyNamespace: string, domain: readonly string[]): Set<string> {
  if (info.registry !== KUBERNETES_REGISTRY) return new Set([hostname.endsWith('.') ? hostname : `${hostname}.`]);
  const out = new Set([`${hostname}.`]);
  const proxyDomain = domain.join('.');
  // Another cluster's domain: `name.namespace` could clash between clusters, so only the FQDN.
  if (proxyDomain === '' || !hostname.endsWith(proxyDomain)) return out;
  out.add(`${info.shortname}.${info.namespace}.`);
  if (info.namespace === proxyNamespace) out.add(`${info.shortname}.`);
  out.add(`${info.shortname}.${info.namespace}.${domain[0]}.`);
  for (const alt of info.alt_hosts ?? []) out.add(`${alt}.`);
  return out;
}

/**
 * Valid addresses of an entry, split by family, as flat byte lists (4 or 16 bytes per address); invalid
 * ones are skipped as Istio does.
 */
export function splitIps(ips: readonly string[]): { v4: number[]; v6: number[] } {
  const v4: number[] = [];
  const v6: number[] = [];
  for (const ip of ips ?? []) {
    if (parseIpv4(ip, v4)) continue;
    const bytes = ipBytes(ip);
    if (bytes?.length === 16) for (const b of bytes) v6.push(b);
  }
  return { v4, v6 };
}

/** Appends the 4 bytes of a dotted quad (no leading zeros, as Go and Node accept) to `out`. */
function parseIpv4(text: string, out: number[]): boolean {
  const start = out.length;
  let part = 0;
  let digits = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || out.length - start === 4) break;
      out.push(part);
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39 && !(digits === 1 && part === 0)) {
      part = part * 10 + c - 0x30;
      digits++;
      if (part > 255) break;
    } else {
      break;
    }
    if (i === text.length && out.length - start === 4) return true;
  }
  out.length = start;
  return false;
}

/** What a name maps to while the table is being built; later entries overwrite earlier ones per field. */
interface NameRecord {
  v4?: number[];
  v6?: number[];
  /** Lookup key of the CNAME target (search-domain shortcut). */
  cname?: string;
}

/**
 * Istio's DNS lookup table, compiled: keyed by lowercased wire-format names, valued by answers already
 * encoded. Immutable once built, except for the round-robin cursors, so a table swap is a single
 * reference assignment.
 */
export class LookupTable {
  readonly #exact: NameIndex<HostAnswers>;
  /** Wildcard entries (`*.example.com.`) by the wire name after `*.`. */
  readonly #wildcards: NameIndex<HostAnswers>;

  private constructor(exact: NameIndex<HostAnswers>, wildcards: NameIndex<HostAnswers>) {
    this.#exact = exact;
    this.#wildcards = wildcards;
  }

  /** Number of names answered (wildcards and search-domain CNAMEs included). */
  get size(): number {
    return this.#exact.size;
  }

  /**
   * The answers for the wire name `name[0..length)` (lowercased; `hash` = hashName of it): an exact match,
   * else the most specific wildcard (`a.b.c.` → `*.b.c.`, then `*.c.`).
   */
  find(name: Uint8Array, length: number, hash: number): HostAnswers | undefined {
    const hit = this.#exact.get(name, 0, length, hash);
    if (hit !== undefined || this.#wildcards.size === 0) return hit;
    for (let p = 1 + name[0]!; p < length - 1; p += 1 + name[p]!) {
      const match = this.#wildcards.get(name, p, length, hashName(name, p, length));
      if (match !== undefined) return match;
    }
    return undefined;
  }

  /** The answers for a dotted name, for tests and debugging. */
  lookup(name: string): HostAnswers | undefined {
    const wire = encodeName(name);
    return wire && this.find(wire, wire.length, hashName(wire, 0, wire.length));
  }

  static build(table: NameTable, options: LookupTableOptions): LookupTable {
    const domain = domainParts(options);
    const search = normalizeSearch(options.searchDomain);
    const names = new Map<string, NameRecord>();
    const record = (key: string): NameRecord => {
      let rec = names.get(key);
      if (!rec) names.set(key, (rec = {}));
      return rec;
    };

    for (const [hostname, info] of Object.entries(table.table ?? {})) {
      const { v4, v6 } = splitIps(info.ips);
      if (v4.length === 0 && v6.length === 0) continue;
      const hosts = [...altHosts(hostname, info, options.proxyNamespace, domain)].map((h) => h.toLowerCase());
      const own = new Set(hosts);
      for (const host of hosts) {
        const key = nameKey(host);
        if (key === undefined) continue;
        const rec = record(key);
        if (v4.length) rec.v4 = v4;
        if (v6.length) rec.v6 = v6;
        // The search shortcut: `<name>.<S1>.` is a CNAME to `<name>.`, so a resolver walking its search
        // list gets the answer on its first try instead of an upstream NXDOMAIN.
        if (search === undefined || host === `${search}.` || host.endsWith(`.${search}.`)) continue;
        const expanded = `${host}${search}.`;
        if (own.has(expanded)) continue;
        const expandedKey = nameKey(expanded);
        if (expandedKey !== undefined) record(expandedKey).cname = key;
      }
    }

    const slab = new Slab();
    const sets = new Map<number[], AnswerSet>();
    const addressSet = (bytes: number[] | undefined, type: number): AnswerSet => {
      if (!bytes) return EMPTY_ANSWERS;
      let set = sets.get(bytes);
      if (!set) sets.set(bytes, (set = buildAddressSet(slab, bytes, type)));
      return set;
    };
    const plainHosts = new Map<AnswerSet, Map<AnswerSet, HostAnswers>>();
    const plainHost = (a: AnswerSet, aaaa: AnswerSet): HostAnswers => {
      let byAaaa = plainHosts.get(a);
      if (!byAaaa) plainHosts.set(a, (byAaaa = new Map<AnswerSet, HostAnswers>()));
      let host = byAaaa.get(aaaa);
      if (!host) byAaaa.set(aaaa, (host = { a, aaaa, cname: slab.chunk, cnameOffset: 0, cnameLength: 0 }));
      return host;
    };

    const exact: Array<[string, HostAnswers]> = [];
    const wildcards: Array<[string, HostAnswers]> = [];
    for (const [key, rec] of names) {
      let host: HostAnswers;
      if (rec.cname !== undefined) {
        // A CNAME is answered with its target's own addresses (Istio does not follow further).
        const target = names.get(rec.cname)!;
        const length = RECORD_HEADER_LENGTH + rec.cname.length;
        const offset = slab.reserve(length);
        const chunk = slab.chunk;
        chunk.writeUInt16BE(POINTER_TO_QUESTION, offset);
        chunk.writeUInt16BE(TYPE_CNAME, offset + 2);
        chunk.writeUInt16BE(CLASS_IN, offset + 4);
        chunk.writeUInt32BE(TTL_SECONDS, offset + 6);
        chunk.writeUInt16BE(rec.cname.length, offset + 10);
        chunk.write(rec.cname, offset + RECORD_HEADER_LENGTH, 'latin1');
        host = { a: addressSet(target.v4, TYPE_A), aaaa: addressSet(target.v6, TYPE_AAAA), cname: chunk, cnameOffset: offset, cnameLength: length };
      } else {
        host = plainHost(addressSet(rec.v4, TYPE_A), addressSet(rec.v6, TYPE_AAAA));
      }
      exact.push([key, host]);
      if (key.startsWith('\x01*')) wildcards.push([key.slice(2), host]);
    }
    return new LookupTable(new NameIndex(exact), new NameIndex(wildcards));
  }
}

function normalizeSearch(search: string | undefined): string | undefined {
  if (!search) return undefined;
  const s = search.toLowerCase().replace(/\.$/, '');
  return s === '' ? undefined : s;
}

const SLAB_CHUNK_BYTES = 64 * 1024;

/**
 * Carves a table's answer bytes out of a few large buffers: a 100,000-name table would otherwise hold
 * hundreds of thousands of small ArrayBuffers, each with its own overhead and GC bookkeeping.
 */
class Slab {
  chunk: Buffer = Buffer.allocUnsafeSlow(SLAB_CHUNK_BYTES);
  #used = 0;

  /** Room for `length` bytes in `chunk` (which may change): returns their offset. */
  reserve(length: number): number {
    if (this.#used + length > this.chunk.length) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(SLAB_CHUNK_BYTES, length));
      this.#used = 0;
    }
    const offset = this.#used;
    this.#used += length;
    return offset;
  }
}

/** Address records (owner = the question) in up to MAX_VARIANTS rotations of a shuffled order. */
function buildAddressSet(slab: Slab, bytes: number[], type: number): AnswerSet {
  const size = type === TYPE_A ? 4 : 16;
  const recordLength = RECORD_HEADER_LENGTH + size;
  const n = bytes.length / size;
  const order = n === 1 ? [0] : shuffled(Array.from({ length: n }, (_, i) => i));
  const variants = Math.min(n, MAX_VARIANTS);
  const offset = slab.reserve(variants * n * recordLength);
  const out = slab.chunk;
  let at = offset;
  for (let v = 0; v < variants; v++) {
    const shift = Math.floor((v * n) / variants);
    for (let i = 0; i < n; i++) {
      out.writeUInt16BE(POINTER_TO_QUESTION, at);
      out.writeUInt16BE(type, at + 2);
      out.writeUInt16BE(CLASS_IN, at + 4);
      out.writeUInt32BE(TTL_SECONDS, at + 6);
      out.writeUInt16BE(size, at + 10);
      const from = order[(i + shift) % n]! * size;
      for (let b = 0; b < size; b++) out[at + RECORD_HEADER_LENGTH + b] = bytes[from + b]!;
      at += recordLength;
    }
  }
  return { bytes: out, offset, count: n, recordLength, variants, next: 0 };
}

/** A Fisher–Yates shuffled copy. */
export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
