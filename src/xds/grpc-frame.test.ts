import assert from 'node:assert/strict';
import { ProtoSchema } from '../proto/index.js';
import { FrameError, FrameReader, frameHeader } from './grpc-frame.js';
import { peekResponseType } from './wire.js';

function frames(...messages: Buffer[]): Buffer {
  return Buffer.concat(messages.flatMap((m) => [frameHeader(m.length), m]));
}

/** Feeds `bytes` in pieces of `size` and records what the reader hands over. */
function read(bytes: Buffer, size: number, peek?: (prefix: Buffer) => 'stream' | 'whole' | 'more') {
  const wholes: Buffer[] = [];
  const streamed: Buffer[][] = [];
  const reader = new FrameReader(
    {
      begin: () => (peek ? 'stream' : 'whole'),
      peek,
      part: (bytes, header) => {
        if (header) streamed.push([header]);
        streamed.at(-1)?.push(bytes);
      },
      whole: (m) => wholes.push(m),
    },
    64,
  );
  for (let i = 0; i < bytes.length; i += size) reader.push(bytes.subarray(i, i + size));
  return { wholes, streamed, reader };
}

describe('gRPC frame reader', () => {
  it('reassembles messages split anywhere, including empty ones', () => {
    const messages = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(1000, 7)];
    for (const size of [1, 3, 5, 64, 4096]) {
      const { wholes, reader } = read(frames(...messages), size);
      assert.deepEqual(wholes, messages, `chunk size ${size}`);
      assert.ok(reader.isAtBoundary);
    }
  });

  it('streams a message on once the peek decides, header included, bytes unchanged', () => {
    const big = Buffer.alloc(10_000, 3);
    const { streamed, wholes } = read(frames(big, Buffer.from('tail')), 700, () => 'stream');
    assert.equal(streamed.length, 1);
    assert.deepEqual(Buffer.concat(streamed[0] ?? []), Buffer.concat([frameHeader(big.length), big]));
    assert.deepEqual(wholes, [Buffer.from('tail')], 'a message that arrived whole before the peek decided is handed over whole');
  });

  it('assembles the message whole when the peek says so or cannot decide within its budget', () => {
    const big = Buffer.alloc(5_000, 1);
    assert.deepEqual(read(frames(big), 100, () => 'whole').wholes, [big]);
    assert.deepEqual(read(frames(big), 10, () => 'more').wholes, [big]);
  });

  it('hands on chunks that lie inside a streamed message as the very buffers pushed, not copies or new views', () => {
    const parts: Buffer[] = [];
    const reader = new FrameReader({ begin: () => 'stream', part: (bytes) => parts.push(bytes), whole: () => assert.fail('not whole') });
    const middle = Buffer.alloc(4000, 1);
    const last = Buffer.alloc(1000, 2); // ends the message exactly
    reader.push(Buffer.concat([frameHeader(6000), Buffer.alloc(1000, 0)]));
    reader.push(middle);
    reader.push(last);
    assert.equal(parts.length, 3);
    assert.strictEqual(parts[1], middle);
    assert.strictEqual(parts[2], last);
    assert.ok(reader.isAtBoundary);
  });

  it('rejects an invalid compression flag', () => {
    assert.throws(() => read(Buffer.from([9, 0, 0, 0, 1, 0]), 6), FrameError);
  });
});

describe('response type peek', () => {
  const schema = new ProtoSchema();
  const CDS = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';

  it('finds the type in the first resource of a SotW or Delta response, from a prefix', () => {
    const resources = Array.from({ length: 100 }, () => ({ type_url: CDS, value: Buffer.alloc(500, 1) }));
    const sotw = schema.discoveryResponse.encode({ version_info: 'v1', resources, type_url: CDS, nonce: 'n' });
    assert.deepEqual(peekResponseType(sotw.subarray(0, 80), 'sotw'), { decided: true, typeUrl: CDS });
    assert.deepEqual(peekResponseType(sotw.subarray(0, 20), 'sotw'), { decided: false });
    const delta = schema.deltaDiscoveryResponse.encode({
      system_version_info: 'v1',
      resources: [{ name: 'a', version: '1', resource: { type_url: CDS, value: Buffer.alloc(5000) } }],
      type_url: CDS,
      removed_resources: [],
      nonce: 'n',
    });
    assert.deepEqual(peekResponseType(delta.subarray(0, 100), 'delta'), { decided: true, typeUrl: CDS });
  });

  it('falls back to type_url for a response without resources', () => {
    const empty = schema.discoveryResponse.encode({ version_info: 'v1', resources: [], type_url: CDS, nonce: 'n' });
    assert.deepEqual(peekResponseType(empty, 'sotw'), { decided: true, typeUrl: CDS });
  });
});
