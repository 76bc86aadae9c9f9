import assert from 'node:assert/strict';
import { status } from '@grpc/grpc-js';
import { Cleanups, Harness, TestGrpcHealthServer, freePort, waitUntil } from './health-test-support.js';
import { decodeHealthCheckResponse, encodeHealthCheckRequest } from './grpc-prober.js';

describe('gRPC readiness probe', () => {
  const cleanups = new Cleanups();
  afterEach(() => cleanups.run());

  async function grpcServer(implementHealth = true): Promise<TestGrpcHealthServer> {
    const server = await new TestGrpcHealthServer(implementHealth).listen();
    cleanups.add(() => server.stop());
    return server;
  }

  it('goes healthy, unhealthy on NOT_SERVING and while stopped, then healthy again', async () => {
    const server = await grpcServer();
    const h = new Harness(cleanups, { grpc: { port: server.port } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.deepEqual(server.requests[0]?.service, '');
    assert.match(server.requests[0]?.userAgent ?? '', /^istio-probe\/1\.0/);

    server.statuses.set('', 'NOT_SERVING');
    await h.tick();
    const notServing = `health rpc probe on port ${server.port} returned status NOT_SERVING`;
    assert.deepEqual(h.reports.at(-1), { healthy: false, message: notServing });

    server.statuses.set('', 'SERVING');
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: true });

    await server.stop();
    await h.tick();
    const last = h.reports.at(-1);
    assert.equal(last?.healthy, false);
    assert.match(
      last.healthy === false ? last.message : '',
      new RegExp(`^failed to connect health check grpc service on port ${server.port}: rpc error: code = Unavailable desc = .*ECONNREFUSED`),
    );

    await server.listen();
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: true });
    assert.equal(h.reports.length, 5);
    assert.equal(h.messages()[2], `failure threshold hit, marking as unhealthy: ${notServing}`);
  });

  it('asks about the configured service', async () => {
    const server = await grpcServer();
    server.statuses.set('app.v1.Orders', 'SERVING');
    server.statuses.set('', 'NOT_SERVING');
    const h = new Harness(cleanups, { grpc: { port: server.port, service: 'app.v1.Orders' } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.equal(server.requests[0]?.service, 'app.v1.Orders');
  });

  it('reports an unknown service with its status', async () => {
    const server = await grpcServer();
    const h = new Harness(cleanups, { grpc: { port: server.port, service: 'nope' } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [
      { healthy: false, message: 'health rpc probe failed with status NotFound: rpc error: code = NotFound desc = unknown service' },
    ]);
  });

  it('reports a server without the health service', async () => {
    const server = await grpcServer(false);
    const h = new Harness(cleanups, { grpc: { port: server.port } });
    await h.start();
    await h.waitRound(1);
    const [report] = h.reports;
    assert.equal(report?.healthy, false);
    assert.match(
      report.healthy === false ? report.message : '',
      new RegExp(`^service on port ${server.port} doesn't implement the grpc health protocol grpc.health.v1.Health: rpc error: code = Unimplemented desc = `),
    );
  });

  it('times out a server that never answers', async () => {
    const server = await grpcServer();
    server.statuses.set('', 'hang');
    const h = new Harness(cleanups, { grpc: { port: server.port }, timeoutSeconds: 3 });
    await h.start();
    await waitUntil(() => server.requests.length === 1, 'the health check call');
    await h.clock.advance(3000);
    await h.waitRound(1);
    assert.deepEqual(h.reports, [
      { healthy: false, message: 'health rpc probe timed out after 3s: rpc error: code = DeadlineExceeded desc = context deadline exceeded' },
    ]);
    server.statuses.set('', 'SERVING');
    await h.clock.advance(h.periodMs - 3000);
    await h.waitRound(2);
    assert.deepEqual(h.reports.at(-1), { healthy: true });
  });

  it('reports a port nobody listens on as a connect failure', async () => {
    const port = await freePort();
    const h = new Harness(cleanups, { grpc: { port } });
    await h.start();
    await h.waitRound(1);
    const [report] = h.reports;
    assert.match(report?.healthy === false ? report.message : '', new RegExp(`^failed to connect health check grpc service on port ${port}: `));
  });

  it('reports a status error the server returns', async () => {
    const server = await grpcServer();
    server.statuses.set('', { code: status.PERMISSION_DENIED, details: 'not you' });
    const h = new Harness(cleanups, { grpc: { port: server.port } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [
      { healthy: false, message: 'health rpc probe failed with status PermissionDenied: rpc error: code = PermissionDenied desc = not you' },
    ]);
  });

  it('encodes and decodes the two health messages', () => {
    assert.deepEqual([...encodeHealthCheckRequest('')], []);
    assert.deepEqual([...encodeHealthCheckRequest('ab')], [0x0a, 2, 0x61, 0x62]);
    assert.equal(decodeHealthCheckResponse(Uint8Array.from([0x08, 0x01])), 1);
    assert.equal(decodeHealthCheckResponse(Uint8Array.from([])), 0);
    // An unknown field before the status is skipped.
    assert.equal(decodeHealthCheckResponse(Uint8Array.from([0x12, 0x01, 0x7a, 0x08, 0x02])), 2);
  });
});
