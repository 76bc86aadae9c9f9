import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LogCapture } from '../../test/support/log-capture.js';
import { debugRequest } from './request.js';
import { waitForEnvoy } from './wait.js';

async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

describe('pilot-agent wait', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('waits until the readiness URL answers 200, then says Envoy is ready', async () => {
    const readyAt = Date.now() + 600;
    const server = createServer((_req, res) => {
      res.statusCode = Date.now() >= readyAt ? 200 : 503;
      res.end();
    });
    servers.push(server);
    const port = await listen(server);
    const capture = new LogCapture();
    const result = await waitForEnvoy({ timeoutSeconds: 5, requestTimeoutMillis: 200, periodMillis: 100, url: `http://127.0.0.1:${port}/healthz/ready` }, capture.root.scope('default'));
    assert.deepEqual(result, { code: 0 });
    await capture.waitFor('Waiting for Envoy proxy to be ready (timeout: 5 seconds)...');
    await capture.waitFor('Envoy is ready!');
  });

  it('gives up after the timeout with the last error, exit 255', async () => {
    const server = createServer((_req, res) => {
      res.statusCode = 503;
      res.end('not ready');
    });
    servers.push(server);
    const port = await listen(server);
    const capture = new LogCapture();
    const result = await waitForEnvoy({ timeoutSeconds: 1, requestTimeoutMillis: 200, periodMillis: 200, url: `http://127.0.0.1:${port}/healthz/ready` }, capture.root.scope('default'));
    assert.deepEqual(result, { code: 255, error: 'timeout waiting for Envoy proxy to become ready. Last error: HTTP status code 503' });
  });

  it('reports a connection failure as the last error', async () => {
    const probe = createServer();
    const port = await listen(probe); // bound then released: nobody listens there
    await new Promise((r) => probe.close(r));
    const capture = new LogCapture();
    const result = await waitForEnvoy({ timeoutSeconds: 1, requestTimeoutMillis: 200, periodMillis: 300, url: `http://127.0.0.1:${port}/healthz/ready` }, capture.root.scope('default'));
    assert.equal(result.code, 255);
    assert.match(result.error ?? '', /^timeout waiting for Envoy proxy to become ready\. Last error: .*ECONNREFUSED/);
  });
});

describe('pilot-agent request', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it('refuses ports outside the allowed list', async () => {
    assert.deepEqual(await debugRequest('GET', 'stats', undefined, 8080), { code: 255, error: 'debug port 8080 is not in allowed list [15000 15021 15020 15004]' });
  });

  it('prints the body of a request to an allowed local port, and fails on a status above 399 other than 404', async function () {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push(`${req.method ?? ''} ${req.url ?? ''} ${body}`);
        res.statusCode = req.url === '/missing' ? 404 : req.url === '/broken' ? 500 : 200;
        res.end(req.url === '/broken' ? 'boom' : 'stats body');
      });
    });
    servers.push(server);
    try {
      await listen(server, 15004);
    } catch {
      this.skip(); // 15004 is taken on this machine; the allowed-port rule is tested above
    }
    assert.deepEqual(await debugRequest('GET', '/stats', undefined, 15004), { code: 0, body: 'stats body' });
    assert.deepEqual(await debugRequest('post', 'logging?level=debug', 'x', 15004), { code: 0, body: 'stats body' });
    assert.deepEqual(await debugRequest('GET', 'missing', undefined, 15004), { code: 0, body: 'stats body' });
    assert.deepEqual(await debugRequest('GET', 'broken', undefined, 15004), { code: 255, error: 'received unsuccessful status code 500: boom' });
    assert.deepEqual(seen, ['GET /stats ', 'POST /logging?level=debug x', 'GET /missing ', 'GET /broken ']);
  });
});
