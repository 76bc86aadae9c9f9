/**
 * Last line of defence against secrets in logs: whatever a caller passes, PEM private keys and
 * JWT-shaped strings never reach the output.
 */
const PRIVATE_KEY_PEM = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(-----END \1PRIVATE KEY-----|$)/g;
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer\s+)[^\s"',]+/gi;

export function redact(text: string): string {
  return text
    .replace(PRIVATE_KEY_PEM, '[REDACTED PRIVATE KEY]')
    .replace(JWT, '[REDACTED TOKEN]')
    .replace(BEARER, '$1[REDACTED]');
}

/** Redacts strings at any depth of a field value (objects are printed as JSON, so they are walked too). */
export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value);
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return '[bytes]';
  if (value instanceof Error) return redact(value.message);
  if (depth > 8) return '[nested]';
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v, depth + 1)]));
  }
  return value;
}
