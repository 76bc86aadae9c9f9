/**
 * The native batched-UDP endpoint (native/udp_batch.c): recvmmsg/sendmmsg on a socket the event loop
 * watches, one JavaScript call per batch of datagrams. Built by `npm ci` (node-gyp) and copied beside the
 * bundle by `npm run build`; where it is missing or does not load, the DNS server uses node:dgram.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage } from '../errors.js';

export const UDP_BATCH_FILE = 'udp_batch.node';

/** One bound UDP socket, read in batches. */
export interface UdpBatchEndpoint {
  readonly port: number;
  /** `batch` slots of `slotBytes`: the datagrams of the current batch. */
  readonly rx: Uint8Array;
  /** Length of each datagram of the batch, or -1 when it was larger than a slot. */
  readonly lengths: Int32Array;
  /** `batch` slots of `addrBytes`: each sender's address, opaque to JavaScript. */
  readonly addrs: Uint8Array;
  /** Answers datagram `index` of the current batch (sent with the others when the batch is done). */
  reply(index: number, response: Buffer): void;
  /** Sends now to a sender kept from `addrs` (a copy: the slots are reused); returns 0 or an errno. */
  sendTo(response: Buffer, addr: Buffer): number;
  close(): void;
}

export interface UdpBatchModule {
  readonly batch: number;
  readonly slotBytes: number;
  readonly addrBytes: number;
  /** Binds `ip:port` (port 0: any); throws an Error with an errno `code` (EADDRINUSE, ...). */
  open(ip: string, port: number, bufferBytes: number, onBatch: (count: number) => void): UdpBatchEndpoint;
}

let loaded: { module?: UdpBatchModule; reason?: string } | undefined;

/** The native module, or why it is not available. Looked for beside this file (the bundle) and in build/. */
export function loadUdpBatch(): { module?: UdpBatchModule; reason?: string } {
  if (loaded) return loaded;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, UDP_BATCH_FILE), ...[here, path.join(here, '..'), path.join(here, '../..')].map((dir) => path.join(dir, 'build/Release', UDP_BATCH_FILE))];
  const file = candidates.find((candidate) => existsSync(candidate));
  if (process.platform !== 'linux') loaded = { reason: `recvmmsg is Linux-only (platform ${process.platform})` };
  else if (!file) loaded = { reason: `${UDP_BATCH_FILE} not built (npm ci builds it with node-gyp)` };
  else {
    try {
      loaded = { module: createRequire(import.meta.url)(file) as UdpBatchModule };
    } catch (err) {
      loaded = { reason: `${file}: ${errorMessage(err)}` };
    }
  }
  return loaded;
}
