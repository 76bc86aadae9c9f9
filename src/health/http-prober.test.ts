import assert from 'node:assert/strict';
import net from 'node:net';
import type { ReadinessProbe } from '../config/types.js';
import { Cleanups, Harness, TestHttpServer, localhostCertificate, freePort, waitUntil } from './health-test-support.js';

describe('HTTP readiness probe', () => {
  const cleanups = new Cleanups();
  afterEach(() => cleanups.run());

  async function httpServer(host = '127.0.0.1', tls?: { cert: string; key: string }): Promise<TestHttpServer> {
    const server = await new TestHttpServer(host, tls).listen();
    cleanups.add(() => server.stop());
    return server;
  }

  function probe(server: TestHttpServer, httpGet: Partial<NonNullable<ReadinessProbe['httpGet']>> = {}, extra: Partial<ReadinessProbe> = {}): ReadinessProbe {
    return { httpGet: { port: server.port, ...httpGet }, ...extra };
  }

  it('goes healthy, unhealthy on a bad status, unhealthy while stopped, then healthy again', async () => {
    const server = await httpServer();
    const h = new Harness(cleanups, probe(server, { path: '/ready' }));
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);

    server.behaviour = { status: 503 };
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: false, message: 'status code was not from [200,400), bad code 503' });

    server.behaviour = { status: 302 };
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: true }, '3xx counts as healthy');

    await server.stop();
    await h.tick();
    const url = `http://127.0.0.1:${server.port}/ready`;
    assert.deepEqual(h.reports.at(-1), {
      healthy: false,
      message: `Get "${url}": dial tcp 127.0.0.6:0->127.0.0.1:${server.port}: connect: connection refused`,
    });

    await server.listen();
    server.behaviour = { status: 200 };
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: true });
    assert.equal(h.reports.length, 5);
    assert.deepEqual(h.messages().slice(1), [
      'success threshold hit, marking as healthy',
      'failure threshold hit, marking as unhealthy: status code was not from [200,400), bad code 503',
      'success threshold hit, marking as healthy',
      `failure threshold hit, marking as unhealthy: Get "${url}": dial tcp 127.0.0.6:0->127.0.0.1:${server.port}: connect: connection refused`,
      'success threshold hit, marking as healthy',
    ]);
  });

  it('sends GET from 127.0.0.6 without keep-alive, with the default User-Agent and Host', async () => {
    const server = await httpServer();
    const h = new Harness(cleanups, probe(server, { path: '/healthz?full=1' }));
    await h.start();
    await h.waitRound(1);
    const [request] = server.requests;
    assert.ok(request);
    assert.equal(request.method, 'GET');
    assert.equal(request.url, '/healthz?full=1');
    assert.equal(request.remoteAddress, '127.0.0.6');
    assert.equal(request.headers['user-agent'], 'istio-probe/1.0');
    assert.equal(request.headers['host'], `127.0.0.1:${server.port}`);
    assert.equal(request.headers['connection'], 'close');
    assert.deepEqual(h.messages('warn'), []);
  });

  it('sends the configured headers; a Host header sets the host, a User-Agent replaces the default', async () => {
    const server = await httpServer();
    const h = new Harness(
      cleanups,
      probe(server, {
        httpHeaders: [
          { name: 'Host', value: 'app.example.com' },
          { name: 'X-Probe', value: 'one' },
          { name: 'x-probe', value: 'two' },
          { name: 'User-Agent', value: 'my-checker/2' },
        ],
      }),
    );
    await h.start();
    await h.waitRound(1);
    const [request] = server.requests;
    assert.ok(request);
    assert.equal(request.headers['host'], 'app.example.com');
    assert.equal(request.headers['x-probe'], 'one, two');
    assert.equal(request.headers['user-agent'], 'my-checker/2');
    assert.equal(request.rawHeaders.filter((h) => h.toLowerCase() === 'host').length, 1);
  });

  it('probes the first instance IP when the probe names no host', async () => {
    const server = await httpServer();
    const h = new Harness(cleanups, probe(server), { instanceIps: ['127.0.0.1', '10.255.0.1'] });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.equal(server.requests[0]?.headers['host'], `127.0.0.1:${server.port}`);
  });

  it('probes localhost with REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION', async () => {
    const server = await httpServer();
    const h = new Harness(cleanups, probe(server), { instanceIps: ['10.255.0.1'], rewriteLocalhost: true });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.equal(server.requests[0]?.headers['host'], `localhost:${server.port}`);
    assert.equal(server.requests[0]?.remoteAddress, '127.0.0.6');
  });

  it('times out a server that never answers, then recovers', async () => {
    const server = await httpServer();
    server.behaviour = 'hang';
    const h = new Harness(cleanups, probe(server, {}, { timeoutSeconds: 2 }));
    await h.start();
    await waitUntil(() => server.requests.length === 1, 'the probe request');
    assert.equal(h.rounds(), 0);
    await h.clock.advance(2000);
    await h.waitRound(1);
    assert.deepEqual(h.reports, [
      {
        healthy: false,
        message: `Get "http://127.0.0.1:${server.port}/": context deadline exceeded (Client.Timeout exceeded while awaiting headers)`,
      },
    ]);

    server.behaviour = { status: 204 };
    await h.clock.advance(h.periodMs - 2000);
    await h.waitRound(2);
    assert.deepEqual(h.reports.at(-1), { healthy: true });
  });

  it('reports the connect error for a port nobody listens on', async () => {
    const port = await freePort();
    const h = new Harness(cleanups, { httpGet: { port, host: '127.0.0.1' } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [
      { healthy: false, message: `Get "http://127.0.0.1:${port}/": dial tcp 127.0.0.6:0->127.0.0.1:${port}: connect: connection refused` },
    ]);
  });

  it('reports a host name that does not resolve', async () => {
    const h = new Harness(cleanups, { httpGet: { port: 80, host: 'no-such-host.invalid' } });
    await h.start();
    await h.waitRound(1);
    assert.equal(h.reports.length, 1);
    // Offline resolvers answer "temporary failure" instead of NXDOMAIN.
    assert.match(
      h.reports[0]?.healthy === false ? h.reports[0].message : '',
      /^Get "http:\/\/no-such-host\.invalid:80\/": dial tcp: lookup no-such-host\.invalid: (no such host|temporary failure in name resolution)$/,
    );
  });

  it('probes HTTPS without verifying the certificate, the scheme in any case', async () => {
    const server = await httpServer('127.0.0.1', await localhostCertificate());
    const h = new Harness(cleanups, probe(server, { scheme: 'HTTPS', path: 'ready' }));
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.equal(server.requests[0]?.url, '/ready');
    assert.equal(server.requests[0]?.remoteAddress, '127.0.0.6');

    server.behaviour = { status: 500 };
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: false, message: 'status code was not from [200,400), bad code 500' });
    server.behaviour = { status: 200 };
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: true });
  });

  it('fails an HTTP probe against an HTTPS port without hanging', async () => {
    const server = await httpServer('127.0.0.1', await localhostCertificate());
    const h = new Harness(cleanups, probe(server));
    await h.start();
    await h.waitRound(1);
    // The TLS server drops the plaintext request: Go's client says EOF for a connection closed unanswered.
    assert.deepEqual(h.reports, [{ healthy: false, message: `Get "http://127.0.0.1:${server.port}/": EOF` }]);
  });

  it('falls back to the default source when ::6 cannot be bound, saying so once', async function () {
    const server = new TestHttpServer('::1');
    try {
      await server.listen();
    } catch {
      this.skip();
    }
    cleanups.add(() => server.stop());
    // Where ::6 is assigned (unusual), the probe simply comes from it.
    const canBindV6 = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '::1', port: server.port, localAddress: '::6' });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    const h = new Harness(cleanups, { httpGet: { port: server.port, host: '::1' } });
    await h.start();
    await h.waitRound(1);
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.equal(server.requests.at(-1)?.headers['host'], `[::1]:${server.port}`);
    if (canBindV6) {
      assert.equal(server.requests.at(-1)?.remoteAddress, '::6');
      assert.deepEqual(h.messages('warn'), []);
    } else {
      assert.equal(server.requests.at(-1)?.remoteAddress, '::1');
      assert.deepEqual(h.messages('warn'), [
        'cannot bind probe source address ::6 (cannot assign requested address); probing from the default source address, through inbound capture if it is installed',
      ]);
    }
  });
});
