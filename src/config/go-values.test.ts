import assert from 'node:assert/strict';
import {
  canonicalIp,
  parseBool,
  parseGoDuration,
  parseGoFloat,
  parseGoInt,
  parseProtoDuration,
  proxyAddressProblem,
  splitHostPort,
} from './go-values.js';

describe('go-values', () => {
  it('accepts exactly the words Go strconv.ParseBool accepts', () => {
    for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(parseBool(t), true, t);
    for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(parseBool(f), false, f);
    for (const bad of ['yes', 'no', 'on', 'tRUE', ' true', '', '2']) assert.equal(parseBool(bad), undefined, bad);
  });

  it('parses Go durations into milliseconds', () => {
    assert.equal(parseGoDuration('5s'), 5000);
    assert.equal(parseGoDuration('1h30m'), 5_400_000);
    assert.equal(parseGoDuration('300ms'), 300);
    assert.equal(parseGoDuration('24h'), 86_400_000);
    assert.equal(parseGoDuration('1.5s'), 1500);
    assert.equal(parseGoDuration('.5s'), 500);
    assert.equal(parseGoDuration('-2m'), -120_000);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('1500us'), 1.5);
    assert.equal(parseGoDuration('2µs'), 0.002);
    assert.equal(parseGoDuration('1h2m3s4ms'), 3_723_004);
  });

  it('rejects durations Go rejects', () => {
    for (const bad of ['', '5', '1d', 's', '.s', '1 s', '5s ', '1h-2m', '1e3s', '--1s']) {
      assert.equal(parseGoDuration(bad), undefined, JSON.stringify(bad));
    }
  });

  it('parses proto-JSON durations only in their seconds form', () => {
    assert.equal(parseProtoDuration('45s'), 45_000);
    assert.equal(parseProtoDuration('0.5s'), 500);
    assert.equal(parseProtoDuration('-1s'), -1000);
    assert.equal(parseProtoDuration('1m'), undefined);
    assert.equal(parseProtoDuration('45'), undefined);
  });

  it('parses integers and floats like strconv', () => {
    assert.equal(parseGoInt('2048'), 2048);
    assert.equal(parseGoInt('+5'), 5);
    assert.equal(parseGoInt('-5'), -5);
    assert.equal(parseGoInt('0x10'), undefined);
    assert.equal(parseGoInt('1.0'), undefined);
    assert.equal(parseGoInt(''), undefined);
    assert.equal(parseGoFloat('0.5'), 0.5);
    assert.equal(parseGoFloat('.01'), 0.01);
    assert.equal(parseGoFloat('1e-2'), 0.01);
    assert.equal(parseGoFloat('half'), undefined);
  });

  it('splits host:port like net.SplitHostPort', () => {
    assert.deepEqual(splitHostPort('localhost:15053'), { host: 'localhost', port: '15053' });
    assert.deepEqual(splitHostPort('[::1]:15053'), { host: '::1', port: '15053' });
    assert.deepEqual(splitHostPort(':15053'), { host: '', port: '15053' });
    assert.match(splitHostPort('localhost') as string, /missing port/);
    assert.match(splitHostPort('::1:53') as string, /too many colons/);
  });

  it('validates proxy addresses as Istio does', () => {
    assert.equal(proxyAddressProblem('istiod.istio-system.svc:15012'), undefined);
    assert.equal(proxyAddressProblem('10.0.0.1:15012'), undefined);
    assert.equal(proxyAddressProblem('[fd00::1]:15012'), undefined);
    assert.match(proxyAddressProblem('istiod.istio-system.svc') ?? '', /missing port/);
    assert.match(proxyAddressProblem('istiod:99999') ?? '', /must be in the range 1\.\.65535/);
    assert.match(proxyAddressProblem('Istiod_X:15012') ?? '', /not a valid hostname/);
  });

  it('prints IPs in canonical form', () => {
    assert.equal(canonicalIp('10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalIp('FD00:0:0::0010'), 'fd00::10');
    assert.equal(canonicalIp('::ffff:10.0.0.1'), '::ffff:10.0.0.1');
    assert.equal(canonicalIp('010.0.0.1'), undefined);
    assert.equal(canonicalIp('vm-1'), undefined);
  });
});
