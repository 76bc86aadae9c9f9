/**
 * Test-only helpers for the DNS tests: `dig` against a server on 127.0.0.1, raw UDP/TCP exchanges and a
 * hand-built query encoder (independent of the server's own wire code).
 */
import { execFile } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';

export interface DigAnswer {
  name: string;
  ttl: number;
  type: string;
  data: string;
}

export interface DigResult {
  /** NOERROR, SERVFAIL, ..., or TIMEOUT when dig got no reply. */
  status: string;
  flags: string[];
  answers: DigAnswer[];
  output: string;
}

/** Runs dig (asynchronously: the server shares this event loop) and parses its header and answers. */
export function dig(port: number, name: string, type: string, ...options: string[]): Promise<DigResult> {
  const args = ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', '+noall', '+comments', '+answer', name, type, ...options];
  return new Promise((resolve) => {
    execFile('dig', args, (_err, stdout) => resolve(parseDig(String(stdout))));
  });
}

/** dig against an IPv6 server address. */
export function dig6(port: number, name: string, type: string): Promise<DigResult> {
  const args = ['@::1', '-p', String(port), '+tries=1', '+time=3', '+noall', '+comments', '+answer', name, type];
  return new Promise((resolve) => {
    execFile('dig', args, (_err, stdout) => resolve(parseDig(String(stdout))));
  });
}

function parseDig(output: string): DigResult {
  const status = /status: ([A-Z]+)/.exec(output)?.[1] ?? 'TIMEOUT';
  const flags = (/;; flags: ([^;]*);/.exec(output)?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
  const answers: DigAnswer[] = [];
  for (const line of output.split('\n')) {
    if (line.trim() === '' || line.startsWith(';')) continue;
    const [name = '', ttl = '', , type = '', ...data] = line.split(/\s+/);
    answers.push({ name, ttl: Number(ttl), type, data: data.join(' ') });
  }
  return { status, flags, answers, output };
}

/** `owner TYPE data` lines, sorted: round robin makes the order of address records vary. */
export function answerLines(result: DigResult): string[] {
  return result.answers.map((a) => `${a.name} ${a.type} ${a.data}`).sort();
}

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  /** Adds an OPT record with this UDP size. */
  ednsSize?: number;
  ednsVersion?: number;
  opcode?: number;
}

export const QTYPE = { A: 1, AAAA: 28, TXT: 16, MX: 15 } as const;

/** A query built by hand, the name spelled exactly as given. */
export function buildQuery(name: string, qtype: number, options: QueryOptions = {}): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(options.id ?? 0x1234, 0);
  header[2] = ((options.opcode ?? 0) << 3) | (options.rd === false ? 0 : 1);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(options.ednsSize !== undefined ? 1 : 0, 10);
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts = [header];
  for (const label of labels) parts.push(Buffer.from([label.length]), Buffer.from(label, 'latin1'));
  parts.push(Buffer.from([0, qtype >> 8, qtype & 0xff, 0, 1]));
  if (options.ednsSize !== undefined) {
    const opt = Buffer.alloc(11);
    opt.writeUInt16BE(41, 1);
    opt.writeUInt16BE(options.ednsSize, 3);
    opt[6] = options.ednsVersion ?? 0;
    parts.push(opt);
  }
  return Buffer.concat(parts);
}

/** Sends one datagram; resolves with the reply, or undefined if none came within `timeoutMs`. */
export function udpExchange(port: number, msg: Buffer, timeoutMs = 1000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    const timer = setTimeout(() => {
      socket.close();
      resolve(undefined);
    }, timeoutMs);
    socket.on('message', (reply) => {
      clearTimeout(timer);
      socket.close();
      resolve(reply);
    });
    socket.send(msg, port, '127.0.0.1');
  });
}

/**
 * Writes `bytes` on a new TCP connection and collects length-framed replies until `count` arrived, the
 * server closed the connection, or `timeoutMs` passed.
 */
export function tcpExchange(port: number, bytes: Buffer, count: number, timeoutMs = 1000): Promise<{ replies: Buffer[]; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const replies: Buffer[] = [];
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ replies, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + replies[replies.length - 1]!.length);
      }
      if (replies.length >= count) finish(false);
    });
    socket.write(bytes);
  });
}

/** Length-prefixes a message for DNS over TCP. */
export function frame(msg: Buffer): Buffer {
  const out = Buffer.alloc(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  msg.copy(out, 2);
  return out;
}

export function rcodeOf(reply: Buffer): number {
  return reply[3]! & 0x0f;
}

export function answerCount(reply: Buffer): number {
  return reply.readUInt16BE(6);
}

export function isTruncated(reply: Buffer): boolean {
  return (reply[2]! & 0x02) !== 0;
}

export interface DecodedRecord {
  name: string;
  type: number;
  ttl: number;
  /** Dotted address for A/AAAA (AAAA as 8 hex groups), target name for CNAME, hex otherwise. */
  data: string;
}

export interface DecodedResponse {
  id: number;
  rcode: number;
  truncated: boolean;
  question: string;
  answers: DecodedRecord[];
  additional: number;
}

/** A small, independent decoder for responses in tests (follows pointers, at most 20 hops). */
export function decodeResponse(msg: Buffer): DecodedResponse {
  const readName = (start: number): { name: string; end: number } => {
    const labels: string[] = [];
    let off = start;
    let end = -1;
    for (let hops = 0; hops < 20; ) {
      const len = msg[off]!;
      if (len === 0) {
        if (end < 0) end = off + 1;
        return { name: `${labels.join('.')}.`, end };
      }
      if ((len & 0xc0) === 0xc0) {
        if (end < 0) end = off + 2;
        off = msg.readUInt16BE(off) & 0x3fff;
        hops++;
        continue;
      }
      labels.push(msg.toString('latin1', off + 1, off + 1 + len));
      off += 1 + len;
    }
    throw new Error('pointer loop');
  };
  const q = readName(12);
  let off = q.end + 4;
  const answers: DecodedRecord[] = [];
  for (let i = 0; i < msg.readUInt16BE(6); i++) {
    const owner = readName(off);
    off = owner.end;
    const type = msg.readUInt16BE(off);
    const ttl = msg.readUInt32BE(off + 4);
    const rdlength = msg.readUInt16BE(off + 8);
    const rdata = msg.subarray(off + 10, off + 10 + rdlength);
    let data = rdata.toString('hex');
    if (type === 1) data = Array.from(rdata).join('.');
    else if (type === 28) data = Array.from({ length: 8 }, (_, g) => rdata.readUInt16BE(g * 2).toString(16)).join(':');
    else if (type === 5) data = readName(off + 10).name;
    answers.push({ name: owner.name, type, ttl, data });
    off += 10 + rdlength;
  }
  return { id: msg.readUInt16BE(0), rcode: msg[3]! & 0x0f, truncated: (msg[2]! & 0x02) !== 0, question: q.name, answers, additional: msg.readUInt16BE(10) };
}
