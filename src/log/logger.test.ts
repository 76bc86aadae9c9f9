import assert from 'node:assert/strict';
import { LogCapture } from '../../test/support/log-capture.js';
import { formatDuration } from './duration.js';
import { formatTimestamp } from './format.js';
import { parseOutputLevels } from './logger.js';

describe('log', () => {
  it('prints Istio text lines: UTC time with microseconds, level, scope, message, key=value labels', async () => {
    const capture = new LogCapture();
    capture.root.scope('xdsproxy').info('connected to upstream XDS server: istiod.istio-system.svc:15012', { id: 1 });
    await new Promise((r) => setImmediate(r));
    const [line] = capture.lines;
    assert.match(line ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\tinfo\txdsproxy\tconnected to upstream XDS server: istiod\.istio-system\.svc:15012\tid=1$/);
  });

  it('omits the scope column for the default scope and formats lists as Go does', async () => {
    const capture = new LogCapture();
    capture.root.scope('default').info('Proxy role', { ips: ['10.0.0.1', 'fd00::1'], type: 'sidecar' });
    await new Promise((r) => setImmediate(r));
    assert.match(capture.lines[0] ?? '', /\tinfo\tProxy role\tips=\[10\.0\.0\.1 fd00::1\] type=sidecar$/);
  });

  it('writes one JSON object per line with --log_as_json', async () => {
    const capture = new LogCapture({ asJson: true });
    capture.root.scope('sds').warn('failed to warm certificate: boom', { attempt: 2 });
    await new Promise((r) => setImmediate(r));
    const parsed = JSON.parse(capture.lines[0] ?? '{}') as Record<string, unknown>;
    assert.equal(parsed['level'], 'warn');
    assert.equal(parsed['scope'], 'sds');
    assert.equal(parsed['msg'], 'failed to warm certificate: boom');
    assert.equal(parsed['attempt'], '2');
    assert.match(String(parsed['time']), /\.\d{6}Z$/);
  });

  it('filters per scope with --log_output_level', async () => {
    const capture = new LogCapture({ outputLevel: 'default:warn,sds:debug' });
    capture.root.scope('default').info('hidden');
    capture.root.scope('sds').debug('shown');
    capture.root.scope('cache').debug('hidden too');
    capture.root.scope('cache').info('shown too');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      capture.lines.map((l) => l.split('\t').at(-1)),
      ['shown', 'shown too'],
    );
  });

  it('parses bare levels (default scope only), all:<level> and rejects unknown levels', () => {
    const bare = parseOutputLevels('debug');
    assert.equal(bare.byScope.get('default'), 'debug');
    assert.equal(bare.fallback, 'info', 'other scopes keep info');
    assert.equal(parseOutputLevels('default:warn').fallback, 'info');
    assert.equal(parseOutputLevels('all:debug,sds:error').byScope.get('sds'), undefined, 'all: ends the list');
    assert.equal(parseOutputLevels('all:error').byScope.get('grpc'), undefined);
    assert.equal(parseOutputLevels('').byScope.get('grpc'), 'none');
    assert.throws(() => parseOutputLevels('sds:verbose'), /invalid level "verbose" for scope "sds"/);
  });

  it('never prints a private key or a token, whatever the caller passes', async () => {
    const capture = new LogCapture();
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ.c2lnbmF0dXJl';
    capture.root.scope('default').info(`token ${jwt}`, {
      key: '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n',
      header: `Bearer ${jwt}`,
      nested: { cfg: { token: `Bearer ${jwt}`, pem: '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----' } },
    });
    await new Promise((r) => setImmediate(r));
    const line = capture.lines[0] ?? '';
    assert.doesNotMatch(line, /MIIE|eyJhbGci/);
    assert.match(line, /\[REDACTED PRIVATE KEY\]/);
  });

  it('formats durations like Go', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(150), '150ms');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(86_399_980), '23h59m59.98s');
    assert.equal(formatDuration(61_000), '1m1s');
  });

  it('never writes a timestamp earlier than the line before it', async () => {
    const capture = new LogCapture();
    for (let i = 0; i < 500; i++) capture.root.scope('dns').info(`line ${i}`);
    await new Promise((r) => setImmediate(r));
    const times = capture.lines.map((l) => l.split('\t')[0] ?? '');
    for (let i = 1; i < times.length; i++) assert.ok((times[i] ?? '') >= (times[i - 1] ?? ''), `${times[i - 1]} then ${times[i]}`);
  });

  it('renders microsecond timestamps in UTC', () => {
    assert.equal(formatTimestamp(Date.UTC(2026, 10, 21, 10, 56, 51, 123) * 1000 + 456), '2026-11-21T10:56:51.123456Z');
  });
});
