import { formatIp as formatIpBytes, ipBytes } from '../net/index.js';

export type IpFamily = 'v4' | 'v6';

/** An IP address as a number, so that ranges can be walked and compared. */
export interface IpValue {
  readonly family: IpFamily;
  readonly value: bigint;
}

const WIDTH: Record<IpFamily, bigint> = { v4: 32n, v6: 128n };

/** Parses a plain IPv4 or IPv6 address (no zone, no prefix length); undefined if it is not one. */
export function parseIp(text: string): IpValue | undefined {
  if (text.includes('%')) return undefined;
  const bytes = ipBytes(text);
  if (!bytes) return undefined;
  return { family: bytes.length === 4 ? 'v4' : 'v6', value: bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n) };
}

/** Formats an address as Go's netip does: dotted quad, or RFC 5952 (lower case, longest zero run as `::`). */
export function formatIp(ip: IpValue): string {
  const bytes = Buffer.alloc(ip.family === 'v4' ? 4 : 16);
  let value = ip.value;
  for (let i = bytes.length - 1; i >= 0; i--, value >>= 8n) bytes[i] = Number(value & 0xffn);
  return formatIpBytes(bytes);
}

/** `a.b.c.d/n` or `x::/n`. */
export interface IpPrefix {
  readonly address: IpValue;
  readonly bits: number;
}

/** Parses CIDR notation; undefined if it is not valid (Go's netip.ParsePrefix: no zone, length within the family). */
export function parsePrefix(text: string): IpPrefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0 || text.indexOf('/', slash + 1) >= 0) return undefined;
  const address = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (!address || !/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > Number(WIDTH[address.family])) return undefined;
  return { address, bits };
}

export function prefixContains(prefix: IpPrefix, ip: IpValue): boolean {
  if (ip.family !== prefix.address.family) return false;
  const shift = WIDTH[ip.family] - BigInt(prefix.bits);
  return ip.value >> shift === prefix.address.value >> shift;
}

export function sameIp(a: IpValue, b: IpValue): boolean {
  return a.family === b.family && a.value === b.value;
}

function ipKey(ip: IpValue): string {
  return `${ip.family}/${ip.value}`;
}

/**
 * Hands out addresses of one prefix in order, as istiod's ServiceEntry IP auto-allocation controller
 * does (`pilot/pkg/controllers/ipallocate`): the cursor starts at the address after the prefix's own
 * (so `240.240.0.0/16` yields `240.240.0.1` first, `2001:2::/48` yields `2001:2::1`), skips addresses
 * in use, wraps around once at the end of the prefix, and remembers the owner of every address so
 * that a second owner claiming it is reported as a conflict.
 */
export class PrefixAllocator {
  readonly prefix: IpPrefix;
  readonly #used = new Map<string, string>();
  #next: IpValue | undefined;

  constructor(prefix: string) {
    const parsed = parsePrefix(prefix);
    if (!parsed) throw new Error(`invalid IP prefix ${JSON.stringify(prefix)}`);
    this.prefix = parsed;
    this.#next = this.#first();
  }

  /** The next free address, now owned by `owner`; throws once the prefix is exhausted. */
  allocate(owner: string): IpValue {
    let candidate = this.#next;
    let hasLooped = false;
    if (!candidate || !prefixContains(this.prefix, candidate)) {
      hasLooped = true;
      candidate = this.#first();
    }
    const exhausted = (): Error => new Error(`${formatIp(this.prefix.address)}/${this.prefix.bits} is exhausted`);
    while (candidate && this.#used.has(ipKey(candidate))) {
      candidate = this.#after(candidate);
      if (!candidate || !prefixContains(this.prefix, candidate)) {
        if (hasLooped) throw exhausted();
        hasLooped = true;
        candidate = this.#first();
      }
    }
    if (!candidate || !prefixContains(this.prefix, candidate)) throw exhausted();
    this.#used.set(ipKey(candidate), owner);
    this.#next = this.#after(candidate);
    return candidate;
  }

  /**
   * Records `ip` as used by `owner` if it lies in the prefix and is free. Returns whether another
   * owner already holds it (a conflict).
   */
  markUsed(ip: IpValue, owner: string): { isConflict: boolean } {
    if (!prefixContains(this.prefix, ip)) return { isConflict: false };
    const holder = this.#used.get(ipKey(ip));
    if (holder === undefined) {
      this.#used.set(ipKey(ip), owner);
      return { isConflict: false };
    }
    return { isConflict: holder !== owner };
  }

  /** Releases `ip` if `owner` holds it; the cursor moves back so that it is handed out again first. */
  free(ip: IpValue, owner: string): void {
    if (this.#used.get(ipKey(ip)) !== owner) return;
    this.#used.delete(ipKey(ip));
    const next = this.#next;
    if (!next || !prefixContains(this.prefix, next) || ip.value < next.value) this.#next = ip;
  }

  isUsed(ip: IpValue): boolean {
    return this.#used.has(ipKey(ip));
  }

  ownerOf(ip: IpValue): string | undefined {
    return this.#used.get(ipKey(ip));
  }

  #first(): IpValue | undefined {
    return this.#after(this.prefix.address);
  }

  /** The following address of the family, or undefined past its last one (Go's `Addr.Next`). */
  #after(ip: IpValue): IpValue | undefined {
    const value = ip.value + 1n;
    if (value >> WIDTH[ip.family] !== 0n) return undefined;
    return { family: ip.family, value };
  }
}
