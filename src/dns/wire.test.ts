import assert from 'node:assert/strict';
import { QTYPE, buildQuery, decodeResponse } from './dns-test-support.js';
import { formatIp, ipBytes } from '../net/index.js';
import { hashName } from './name-index.js';
import { joinHostPort, parseResolvConf, splitHostPort } from './resolv-conf.js';
import {
  PARSE_BADVERS,
  PARSE_DROP,
  PARSE_FORMERR,
  PARSE_NOTIMP,
  PARSE_NO_QUESTION,
  PARSE_OK,
  QueryParser,
  RCODE_BADVERS,
  RCODE_SERVFAIL,
  decodeName,
  encodeName,
  errorResponse,
} from './wire.js';

describe('QueryParser', () => {
  const parser = new QueryParser();

  it('reads the first question, lowercased, with its hash', () => {
    const query = buildQuery('WWW.Example.COM', QTYPE.AAAA);
    assert.equal(parser.parse(query), PARSE_OK);
    const name = parser.name.subarray(0, parser.nameLength);
    assert.deepEqual(name, encodeName('www.example.com.'));
    assert.equal(parser.hash, hashName(name, 0, name.length));
    assert.equal(parser.qtype, QTYPE.AAAA);
    assert.equal(parser.questionEnd, query.length);
    assert.equal(parser.hasEdns, false);
  });

  it('finds the OPT record behind other records, and its version', () => {
    // An answer record with a compressed owner, then an OPT with a cookie option.
    const base = buildQuery('a.example', QTYPE.A);
    base.writeUInt16BE(1, 6);
    base.writeUInt16BE(1, 10);
    const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 1, 2, 3, 4]);
    const opt = Buffer.from([0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, 0, 12, 0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(parser.parse(Buffer.concat([base, answer, opt])), PARSE_OK);
    assert.equal(parser.hasEdns, true);
    assert.equal(parser.ednsSize, 4096);
    assert.equal(parser.questionEnd, base.length);

    assert.equal(parser.parse(buildQuery('a.example', QTYPE.A, { ednsSize: 1232, ednsVersion: 1 })), PARSE_BADVERS);
  });

  it('rejects what is not a well-formed query', () => {
    assert.equal(parser.parse(Buffer.alloc(11)), PARSE_DROP);
    const response = buildQuery('a', QTYPE.A);
    response[2]! |= 0x80;
    assert.equal(parser.parse(response), PARSE_DROP);
    assert.equal(parser.parse(buildQuery('a', QTYPE.A, { opcode: 4 })), PARSE_NOTIMP);
    const noQuestion = Buffer.alloc(12);
    assert.equal(parser.parse(noQuestion), PARSE_NO_QUESTION);
    const header = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.equal(parser.parse(Buffer.concat([header, Buffer.from([0xc0, 12, 0, 1, 0, 1])])), PARSE_FORMERR);
    assert.equal(parser.parse(Buffer.concat([header, Buffer.from([0x40])])), PARSE_FORMERR);
    assert.equal(parser.parse(Buffer.concat([header, Buffer.from([0x80, 0, 0, 1, 0, 1])])), PARSE_FORMERR);
    assert.equal(parser.parse(Buffer.concat([header, Buffer.from([1, 0x61])])), PARSE_FORMERR);
    const long = Buffer.concat([header, ...Array.from({ length: 4 }, () => Buffer.from([63, ...Buffer.alloc(63, 0x62)])), Buffer.from([0, 0, 1, 0, 1])]);
    assert.equal(parser.parse(long), PARSE_FORMERR, '4 × 64 + 1 bytes > 255');
    // A pointer loop in the additional section is skipped, never followed.
    const looped = Buffer.concat([buildQuery('a', QTYPE.A), Buffer.from([0xc0, 0x11, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0])]);
    looped.writeUInt16BE(1, 10);
    assert.equal(parser.parse(looped), PARSE_OK);
    assert.equal(parser.hasEdns, true);
  });

  it('accepts the longest legal name and the root', () => {
    // 3 × 64 + 62 + 1 = 255 bytes.
    const name = [...Array.from({ length: 3 }, () => 'a'.repeat(63)), 'b'.repeat(61)].join('.');
    assert.equal(encodeName(name)!.length, 255);
    assert.equal(parser.parse(buildQuery(name, QTYPE.A)), PARSE_OK);
    assert.equal(parser.nameLength, 255);
    assert.equal(parser.parse(buildQuery('.', QTYPE.A)), PARSE_OK);
    assert.equal(parser.nameLength, 1);
  });
});

describe('DNS wire helpers', () => {
  it('builds error responses with the question and an OPT when asked', () => {
    const query = buildQuery('a.example', QTYPE.A, { id: 77, ednsSize: 1232 });
    const parser = new QueryParser();
    parser.parse(query);
    const servfail = decodeResponse(errorResponse(query, RCODE_SERVFAIL, parser.questionEnd, true, 0));
    assert.deepEqual(servfail, { id: 77, rcode: 2, truncated: false, question: 'a.example.', answers: [], additional: 1 });
    const framed = errorResponse(query, RCODE_BADVERS, 0, true, 2);
    assert.equal(framed.readUInt16BE(0), framed.length - 2);
    assert.equal(framed.readUInt16BE(2 + 4), 0, 'no question');
    assert.equal(framed[framed.length - 6], 1, 'extended rcode');
  });

  it('encodes and decodes names', () => {
    assert.deepEqual(encodeName('A.b.'), Buffer.from([1, 0x61, 1, 0x62, 0]));
    assert.deepEqual(encodeName('a.b'), encodeName('a.b.'));
    assert.deepEqual(encodeName(''), Buffer.from([0]));
    assert.equal(encodeName('a..b'), undefined);
    assert.equal(encodeName(`${'x'.repeat(64)}.com`), undefined);
    assert.equal(decodeName(encodeName('*.Example.com')!), '*.example.com.');
  });

  it('parses and formats IP addresses like Go', () => {
    const cases: Array<[string, string]> = [
      ['10.1.2.3', '10.1.2.3'],
      ['2001:db8:0:0:0:ff00:42:8329', '2001:db8::ff00:42:8329'],
      ['::1', '::1'],
      ['::', '::'],
      ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
      ['1:2:3:4:5:6:7.8.9.10', '1:2:3:4:5:6:708:90a'],
      ['fe80::1%eth0', 'fe80::1'],
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
      ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
    ];
    for (const [input, expected] of cases) assert.equal(formatIp(ipBytes(input)!), expected, input);
    for (const bad of ['', '1.2.3', '01.2.3.4', '1.2.3.256', 'example.com', '1::2::3']) assert.equal(ipBytes(bad), undefined, bad);
  });
});

describe('resolv.conf', () => {
  it('reads nameservers and the search list as Go does', () => {
    const conf = parseResolvConf(
      [
        '# comment',
        'nameserver 10.0.0.2',
        'nameserver   fd00::53 ',
        'nameserver not-an-ip',
        '; another comment',
        'domain corp.example',
        'search ns1.svc.cluster.local svc.cluster.local cluster.local',
        'options ndots:5',
      ].join('\n'),
    );
    assert.deepEqual(conf, { nameservers: ['10.0.0.2', 'fd00::53'], search: ['ns1.svc.cluster.local', 'svc.cluster.local', 'cluster.local'] });
    assert.deepEqual(parseResolvConf('search a.example\ndomain b.example\n').search, ['b.example']);
    assert.deepEqual(parseResolvConf(''), { nameservers: [], search: [] });
  });

  it('joins and splits host:port', () => {
    assert.equal(joinHostPort('10.0.0.2', 53), '10.0.0.2:53');
    assert.equal(joinHostPort('fd00::53', 53), '[fd00::53]:53');
    assert.deepEqual(splitHostPort('[::1]:15053'), { host: '::1', port: 15053 });
    assert.deepEqual(splitHostPort('localhost:15053'), { host: 'localhost', port: 15053 });
    assert.deepEqual(splitHostPort(':53'), { host: '', port: 53 });
    assert.equal(splitHostPort('::1:53'), undefined);
    assert.equal(splitHostPort('localhost'), undefined);
    assert.equal(splitHostPort('localhost:70000'), undefined);
  });
});
