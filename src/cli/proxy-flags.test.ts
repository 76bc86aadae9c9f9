import assert from 'node:assert/strict';
import { normalizeBooleanFlags, proxyCommand, type ProxyCommandLine } from './proxy-flags.js';

function parse(args: string[]): ProxyCommandLine {
  let line: ProxyCommandLine | undefined;
  proxyCommand((l) => (line = l))
    .exitOverride()
    .parse(normalizeBooleanFlags(args), { from: 'user' });
  if (!line) throw new Error('not parsed');
  return line;
}

describe('pilot-agent proxy flags', () => {
  it('has pilot-agent defaults', () => {
    const line = parse([]);
    assert.equal(line.proxyType, 'sidecar');
    assert.equal(line.flags.meshConfigFile, './etc/istio/config/mesh');
    assert.equal(line.flags.serviceCluster, 'istio-proxy');
    assert.equal(line.flags.profiling, true);
    assert.deepEqual(line.log, { asJson: false, outputLevel: 'default:info,grpc:none', target: 'stdout' });
    assert.ok(line.printable.some(([k, v]) => k === 'concurrency' && v === '0'));
  });

  it('takes Go-style --flag=value and --flag value, including booleans', () => {
    const line = parse(['router', '--concurrency=2', '--serviceCluster', 'nginx.istio-demo', '--profiling=false', '--log_as_json', '--log_output_level=all:debug']);
    assert.equal(line.proxyType, 'router');
    assert.equal(line.flags.concurrency, 2);
    assert.equal(line.flags.serviceCluster, 'nginx.istio-demo');
    assert.equal(line.flags.profiling, false);
    assert.equal(line.log.asJson, true);
    assert.equal(line.log.outputLevel, 'all:debug');
  });

  it('ignores unknown flags, with or without a separate value, as pilot-agent does', () => {
    assert.equal(parse(['--stsPort=0', '--someFutureFlag=1']).proxyType, 'sidecar');
    assert.equal(parse(['--someFutureFlag', 'value', 'router']).proxyType, 'router');
    assert.equal(parse(['--someFutureSwitch', '--concurrency=3']).flags.concurrency, 3);
  });

  it('never takes the next word as the value of a boolean flag', () => {
    const line = parse(['--log_as_json', 'router', '--profiling']);
    assert.equal(line.proxyType, 'router');
    assert.equal(line.log.asJson, true);
    assert.equal(line.flags.profiling, true);
  });

  it('rejects a boolean or integer that Go would not parse', () => {
    assert.throws(() => parse(['--profiling=yes']), /invalid argument "yes" for "--profiling" flag/);
    assert.throws(() => parse(['--concurrency=two']), /invalid argument "two" for "--concurrency" flag/);
  });
});
