/**
 * The parts of Go's encoding/json output that pilot-agent's node metadata and gRPC bootstrap depend
 * on: map keys sorted by byte order at every level, and MarshalIndent's layout and HTML escaping.
 */
import type { JsonLike } from '../../proto/index.js';

/** Go orders map keys by their UTF-8 bytes (JavaScript's `<` compares UTF-16 units). */
export function compareGoKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function isJsonObject(value: unknown): value is { [key: string]: JsonLike } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A copy with every object's keys in Go's order: what a Go map[string]any looks like after
 * json.Marshal, and what protojson writes for a google.protobuf.Struct.
 */
export function sortKeysDeep(value: JsonLike): JsonLike {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  return isJsonObject(value) ? sortObjectKeysDeep(value) : value;
}

export function sortObjectKeysDeep(value: { readonly [key: string]: JsonLike }): Record<string, JsonLike> {
  // Object.fromEntries defines own properties, so a `__proto__` key stays an ordinary key.
  return Object.fromEntries(
    Object.keys(value)
      .sort(compareGoKeys)
      .map((key): [string, JsonLike] => [key, sortKeysDeep(value[key] ?? null)]),
  );
}

/**
 * json.MarshalIndent(v, "", "  "): two-space indentation, `"key": value`, no trailing newline, and
 * `<`, `>`, `&`, U+2028 and U+2029 escaped inside strings (those characters cannot occur outside
 * strings in JSON text, so replacing them everywhere is safe).
 */
export function marshalIndentGo(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
