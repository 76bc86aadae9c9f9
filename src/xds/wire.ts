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
