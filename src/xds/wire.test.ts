import assert from 'node:assert/strict';
import { ProtoSchema } from '../proto/index.js';
import { checkMessageBounds, readStringField, RESPONSE_TYPE_URL_FIELD, WireFormatError } from './wire.js';

describe('wire scanner', () => {
  const schema = new ProtoSchema();

  it('reads type_url from SotW and Delta responses whatever comes before it', () => {
    const resources = Array.from({ length: 50 }, (_, i) => ({ type_url: 'type.googleapis.com/x', value: Buffer.alloc(300, i) }));
    const sotw = schema.discoveryResponse.encode({ version_info: '7', resources, type_url: 'type.googleapis.com/envoy.config.cluster.v3.Cluster', nonce: 'n' });
    assert.equal(readStringField(sotw, RESPONSE_TYPE_URL_FIELD), 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    const delta = schema.deltaDiscoveryResponse.encode({
      system_version_info: '1',
      resources: [{ name: 'a', version: '1', resource: { type_url: 't', value: Buffer.from('xyz') } }],
      type_url: 'type.googleapis.com/istio.networking.nds.v1.NameTable',
      removed_resources: ['b'],
      nonce: 'n',
    });
    assert.equal(readStringField(delta, RESPONSE_TYPE_URL_FIELD), 'type.googleapis.com/istio.networking.nds.v1.NameTable');
  });

  it('returns the proto3 default when the field is absent', () => {
    assert.equal(readStringField(Buffer.alloc(0), 4), '');
  });

  it('skips varint, fixed32 and fixed64 fields', () => {
    // field 3 varint 1, field 6 fixed64, field 7 fixed32, field 4 "ab"
    const bytes = Buffer.from([0x18, 0x01, 0x31, 1, 2, 3, 4, 5, 6, 7, 8, 0x3d, 1, 2, 3, 4, 0x22, 0x02, 0x61, 0x62]);
    assert.equal(readStringField(bytes, 4), 'ab');
  });

  it('rejects truncated, overlong and unsupported encodings instead of guessing', () => {
    for (const bytes of [
      [0x22, 0x05, 0x61], // length runs past the end
      [0x22], // tag without length
      [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // varint longer than 10 bytes
      [0x0b], // group start (wire type 3)
      [0x00, 0x00], // field number 0
      [0x31, 1, 2], // fixed64 cut short
    ]) {
      assert.throws(() => checkMessageBounds(Buffer.from(bytes)), WireFormatError, `accepted ${Buffer.from(bytes).toString('hex')}`);
    }
  });
});
