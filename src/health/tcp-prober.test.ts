import assert from 'node:assert/strict';
import { Cleanups, Harness, TestTcpServer, freePort } from './health-test-support.js';
import { TcpProber } from './tcp-prober.js';

describe('TCP readiness probe', () => {
  const cleanups = new Cleanups();
  afterEach(() => cleanups.run());

  it('goes healthy, unhealthy while the listener is down, then healthy again', async () => {
    const server = await new TestTcpServer().listen();
    cleanups.add(() => server.stop());
    const h = new Harness(cleanups, { tcpSocket: { port: server.port }, failureThreshold: 2 });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.equal(server.accepted, 1);

    await server.stop();
    const refused = `dial tcp 127.0.0.1:${server.port}: connect: connection refused`;
    await h.tick();
    assert.equal(h.lastRound(), refused);
    assert.deepEqual(h.reports, [{ healthy: true }], 'one failure of two');
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }, { healthy: false, message: refused }]);

    await server.listen();
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }, { healthy: false, message: refused }, { healthy: true }]);
    assert.deepEqual(h.messages().slice(1), [
      'success threshold hit, marking as healthy',
      `failure threshold hit, marking as unhealthy: ${refused}`,
      'success threshold hit, marking as healthy',
    ]);
  });

  it('connects to the probe host over the first instance IP', async () => {
    const server = await new TestTcpServer().listen();
    cleanups.add(() => server.stop());
    const h = new Harness(cleanups, { tcpSocket: { port: server.port, host: '127.0.0.1' } }, { instanceIps: ['10.255.0.1'] });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
  });

  it('reports the connect error for a port nobody listens on', async () => {
    const port = await freePort();
    const h = new Harness(cleanups, { tcpSocket: { port } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: `dial tcp 127.0.0.1:${port}: connect: connection refused` }]);
  });

  it('words a timeout as Go does', async () => {
    const prober = new TcpProber('10.255.255.1', 9);
    const result = await prober.probe({ signal: AbortSignal.abort(), timeoutMs: 1000 });
    assert.deepEqual(result, { healthy: false, message: 'dial tcp 10.255.255.1:9: i/o timeout' });
  });
});
