/**
 * The few pieces of the DNS wire format (RFC 1035, RFC 6891) the proxy needs, hand-written so that
 * the hit path reads a query and writes a response without building message objects.
 */
import { FNV_OFFSET, FNV_PRIME } from './name-index.js';

export const TYPE_A = 1;
export const TYPE_CNAME = 5;
export const TYPE_AAAA = 28;
export const TYPE_OPT = 41;
export const CLASS_IN = 1;

export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NOTIMP = 4;
/** Extended rcode (RFC 6891): the low 4 bits go in the header, the rest in the OPT record. */
export const RCODE_BADVERS = 16;

export const HEADER_LENGTH = 12;
/** A name's wire form, root label included, is at most 255 bytes (RFC 1035 §3.1). */
export const MAX_NAME_LENGTH = 255;
const MAX_LABEL_LENGTH = 63;
/** Plain DNS over UDP (RFC 1035 §4.2.1); also the floor for a smaller EDNS0 size. */
export const MIN_UDP_SIZE = 512;
/** Largest message a TCP length prefix can frame. */
export const MAX_TCP_SIZE = 65535;
/** The UDP payload size this server advertises in its own OPT records (DNS flag day 2020). */
export const ADVERTISED_UDP_SIZE = 1232;
/** Root name, type OPT, class = UDP size, TTL = extended rcode/version/flags, empty RDATA. */
export const OPT_RECORD_LENGTH = 11;

// Header flag bits, byte 2 then byte 3.
const FLAG_QR = 0x80;
const MASK_OPCODE = 0x78;
const FLAG_AA = 0x04;
export const FLAG_TC = 0x02;
const FLAG_RD = 0x01;
const FLAG_RA = 0x80;
const FLAG_CD = 0x10;

/** What `QueryParser.parse` concluded. */
export const PARSE_OK = 0;
/** Not worth an answer: shorter than a header, or a response rather than a query. */
export const PARSE_DROP = 1;
export const PARSE_FORMERR = 2;
export const PARSE_NOTIMP = 3;
/** A query without a question: Istio answers SERVFAIL. */
export const PARSE_NO_QUESTION = 4;
export const PARSE_BADVERS = 5;

/**
 * Reads the header, the first question and the EDNS0 OPT record of a query. One parser is reused for
 * every query (the hit path is synchronous), so parsing allocates nothing: results are fields.
 *
 * The question's name must be uncompressed: a compression pointer there could only point into the
 * header, so it is malformed (FORMERR). Other sections are skipped, never followed, so no packet can make
 * the parser loop; every step advances through the buffer or fails.
 */
export class QueryParser {
  /** The first question's name in wire form, ASCII-lowercased: the lookup key (`name[0..nameLength)`). */
  readonly name = Buffer.alloc(MAX_NAME_LENGTH);
  nameLength = 0;
  /** hashName() of `name`, computed on the way. */
  hash = 0;
  qtype = 0;
  /** Offset just past the first question (its name, type and class). */
  questionEnd = 0;
  hasEdns = false;
  /** The requester's UDP payload size from its OPT record. */
  ednsSize = 0;

  parse(msg: Buffer): number {
    this.nameLength = 0;
    this.hash = 0;
    this.questionEnd = 0;
    this.hasEdns = false;
    this.ednsSize = 0;
    const end = msg.length;
    if (end < HEADER_LENGTH) return PARSE_DROP;
    if ((msg[2]! & FLAG_QR) !== 0) return PARSE_DROP;
    if ((msg[2]! & MASK_OPCODE) !== 0) return PARSE_NOTIMP;
    const qdcount = (msg[4]! << 8) | msg[5]!;
    if (qdcount === 0) return PARSE_NO_QUESTION;

    const name = this.name;
    let length = 0;
    let hash = FNV_OFFSET;
    let off = HEADER_LENGTH;
    for (;;) {
      if (off >= end) return PARSE_FORMERR;
      const labelLength = msg[off]!;
      if (labelLength === 0) {
        name[length++] = 0;
        hash = Math.imul(hash, FNV_PRIME);
        off++;
        break;
      }
      // Covers compression pointers (0xC0) and the reserved label types (0x40, 0x80) too.
      if (labelLength > MAX_LABEL_LENGTH) return PARSE_FORMERR;
      if (off + 1 + labelLength > end || length + labelLength + 2 > MAX_NAME_LENGTH) return PARSE_FORMERR;
      name[length++] = labelLength;
      hash = Math.imul(hash ^ labelLength, FNV_PRIME);
      for (let i = off + 1, stop = off + 1 + labelLength; i < stop; i++) {
        let c = msg[i]!;
        if (c >= 0x41 && c <= 0x5a) c |= 0x20;
        name[length++] = c;
        hash = Math.imul(hash ^ c, FNV_PRIME);
      }
      off += 1 + labelLength;
    }
    if (off + 4 > end) return PARSE_FORMERR;
    this.nameLength = length;
    this.hash = hash;
    this.qtype = (msg[off]! << 8) | msg[off + 1]!;
    off += 4;
    this.questionEnd = off;

    const ancount = (msg[6]! << 8) | msg[7]!;
    const nscount = (msg[8]! << 8) | msg[9]!;
    const arcount = (msg[10]! << 8) | msg[11]!;
    if (arcount === 0) return PARSE_OK;
    for (let i = 1; i < qdcount; i++) {
      off = skipName(msg, off, end);
      if (off < 0 || off + 4 > end) return PARSE_FORMERR;
      off += 4;
    }
    for (let i = 0, records = ancount + nscount + arcount; i < records; i++) {
      off = skipName(msg, off, end);
      if (off < 0 || off + 10 > end) return PARSE_FORMERR;
      const type = (msg[off]! << 8) | msg[off + 1]!;
      const rdlength = (msg[off + 8]! << 8) | msg[off + 9]!;
      if (i >= ancount + nscount && type === TYPE_OPT && !this.hasEdns) {
        this.hasEdns = true;
        this.ednsSize = (msg[off + 2]! << 8) | msg[off + 3]!;
        // Only EDNS version 0 exists; anything newer gets BADVERS (RFC 6891 §6.1.3).
        if (msg[off + 5] !== 0) return PARSE_BADVERS;
      }
      off += 10 + rdlength;
      if (off > end) return PARSE_FORMERR;
    }
    return PARSE_OK;
  }
}

/** Offset just past the name at `off`, or -1. A pointer ends a name and is not followed. */
function skipName(msg: Buffer, off: number, end: number): number {
  for (;;) {
    if (off >= end) return -1;
    const labelLength = msg[off]!;
    if (labelLength === 0) return off + 1;
    if ((labelLength & 0xc0) === 0xc0) return off + 2 <= end ? off + 2 : -1;
    if (labelLength > MAX_LABEL_LENGTH) return -1;
    off += 1 + labelLength;
  }
}

/** Writes an OPT record advertising this server's UDP size, with an extended rcode. */
function writeOpt(buf: Buffer, off: number, rcode: number): void {
  buf[off] = 0;
  buf.writeUInt16BE(TYPE_OPT, off + 1);
  buf.writeUInt16BE(ADVERTISED_UDP_SIZE, off + 3);
  buf.writeUInt32BE((rcode >> 4) << 24, off + 5);
  buf.writeUInt16BE(0, off + 9);
}

/**
 * A response carrying only an rcode (and the first question when it could be read), as Istio's
 * `SetReply` + `Rcode` does. `prefix` leaves room for (and fills) the TCP length prefix.
 */
export function errorResponse(query: Buffer, rcode: number, questionEnd: number, edns: boolean, prefix: number): Buffer {
  const questionLength = questionEnd > HEADER_LENGTH ? questionEnd - HEADER_LENGTH : 0;
  const length = HEADER_LENGTH + questionLength + (edns ? OPT_RECORD_LENGTH : 0);
  const resp = Buffer.alloc(prefix + length);
  if (prefix) resp.writeUInt16BE(length, 0);
  resp[prefix] = query[0] ?? 0;
  resp[prefix + 1] = query[1] ?? 0;
  resp[prefix + 2] = FLAG_QR | ((query[2] ?? 0) & (MASK_OPCODE | FLAG_RD));
  resp[prefix + 3] = FLAG_RA | ((query[3] ?? 0) & FLAG_CD) | (rcode & 0x0f);
  resp[prefix + 5] = questionLength ? 1 : 0;
  resp[prefix + 11] = edns ? 1 : 0;
  if (questionLength) query.copy(resp, prefix + HEADER_LENGTH, HEADER_LENGTH, questionEnd);
  if (edns) writeOpt(resp, prefix + HEADER_LENGTH + questionLength, rcode);
  return resp;
}

/**
 * The address records of one name and type, precomputed in `variants` orderings stored back to back in
 * `bytes` from `offset` (round robin rotates between them). Every owner name is a compression pointer to
 * the question (offset 12), so answers carry the client's own spelling of the name (DNS 0x20) and wildcard
 * matches are named after the question without any work per query.
 */
export interface AnswerSet {
  readonly bytes: Buffer;
  readonly offset: number;
  /** Records per ordering. */
  readonly count: number;
  readonly recordLength: number;
  readonly variants: number;
  /** Which ordering the next response uses. */
  next: number;
}

/** What one name answers. */
export interface HostAnswers {
  readonly a: AnswerSet;
  readonly aaaa: AnswerSet;
  /**
   * The search-shortcut CNAME record (owner = the question, target uncompressed), in
   * `cname[cnameOffset, cnameOffset + cnameLength)`; cnameLength 0 = none. The address records then
   * belong to the target: their owner pointers are rewritten per query to the target inside the CNAME.
   */
  readonly cname: Buffer;
  readonly cnameOffset: number;
  readonly cnameLength: number;
}

export const EMPTY_ANSWERS: AnswerSet = Object.freeze({ bytes: Buffer.alloc(0), offset: 0, count: 0, recordLength: 16, variants: 1, next: 0 });

/** Record header: owner pointer, type, class, TTL and RDATA length. */
export const RECORD_HEADER_LENGTH = 12;
/** Copies below this size are byte loops: Buffer#copy allocates a view per call. */
const COPY_LOOP_MAX = 128;

function copyBytes(from: Buffer, start: number, length: number, to: Buffer, at: number): void {
  if (length > COPY_LOOP_MAX) from.copy(to, at, start, start + length);
  else for (let i = 0; i < length; i++) to[at + i] = from[start + i]!;
}

/**
 * The hit path: header, the client's question bytes, the CNAME if any, one ordering of the address
 * records, and an OPT record if the query had one. A CNAME comes only with addresses, as in Istio. When
 * the answers do not fit in `limit` bytes, as many whole address records as fit are kept and TC is set.
 */
export function answerResponse(query: Buffer, questionEnd: number, host: HostAnswers, set: AnswerSet, limit: number, edns: boolean, prefix: number): Buffer {
  const recordLength = set.recordLength;
  let records = set.count;
  let start = set.offset;
  if (set.variants > 1) {
    const v = set.next;
    set.next = v + 1 === set.variants ? 0 : v + 1;
    start += v * records * recordLength;
  }
  const optLength = edns ? OPT_RECORD_LENGTH : 0;
  let truncated = 0;
  const room = limit - questionEnd - optLength;
  if (records > 0 && host.cnameLength + records * recordLength > room) {
    truncated = FLAG_TC;
    records = room > host.cnameLength ? Math.floor((room - host.cnameLength) / recordLength) : 0;
  }
  const cnameLength = records > 0 ? host.cnameLength : 0;
  const addressLength = records * recordLength;
  const count = records + (cnameLength ? 1 : 0);
  const total = questionEnd + cnameLength + addressLength + optLength;
  const resp = Buffer.allocUnsafe(prefix + total);
  if (prefix) {
    resp[0] = total >> 8;
    resp[1] = total & 0xff;
  }
  resp[prefix] = query[0]!;
  resp[prefix + 1] = query[1]!;
  resp[prefix + 2] = FLAG_QR | FLAG_AA | truncated | (query[2]! & FLAG_RD);
  resp[prefix + 3] = FLAG_RA | (query[3]! & FLAG_CD);
  resp[prefix + 4] = 0;
  resp[prefix + 5] = 1;
  resp[prefix + 6] = count >> 8;
  resp[prefix + 7] = count & 0xff;
  resp[prefix + 8] = 0;
  resp[prefix + 9] = 0;
  resp[prefix + 10] = 0;
  resp[prefix + 11] = edns ? 1 : 0;
  copyBytes(query, HEADER_LENGTH, questionEnd - HEADER_LENGTH, resp, prefix + HEADER_LENGTH);
  let at = prefix + questionEnd;
  if (cnameLength) {
    copyBytes(host.cname, host.cnameOffset, cnameLength, resp, at);
    at += cnameLength;
  }
  copyBytes(set.bytes, start, addressLength, resp, at);
  if (cnameLength) {
    const target = 0xc000 | (questionEnd + RECORD_HEADER_LENGTH);
    for (let p = at, stop = at + addressLength; p < stop; p += recordLength) {
      resp[p] = target >> 8;
      resp[p + 1] = target & 0xff;
    }
  }
  at += addressLength;
  if (edns) writeOpt(resp, at, 0);
  return resp;
}

/**
 * The lookup key of a dotted name (`a.b.` or `a.b`): its wire form, ASCII-lowercased, as a latin1 string
 * (one char per byte); undefined unless it is a valid DNS name (no empty label, labels ≤ 63 bytes,
 * ≤ 255 bytes in all). Non-ASCII names are taken as their UTF-8 bytes.
 */
export function nameKey(name: string): string | undefined {
  let dotted = name.endsWith('.') ? name.slice(0, -1) : name;
  if (dotted === '') return '\0';
  // eslint-disable-next-line no-control-regex
  if (/[^\x00-\x7f]/.test(dotted)) dotted = Buffer.from(dotted, 'utf8').toString('latin1');
  dotted = dotted.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
  let key = '';
  let labelStart = 0;
  for (;;) {
    const dot = dotted.indexOf('.', labelStart);
    const labelEnd = dot < 0 ? dotted.length : dot;
    const length = labelEnd - labelStart;
    if (length === 0 || length > MAX_LABEL_LENGTH) return undefined;
    key += String.fromCharCode(length) + dotted.slice(labelStart, labelEnd);
    if (dot < 0) break;
    labelStart = dot + 1;
  }
  return key.length + 1 > MAX_NAME_LENGTH ? undefined : `${key}\0`;
}

/** The wire form of a dotted name, ASCII-lowercased; undefined unless valid (see nameKey). */
export function encodeName(name: string): Buffer | undefined {
  const key = nameKey(name);
  return key === undefined ? undefined : Buffer.from(key, 'latin1');
}

/** The dotted form of a wire name without compression (for logs and tests). */
export function decodeName(wire: Buffer): string {
  const labels: string[] = [];
  for (let off = 0; off < wire.length && wire[off] !== 0; off += 1 + wire[off]!) {
    labels.push(wire.toString('latin1', off + 1, off + 1 + wire[off]!));
  }
  return labels.join('.') + '.';
}
