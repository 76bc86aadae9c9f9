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

export function redactValue(value: unknown): unknown {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map(redactValue);
  if (Buffer.isBuffer(value)) return '[bytes]';
  if (value instanceof Error) return redact(value.message);
  return value;
}
