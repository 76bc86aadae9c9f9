import assert from 'node:assert/strict';
import type { ReadinessProbe } from '../config/types.js';
import { defaultHost, probeDefaults, probeHandler, validateReadinessProbe } from './index.js';

const WHERE = 'mesh: defaultConfig.readinessProbe';

describe('probeDefaults', () => {
  it("fills in Istio's zero-value defaults", () => {
    const probe = probeDefaults({ httpGet: { port: 8080 } });
    assert.deepEqual(probe, {
      initialDelaySeconds: 0,
      timeoutSeconds: 1,
      periodSeconds: 10,
      successThreshold: 1,
      failureThreshold: 1,
      httpGet: { port: 8080, path: '/', scheme: 'http' },
    });
  });

  it('treats zero as unset, as proto3 cannot tell them apart', () => {
    const probe = probeDefaults({ timeoutSeconds: 0, periodSeconds: 0, successThreshold: 0, failureThreshold: 0, tcpSocket: { port: 1 } });
    assert.equal(probe.timeoutSeconds, 1);
    assert.equal(probe.periodSeconds, 10);
    assert.equal(probe.successThreshold, 1);
    assert.equal(probe.failureThreshold, 1);
  });

  it('keeps configured values and lower-cases the scheme', () => {
    const probe = probeDefaults({
      initialDelaySeconds: 5,
      timeoutSeconds: 3,
      periodSeconds: 7,
      successThreshold: 2,
      failureThreshold: 4,
      httpGet: { port: 443, path: '/ready', scheme: 'HTTPS', host: 'app.local', httpHeaders: [{ name: 'X', value: 'y' }] },
    });
    assert.deepEqual(probe, {
      initialDelaySeconds: 5,
      timeoutSeconds: 3,
      periodSeconds: 7,
      successThreshold: 2,
      failureThreshold: 4,
      httpGet: { port: 443, path: '/ready', scheme: 'https', host: 'app.local', httpHeaders: [{ name: 'X', value: 'y' }] },
    });
  });

  it('does not modify the configured probe', () => {
    const configured: ReadinessProbe = { httpGet: { port: 80, scheme: 'HTTP' } };
    probeDefaults(configured);
    assert.deepEqual(configured, { httpGet: { port: 80, scheme: 'HTTP' } });
  });

  it('names the handler', () => {
    assert.equal(probeHandler({ exec: { command: ['true'] } }), 'exec');
    assert.equal(probeHandler({ grpc: { port: 1 } }), 'grpc');
    assert.equal(probeHandler({}), undefined);
  });
});

describe('defaultHost', () => {
  it('is the first instance IP, else localhost', () => {
    assert.equal(defaultHost(['10.0.0.5', 'fd00::5'], false), '10.0.0.5');
    assert.equal(defaultHost([], false), 'localhost');
  });

  it('is localhost with REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION', () => {
    assert.equal(defaultHost(['10.0.0.5'], true), 'localhost');
  });
});

describe('validateReadinessProbe', () => {
  it('accepts each kind of valid probe', () => {
    const probes: ReadinessProbe[] = [
      { httpGet: { port: 8080 } },
      { httpGet: { port: 443, scheme: 'HTTPS', httpHeaders: [{ name: 'Host', value: 'app' }] }, periodSeconds: 0 },
      { tcpSocket: { port: 65535, host: '10.0.0.5' } },
      { exec: { command: ['/bin/check', '--ready'] } },
      { grpc: { port: 1, service: 'app' }, initialDelaySeconds: 10, timeoutSeconds: 2, successThreshold: 3, failureThreshold: 3 },
    ];
    for (const probe of probes) assert.deepEqual(validateReadinessProbe(probe, WHERE), [], JSON.stringify(probe));
  });

  it('rejects a probe without a handler', () => {
    assert.deepEqual(validateReadinessProbe({ periodSeconds: 5 }, WHERE), [
      `${WHERE}: needs exactly one of httpGet, tcpSocket, exec or grpc, got none`,
    ]);
  });

  it('rejects a probe with two handlers', () => {
    assert.deepEqual(validateReadinessProbe({ httpGet: { port: 80 }, tcpSocket: { port: 80 } }, WHERE), [
      `${WHERE}: needs exactly one of httpGet, tcpSocket, exec or grpc, got httpGet and tcpSocket`,
    ]);
  });

  it('rejects negative and fractional numbers, naming the field', () => {
    assert.deepEqual(validateReadinessProbe({ periodSeconds: -1, timeoutSeconds: 1.5, failureThreshold: -3, exec: { command: ['true'] } }, WHERE), [
      `${WHERE}.timeoutSeconds: must be an integer, got 1.5`,
      `${WHERE}.periodSeconds: must be >= 0, got -1`,
      `${WHERE}.failureThreshold: must be >= 0, got -3`,
    ]);
  });

  it('rejects ports outside 1-65535', () => {
    assert.deepEqual(validateReadinessProbe({ httpGet: { port: 0 } }, WHERE), [`${WHERE}.httpGet.port: must be a port number (1-65535), got 0`]);
    assert.deepEqual(validateReadinessProbe({ tcpSocket: { port: 70000 } }, WHERE), [
      `${WHERE}.tcpSocket.port: must be a port number (1-65535), got 70000`,
    ]);
    assert.deepEqual(validateReadinessProbe({ grpc: { port: -1 } }, WHERE), [`${WHERE}.grpc.port: must be a port number (1-65535), got -1`]);
  });

  it('rejects a scheme other than HTTP or HTTPS', () => {
    assert.deepEqual(validateReadinessProbe({ httpGet: { port: 80, scheme: 'ftp' } }, WHERE), [
      `${WHERE}.httpGet.scheme: expected "HTTP" or "HTTPS", got "ftp"`,
    ]);
  });

  it('rejects header names and values Node would refuse to send', () => {
    assert.deepEqual(
      validateReadinessProbe({ httpGet: { port: 80, httpHeaders: [{ name: 'Bad Name', value: 'x' }, { name: 'X-Ok', value: 'a\r\nb' }] } }, WHERE),
      [`${WHERE}.httpGet.httpHeaders[0].name: not a valid header name: "Bad Name"`, `${WHERE}.httpGet.httpHeaders[1].value: must not contain CR, LF or NUL`],
    );
  });

  it('rejects an exec probe without a command', () => {
    assert.deepEqual(validateReadinessProbe({ exec: { command: [] } }, WHERE), [`${WHERE}.exec.command: must list the command to run`]);
  });

  it('reports every problem at once', () => {
    const errors = validateReadinessProbe({ periodSeconds: -1, httpGet: { port: 0, scheme: 'gopher' } }, WHERE);
    assert.equal(errors.length, 3);
  });
});
