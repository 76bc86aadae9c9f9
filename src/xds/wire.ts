/**
 * Just enough protobuf wire format to read one top-level string field (a response's type_url) without
 * decoding the message: the xDS proxy forwards Envoy's resources as the bytes istiod sent, so a 20 MB
 * CDS push is scanned tag by tag, never materialised as objects.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

export class WireFormatError extends Error {
  override readonly name = 'WireFormatError';
}

function readVarint(buf: Uint8Array, offset: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (let i = offset; i < buf.length && i < offset + 10; i++) {
    const byte = buf[i] as number;
    // Lengths and tags fit in 53 bits; larger varints (only values we skip) lose precision harmlessly.
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  throw new WireFormatError('truncated or overlong varint');
}

/**
 * Walks the top-level fields of a message and checks that every one fits: protobufjs decodes a
 * truncated string as if it were whole, so a cut-off message would otherwise pass for a valid one.
 */
export function checkMessageBounds(buf: Uint8Array): void {
  readStringField(buf, -1);
}

/** The first occurrence of top-level string field `field`, or '' when absent (proto3's default). */
export function readStringField(buf: Uint8Array, field: number): string {
  let offset = 0;
  while (offset < buf.length) {
    const [tag, afterTag] = readVarint(buf, offset);
    const number = Math.floor(tag / 8);
    const wire = tag % 8;
    if (number === 0) throw new WireFormatError('field number 0');
    switch (wire) {
      case WIRE_VARINT:
        offset = readVarint(buf, afterTag)[1];
        break;
      case WIRE_FIXED64:
        offset = afterTag + 8;
        if (offset > buf.length) throw new WireFormatError(`field ${number} runs past the end of the message`);
        break;
      case WIRE_FIXED32:
        offset = afterTag + 4;
        if (offset > buf.length) throw new WireFormatError(`field ${number} runs past the end of the message`);
        break;
      case WIRE_LENGTH_DELIMITED: {
        const [length, start] = readVarint(buf, afterTag);
        const end = start + length;
        if (end > buf.length) throw new WireFormatError(`field ${number} runs past the end of the message`);
        if (number === field) return Buffer.from(buf.buffer, buf.byteOffset + start, length).toString('utf8');
        offset = end;
        break;
      }
      default:
        throw new WireFormatError(`unsupported wire type ${wire}`);
    }
  }
  return '';
}

/** type_url is field 4 in both DiscoveryResponse and DeltaDiscoveryResponse. */
export const RESPONSE_TYPE_URL_FIELD = 4;

export type Peek = { decided: true; typeUrl: string } | { decided: false };
const NEED_MORE: Peek = { decided: false };

/**
 * Reads an xDS response's type from the first bytes of the message: istiod (Go) writes fields in number
 * order, so type_url (4) comes after every resource, but the first resource's own `Any.type_url` — the
 * same type in xDS — sits within the first few hundred bytes. That lets the proxy start forwarding a
 * 20 MB push before it has all of it. `decided: false` means: give me more bytes. A message whose type
 * cannot be seen early (no resources: then it is small) is decided by its type_url field instead.
 */
export function peekResponseType(prefix: Uint8Array, kind: 'sotw' | 'delta'): Peek {
  let offset = 0;
  while (offset < prefix.length) {
    const tag = tryVarint(prefix, offset);
    if (!tag) return NEED_MORE;
    const [key, afterTag] = tag;
    const number = Math.floor(key / 8);
    const wire = key % 8;
    if (wire !== WIRE_LENGTH_DELIMITED) {
      const next = skipScalar(prefix, afterTag, wire);
      if (next === undefined) return NEED_MORE;
      offset = next;
      continue;
    }
    const len = tryVarint(prefix, afterTag);
    if (!len) return NEED_MORE;
    const [length, start] = len;
    if (number === RESPONSE_TYPE_URL_FIELD) {
      if (start + length > prefix.length) return NEED_MORE;
      return { decided: true, typeUrl: Buffer.from(prefix.buffer, prefix.byteOffset + start, length).toString('utf8') };
    }
    if (number === 2) {
      // The first resource: SotW Any{type_url=1}, or Delta Resource{resource=2: Any{type_url=1}}.
      const resource = { bytes: prefix.subarray(start, Math.min(prefix.length, start + length)), complete: start + length <= prefix.length };
      const any = kind === 'sotw' ? resource : findField(resource, 2);
      const typeUrl = any && findField(any, 1);
      if (typeUrl === undefined || any === undefined) return NEED_MORE;
      if (typeUrl) {
        if (!typeUrl.complete) return NEED_MORE;
        return { decided: true, typeUrl: Buffer.from(typeUrl.bytes).toString('utf8') };
      }
    }
    if (start + length > prefix.length) return NEED_MORE;
    offset = start + length;
  }
  return NEED_MORE;
}

function tryVarint(buf: Uint8Array, offset: number): [number, number] | undefined {
  let value = 0;
  for (let i = offset, shift = 0; i < buf.length && i < offset + 10; i++, shift += 7) {
    const byte = buf[i] as number;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  if (buf.length - offset >= 10) throw new WireFormatError('overlong varint');
  return undefined;
}

function skipScalar(buf: Uint8Array, offset: number, wire: number): number | undefined {
  if (wire === WIRE_VARINT) return tryVarint(buf, offset)?.[1];
  const size = wire === WIRE_FIXED64 ? 8 : wire === WIRE_FIXED32 ? 4 : -1;
  if (size < 0) throw new WireFormatError(`unsupported wire type ${wire}`);
  return offset + size <= buf.length ? offset + size : undefined;
}

interface FieldBytes {
  bytes: Uint8Array;
  /** False when the bytes end inside this field: `bytes` is only its beginning. */
  complete: boolean;
}

/**
 * The first length-delimited field `field` of a message that may be cut off: its bytes (perhaps only
 * their beginning), null when the complete message has none, undefined when more bytes are needed.
 */
function findField(message: FieldBytes, field: number): FieldBytes | null | undefined {
  const buf = message.bytes;
  let offset = 0;
  while (offset < buf.length) {
    const tag = tryVarint(buf, offset);
    if (!tag) return undefined;
    const [key, afterTag] = tag;
    const wire = key % 8;
    if (wire !== WIRE_LENGTH_DELIMITED) {
      const next = skipScalar(buf, afterTag, wire);
      if (next === undefined) return undefined;
      offset = next;
      continue;
    }
    const len = tryVarint(buf, afterTag);
    if (!len) return undefined;
    const [length, start] = len;
    const end = start + length;
    if (Math.floor(key / 8) === field) return { bytes: buf.subarray(start, Math.min(end, buf.length)), complete: end <= buf.length };
    offset = end;
  }
  return message.complete ? null : undefined;
}
