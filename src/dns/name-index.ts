export const FNV_OFFSET = 0x811c9dc5 | 0;
export const FNV_PRIME = 0x01000193;

/** FNV-1a over `buf[start..end)`: the hash the query parser computes while it lowercases the name. */
export function hashName(buf: Uint8Array, start: number, end: number): number {
  let h = FNV_OFFSET;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, FNV_PRIME);
  return h;
}

/**
 * A read-only hash table from wire-format names to values, probed with the bytes of a query: no key
 * string is built per lookup. Open addressing with linear probing at a load factor of at most 1/2; the
 * keys sit back to back in one buffer, which also keeps a 100,000-name table compact.
 */
export class NameIndex<T> {
  readonly size: number;
  readonly #mask: number;
  /** 0 = empty, else entry index + 1. */
  readonly #slots: Int32Array;
  readonly #hashes: Int32Array;
  /** Entry i's key is #bytes[#offsets[i] .. #offsets[i + 1]). */
  readonly #offsets: Int32Array;
  readonly #bytes: Buffer;
  readonly #values: T[];

  /** `entries` must have distinct keys: wire names as latin1 strings (see nameKey). */
  constructor(entries: ReadonlyArray<readonly [string, T]>) {
    const n = entries.length;
    this.size = n;
    let capacity = 16;
    while (capacity < n * 2) capacity *= 2;
    this.#mask = capacity - 1;
    this.#slots = new Int32Array(capacity);
    this.#hashes = new Int32Array(n);
    this.#offsets = new Int32Array(n + 1);
    this.#values = new Array<T>(n);
    let total = 0;
    for (const [key] of entries) total += key.length;
    this.#bytes = Buffer.allocUnsafeSlow(total);
    let off = 0;
    entries.forEach(([key, value], i) => {
      this.#bytes.write(key, off, 'latin1');
      this.#offsets[i] = off;
      const hash = hashName(this.#bytes, off, off + key.length);
      off += key.length;
      this.#hashes[i] = hash;
      this.#values[i] = value;
      let slot = hash & this.#mask;
      while (this.#slots[slot] !== 0) slot = (slot + 1) & this.#mask;
      this.#slots[slot] = i + 1;
    });
    this.#offsets[n] = off;
  }

  /** The value for the name `name[start..end)`, whose hashName is `hash`. */
  get(name: Uint8Array, start: number, end: number, hash: number): T | undefined {
    const slots = this.#slots;
    const mask = this.#mask;
    const bytes = this.#bytes;
    const length = end - start;
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = slots[i]!;
      if (slot === 0) return undefined;
      const index = slot - 1;
      if (this.#hashes[index] !== hash) continue;
      const off = this.#offsets[index]!;
      if (this.#offsets[index + 1]! - off !== length) continue;
      let j = 0;
      while (j < length && bytes[off + j] === name[start + j]) j++;
      if (j === length) return this.#values[index];
    }
  }
}
