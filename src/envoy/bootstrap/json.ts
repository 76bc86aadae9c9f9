/** Small JSON helpers for reading proto-JSON values kept verbatim from the operator's files. */
import type { JsonValue } from '../../config/index.js';

export type JsonObject = { [key: string]: JsonValue };

export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A field of a proto-JSON object as the operator may have written it: lowerCamel JSON name or proto
 * (snake_case) name, e.g. `inclusionPrefixes` or `inclusion_prefixes`.
 */
export function protoField(object: JsonValue | undefined, jsonName: string): JsonValue | undefined {
  if (!isJsonObject(object)) return undefined;
  if (Object.hasOwn(object, jsonName)) return object[jsonName];
  const protoName = jsonName.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  return Object.hasOwn(object, protoName) ? object[protoName] : undefined;
}

export function stringField(object: JsonValue | undefined, jsonName: string): string {
  const value = protoField(object, jsonName);
  return typeof value === 'string' ? value : '';
}

export function stringListField(object: JsonValue | undefined, jsonName: string): string[] | undefined {
  const value = protoField(object, jsonName);
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

/** Object keys in Go's encoding/json order (bytewise UTF-8), which is how Istio writes maps. */
export function compareGoKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export function sortKeysDeep(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (!isJsonObject(value)) return value;
  const out: JsonObject = {};
  for (const key of Object.keys(value).sort(compareGoKeys)) {
    const item = value[key];
    if (item !== undefined) Object.defineProperty(out, key, { value: sortKeysDeep(item), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
