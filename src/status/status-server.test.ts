import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Gauge } from 'prom-client';
import { LogCapture } from '../../test/support/log-capture.js';
import { TempDirs } from '../../test/support/tmp.js';
import { DNS_NOT_READY_MESSAGE } from '../dns/index.js';
import { AgentError } from '../errors.js';
import { AgentMetrics } from '../metrics/index.js';
import {
  LOCALHOST_ONLY_MESSAGE,
  StatusServer,
  TERMINATING_MESSAGE,
  conditionCheck,
  filesExistCheck,
  type ReadinessCheck,
  type StatusServerDeps,
} from './index.js';
import { FakeEnvoy, freePort, parsePrometheusText, request, type PrometheusExposition } from './status-test-support.js';

const NOT_RECEIVED =
  'config not received from XDS server (is Istiod running?): cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected';

const ENVOY_PROMETHEUS = [
  '# TYPE envoy_cluster_upstream_cx_total counter',
  'envoy_cluster_upstream_cx_total{envoy_cluster_name="xds-grpc"} 1',
  'envoy_cluster_upstream_cx_total{envoy_cluster_name="prometheus_stats"} 3',
  '# TYPE envoy_server_live gauge',
  'envoy_server_live{} 1',
  '# TYPE envoy_cluster_upstream_rq_time histogram',
  'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="xds-grpc",le="0.5"} 0',
  'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="xds-grpc",le="+Inf"} 2',
  'envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="xds-grpc"} 12.5',
  'envoy_cluster_upstream_rq_time_count{envoy_cluster_name="xds-grpc"} 2',
  // Envoy's output ends without a newline here, to prove the merge adds one.
].join('\n');

/** A non-loopback IPv4 address of this machine, to send requests from; undefined if there is none. */
function externalAddress(): string | undefined {
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

function sampleValue(exposition: PrometheusExposition, name: string, labels: Record<string, string> = {}): number | undefined {
  const hit = exposition.samples.find(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v) && Object.keys(s.labels).length === Object.keys(labels).length,
  );
  return hit?.value;
}

describe('StatusServer', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const dirs = new TempDirs();
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    dirs.cleanup();
  });

  interface Harness {
    server: StatusServer;
    logs: LogCapture;
    metrics: AgentMetrics;
    calls: { quit: number; drain: number };
    state: { terminating: boolean };
    get(path: string, options?: Parameters<typeof request>[2]): ReturnType<typeof request>;
  }

  async function startFakeEnvoy(): Promise<FakeEnvoy> {
    const envoy = new FakeEnvoy();
    await envoy.start();
    cleanups.push(() => envoy.close());
    return envoy;
  }

  async function startServer(overrides: Partial<StatusServerDeps> = {}): Promise<Harness> {
    const logs = new LogCapture();
    const metrics = new AgentMetrics();
    const calls = { quit: 0, drain: 0 };
    const state = { terminating: false };
    const server = new StatusServer({
      port: 0,
      host: '127.0.0.1',
      log: logs.root.scope('status'),
      metrics,
      readinessChecks: () => [],
      onQuit: () => calls.quit++,
      onDrain: () => calls.drain++,
      isTerminating: () => state.terminating,
      ...overrides,
    });
    cleanups.push(() => server.close());
    await server.start(new AbortController().signal);
    return { server, logs, metrics, calls, state, get: (p, options) => request(server.port, p, options) };
  }

  function withEnvoy(envoy: FakeEnvoy): Pick<StatusServerDeps, 'envoy'> {
    return { envoy: { adminPort: envoy.adminPort, prometheusPort: envoy.prometheusPort } };
  }

  describe('lifecycle', () => {
    it('logs the port it opened and answers 404 for unknown paths', async () => {
      const h = await startServer();
      assert.ok(h.logs.find(`Opening status port ${h.server.port}`).length === 1);
      const res = await h.get('/nope');
      assert.equal(res.status, 404);
      assert.equal(res.text, '404 page not found\n');
    });

    it('answers Kubernetes app probes with 400 since none is configured on a VM', async () => {
      const h = await startServer();
      const res = await h.get('/app-health/web/readyz');
      assert.equal(res.status, 400);
      assert.equal(res.text, 'app prober config does not exists for /app-health/web/readyz\n');
    });

    it('fails start when the status port is already taken', async () => {
      const first = await startServer();
      const second = new StatusServer({
        port: first.server.port,
        host: '127.0.0.1',
        log: first.logs.root.scope('status'),
        metrics: first.metrics,
        readinessChecks: () => [],
        onQuit: () => undefined,
        onDrain: () => undefined,
        isTerminating: () => false,
      });
      cleanups.push(() => second.close());
      await assert.rejects(second.start(new AbortController().signal), (err: unknown) => {
        assert.ok(err instanceof AgentError);
        assert.equal(err.code, 'SOCKET_LISTEN_FAILED');
        assert.match(err.message, /EADDRINUSE/);
        return true;
      });
    });

    it('closes promptly while a client holds an idle keep-alive connection', async () => {
      const h = await startServer();
      const agent = new http.Agent({ keepAlive: true });
      cleanups.push(() => agent.destroy());
      assert.equal((await h.get('/healthz/ready', { agent })).status, 200);
      const started = Date.now();
      await h.server.close();
      assert.ok(Date.now() - started < 1000, `close took ${Date.now() - started}ms`);
      await assert.rejects(h.get('/healthz/ready'), /ECONNREFUSED/);
      await h.server.close(); // idempotent
    });

    it('refuses to start after close', async () => {
      const h = await startServer();
      await h.server.close();
      await assert.rejects(h.server.start(new AbortController().signal), /closed/);
    });
  });

  describe('/healthz/ready with Envoy', () => {
    it('fails until Envoy has accepted CDS and LDS and is live, then passes and records the startup time', async () => {
      const envoy = await startFakeEnvoy();
      const h = await startServer(withEnvoy(envoy));

      let res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.equal(res.text, NOT_RECEIVED);
      await h.logs.waitFor(`Envoy proxy is NOT ready: ${NOT_RECEIVED}`);
      const request0 = envoy.adminRequests[0];
      assert.ok(request0);
      const url = new URL(request0.path, 'http://x');
      assert.equal(url.pathname, '/stats');
      assert.ok(url.searchParams.has('usedonly'));
      assert.equal(url.searchParams.get('filter'), String.raw`^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$`);

      envoy.setReady();
      res = await h.get('/healthz/ready');
      assert.equal(res.status, 200);
      assert.equal(res.text, '');
      await h.logs.waitFor('Envoy proxy is ready');
      await h.logs.waitFor('Readiness succeeded in ');
      const gauge = h.metrics.registry.getSingleMetric('istio_agent_startup_duration_seconds');
      assert.ok(gauge instanceof Gauge);
      const value = (await gauge.get()).values[0]?.value ?? 0;
      assert.ok(value > 0, `startup duration ${value}`);
    });

    it('says when config was rejected or only partly received', async () => {
      const envoy = await startFakeEnvoy();
      const h = await startServer(withEnvoy(envoy));
      envoy.stats.set('cluster_manager.cds.update_success', 1);
      envoy.stats.set('listener_manager.lds.update_rejected', 2);
      let res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.equal(
        res.text,
        'config received from XDS server, but was rejected: cds updates: 1 successful, 0 rejected; lds updates: 0 successful, 2 rejected',
      );
      envoy.stats.delete('listener_manager.lds.update_rejected');
      res = await h.get('/healthz/ready');
      assert.equal(
        res.text,
        'config not fully received from XDS server: cds updates: 1 successful, 0 rejected; lds updates: 0 successful, 0 rejected',
      );
    });

    it('waits for the server to be LIVE and the workers to start', async () => {
      const envoy = await startFakeEnvoy();
      const h = await startServer(withEnvoy(envoy));
      envoy.setReady();
      envoy.stats.set('server.state', 3);
      envoy.stats.set('listener_manager.workers_started', 0);
      let res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.equal(res.text, 'server is not live, current state is: INITIALIZING');
      envoy.stats.set('server.state', 0);
      res = await h.get('/healthz/ready');
      assert.equal(res.text, 'workers have not yet started');
      envoy.stats.set('listener_manager.workers_started', 1);
      assert.equal((await h.get('/healthz/ready')).status, 200);
      const filters = envoy.adminRequests.map((r) => new URL(r.path, 'http://x').searchParams.get('filter'));
      assert.ok(filters.includes(String.raw`^(server\.state|listener_manager\.workers_started)`));
    });

    it('does not ask Envoy again once both checks have passed', async () => {
      const envoy = await startFakeEnvoy();
      const h = await startServer(withEnvoy(envoy));
      envoy.setReady();
      assert.equal((await h.get('/healthz/ready')).status, 200);
      const asked = envoy.adminRequests.length;
      envoy.stats.clear();
      envoy.stats.set('server.state', 1);
      assert.equal((await h.get('/healthz/ready')).status, 200);
      assert.equal(envoy.adminRequests.length, asked);
    });

    it('fails once the agent is terminating, even after having been ready', async () => {
      const envoy = await startFakeEnvoy();
      const h = await startServer(withEnvoy(envoy));
      envoy.setReady();
      assert.equal((await h.get('/healthz/ready')).status, 200);
      h.state.terminating = true;
      const res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.equal(res.text, TERMINATING_MESSAGE);
      assert.equal(res.text, 'server is terminated: received signal: terminated');
      await h.logs.waitFor(`Envoy proxy is NOT ready: ${TERMINATING_MESSAGE}`);
    });

    it('runs the extra checks in order after Envoy, failing with the first one not ready', async () => {
      const envoy = await startFakeEnvoy();
      const state = { dns: false, cert: false };
      const asked: string[] = [];
      const traced = (check: ReadinessCheck): ReadinessCheck => ({
        name: check.name,
        check: () => {
          asked.push(check.name);
          return check.check();
        },
      });
      const checks = [
        traced(conditionCheck('dns', () => state.dns, DNS_NOT_READY_MESSAGE)),
        traced(conditionCheck('cert', () => state.cert, '/etc/certs/cert-chain.pem does not exist')),
      ];
      const h = await startServer({ ...withEnvoy(envoy), readinessChecks: () => checks });

      let res = await h.get('/healthz/ready');
      assert.equal(res.text, NOT_RECEIVED);
      assert.deepEqual(asked, [], 'extra checks wait for Envoy');

      envoy.setReady();
      res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.equal(res.text, DNS_NOT_READY_MESSAGE);
      assert.deepEqual(asked, ['dns']);

      state.dns = true;
      res = await h.get('/healthz/ready');
      assert.equal(res.text, '/etc/certs/cert-chain.pem does not exist');

      state.cert = true;
      assert.equal((await h.get('/healthz/ready')).status, 200);
    });

    it('logs NOT ready once per reason rather than on every probe, and the recovery once', async () => {
      const envoy = await startFakeEnvoy();
      const h = await startServer(withEnvoy(envoy));
      for (let i = 0; i < 3; i++) assert.equal((await h.get('/healthz/ready')).status, 503);
      assert.equal(h.logs.find('Envoy proxy is NOT ready').length, 1);
      envoy.stats.set('cluster_manager.cds.update_success', 1);
      for (let i = 0; i < 2; i++) assert.equal((await h.get('/healthz/ready')).status, 503);
      assert.equal(h.logs.find('Envoy proxy is NOT ready').length, 2);
      envoy.setReady();
      for (let i = 0; i < 3; i++) assert.equal((await h.get('/healthz/ready')).status, 200);
      assert.equal(h.logs.find('Envoy proxy is ready').length, 1);
      assert.equal(h.logs.find('Readiness succeeded in').length, 1);
      const line = h.logs.find('Envoy proxy is NOT ready')[0] ?? '';
      assert.match(line, /\twarn\tstatus\t/);
    });

    it('fails while Envoy admin is unreachable', async () => {
      const h = await startServer({ envoy: { adminPort: await freePort(), prometheusPort: await freePort() } });
      const res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.match(res.text, /^failed retrieving Envoy stats: .*ECONNREFUSED/);
    });
  });

  describe('/healthz/ready without Envoy', () => {
    it('is just the extra checks, and fails once terminating', async () => {
      let connected = false;
      const h = await startServer({
        readinessChecks: () => [conditionCheck('xds', () => connected, 'xDS proxy is not connected to istiod')],
      });
      let res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.equal(res.text, 'xDS proxy is not connected to istiod');
      connected = true;
      res = await h.get('/healthz/ready');
      assert.equal(res.status, 200);
      await h.logs.waitFor('Readiness succeeded in ');
      h.state.terminating = true;
      res = await h.get('/healthz/ready');
      assert.equal(res.status, 503);
      assert.equal(res.text, TERMINATING_MESSAGE);
    });

    it('waits for the certificate files the gRPC bootstrap points at', async () => {
      const dir = dirs.make();
      const files = ['cert-chain.pem', 'key.pem', 'root-cert.pem'].map((f) => path.join(dir, f));
      const h = await startServer({ readinessChecks: () => [filesExistCheck('certs', () => files)] });
      let res = await h.get('/healthz/ready');
      assert.equal(res.text, `${files[0]} does not exist`);
      writeFileSync(files[0] ?? '', 'x');
      writeFileSync(files[1] ?? '', 'x');
      res = await h.get('/healthz/ready');
      assert.equal(res.text, `${files[2]} does not exist`);
      writeFileSync(files[2] ?? '', 'x');
      assert.equal((await h.get('/healthz/ready')).status, 200);
    });
  });

  describe('/stats/prometheus', () => {
    it('merges the agent metrics and Envoy metrics into one valid exposition', async () => {
      const envoy = await startFakeEnvoy();
      envoy.prometheus = ENVOY_PROMETHEUS;
      const h = await startServer(withEnvoy(envoy));
      h.metrics.xdsProxyRequests.inc(3);
      const res = await h.get('/stats/prometheus?usedonly&filter=envoy_cluster', {
        headers: {
          'User-Agent': 'Prometheus/2.53.0',
          Accept: 'application/openmetrics-text;version=1.0.0;q=0.9,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
          'X-Prometheus-Scrape-Timeout-Seconds': '10',
        },
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      const exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'istio_agent_xds_proxy_requests'), 3);
      assert.equal(sampleValue(exposition, 'istio_agent_scrapes_total'), 1);
      assert.equal(sampleValue(exposition, 'envoy_cluster_upstream_cx_total', { envoy_cluster_name: 'prometheus_stats' }), 3);
      assert.equal(sampleValue(exposition, 'envoy_cluster_upstream_rq_time_count', { envoy_cluster_name: 'xds-grpc' }), 2);
      assert.equal(exposition.types.get('envoy_cluster_upstream_rq_time'), 'histogram');
      assert.ok(res.text.search(/^# TYPE istio_agent_/m) < res.text.search(/^# TYPE envoy_/m), 'agent metrics come first');

      const forwarded = envoy.prometheusRequests[0];
      assert.ok(forwarded);
      assert.equal(forwarded.path, '/stats/prometheus?usedonly&filter=envoy_cluster');
      assert.equal(forwarded.headers['user-agent'], 'Prometheus/2.53.0');
      assert.equal(forwarded.headers['accept'], 'text/plain;version=0.0.4;q=0.5,*/*;q=0.1');
      assert.equal(forwarded.headers['x-prometheus-scrape-timeout-seconds'], '10');
    });

    it('serves the same merge on /metrics', async () => {
      const envoy = await startFakeEnvoy();
      envoy.prometheus = ENVOY_PROMETHEUS;
      const h = await startServer(withEnvoy(envoy));
      const res = await h.get('/metrics');
      assert.equal(res.status, 200);
      const exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'envoy_server_live'), 1);
      assert.ok(exposition.types.has('istio_agent_dns_requests_total'));
    });

    it('still answers with the agent metrics while Envoy is down, counting each failure', async () => {
      const h = await startServer({ envoy: { adminPort: await freePort(), prometheusPort: await freePort() } });
      let res = await h.get('/stats/prometheus');
      assert.equal(res.status, 200);
      let exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'istio_agent_scrape_failures_total', { type: 'envoy' }), 1);
      assert.doesNotMatch(res.text, /^envoy_/m, 'no Envoy series');
      res = await h.get('/stats/prometheus');
      exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'istio_agent_scrape_failures_total', { type: 'envoy' }), 2);
      assert.equal(sampleValue(exposition, 'istio_agent_scrapes_total'), 2);
      await h.logs.waitFor('failed scraping envoy metrics: ');
    });

    it('skips an Envoy answer other than 200', async () => {
      const envoy = await startFakeEnvoy();
      envoy.prometheus = 'garbage that must not be merged {';
      envoy.prometheusStatus = 500;
      const h = await startServer(withEnvoy(envoy));
      const res = await h.get('/stats/prometheus');
      const exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'istio_agent_scrape_failures_total', { type: 'envoy' }), 1);
    });

    it('gives up on a hung Envoy after the scraper\'s timeout', async () => {
      const envoy = await startFakeEnvoy();
      envoy.prometheusHangs = true;
      const h = await startServer(withEnvoy(envoy));
      const started = Date.now();
      const res = await h.get('/stats/prometheus', { headers: { 'X-Prometheus-Scrape-Timeout-Seconds': '0.3' } });
      const took = Date.now() - started;
      assert.equal(res.status, 200);
      assert.ok(took >= 250 && took < 3000, `took ${took}ms`);
      assert.equal(sampleValue(parsePrometheusText(res.text), 'istio_agent_scrape_failures_total', { type: 'envoy' }), 1);
    });

    it('passes 10,000 Envoy series through, gzipped when the scraper accepts it', async () => {
      const envoy = await startFakeEnvoy();
      const lines = ['# TYPE envoy_test_series counter'];
      for (let i = 0; i < 10_000; i++) lines.push(`envoy_test_series{envoy_cluster_name="cluster-${i}"} ${i}`);
      envoy.prometheus = lines.join('\n') + '\n';
      const h = await startServer(withEnvoy(envoy));

      const plain = await h.get('/stats/prometheus');
      const count = (text: string): number => parsePrometheusText(text).samples.filter((s) => s.name === 'envoy_test_series').length;
      assert.equal(count(plain.text), 10_000);

      const zipped = await h.get('/stats/prometheus', { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(zipped.headers['content-encoding'], 'gzip');
      assert.ok(zipped.body.length < plain.body.length / 4);
      const text = gunzipSync(zipped.body).toString('utf8');
      assert.equal(count(text), 10_000);
      assert.equal(sampleValue(parsePrometheusText(text), 'envoy_test_series', { envoy_cluster_name: 'cluster-9999' }), 9999);
    });

    it('appends the application metrics after Envoy\'s, and counts their failures', async () => {
      const envoy = await startFakeEnvoy();
      envoy.prometheus = ENVOY_PROMETHEUS;
      const app = await startFakeEnvoy();
      app.prometheus = '# HELP app_requests_total Requests.\n# TYPE app_requests_total counter\napp_requests_total{code="200"} 42\n# EOF\n';
      const h = await startServer({ ...withEnvoy(envoy), appMetricsUrl: `http://127.0.0.1:${app.prometheusPort}/stats/prometheus` });
      let res = await h.get('/stats/prometheus');
      let exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'app_requests_total', { code: '200' }), 42);
      assert.ok(res.text.search(/^# TYPE envoy_/m) < res.text.search(/^# TYPE app_requests_total/m));
      assert.ok(!res.text.includes('# EOF'));

      await app.close();
      res = await h.get('/stats/prometheus');
      exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'istio_agent_scrape_failures_total', { type: 'application' }), 1);
      assert.equal(sampleValue(exposition, 'envoy_server_live'), 1);
    });

    it('serves only the agent metrics when Envoy is disabled', async () => {
      const h = await startServer();
      const res = await h.get('/stats/prometheus');
      const exposition = parsePrometheusText(res.text);
      assert.equal(sampleValue(exposition, 'istio_agent_scrapes_total'), 1);
      assert.equal(sampleValue(exposition, 'istio_agent_scrape_failures_total', { type: 'envoy' }), undefined);
    });
  });

  describe('/quitquitquit and /drain', () => {
    it('quits on POST from localhost', async () => {
      const h = await startServer();
      const res = await h.get('/quitquitquit', { method: 'POST' });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'OK');
      assert.deepEqual(h.calls, { quit: 1, drain: 0 });
      await h.logs.waitFor('handling /quitquitquit, notifying pilot-agent to exit');
    });

    it('drains on POST from localhost, also over IPv6 loopback', async function () {
      const h = await startServer({ host: '::1' });
      const res = await h.get('/drain', { method: 'POST', host: '::1' });
      assert.equal(res.status, 200);
      assert.equal(res.text, 'OK');
      assert.deepEqual(h.calls, { quit: 0, drain: 1 });
      await h.logs.waitFor('handling /drain, starting drain');
    });

    it('refuses methods other than POST with 405', async () => {
      const h = await startServer();
      for (const p of ['/quitquitquit', '/drain']) {
        for (const method of ['GET', 'PUT']) {
          const res = await h.get(p, { method });
          assert.equal(res.status, 405, `${method} ${p}`);
          assert.equal(res.text, 'Method Not Allowed\n');
        }
      }
      assert.deepEqual(h.calls, { quit: 0, drain: 0 });
    });

    it('refuses requests from a non-loopback source with 403', async function () {
      const address = externalAddress();
      if (!address) this.skip(); // isLoopbackAddress itself is covered in scrape.test.ts
      const h = await startServer({ host: '0.0.0.0', debugNameTable: () => ({ table: {} }) });
      for (const p of ['/quitquitquit', '/drain', '/debug/ndsz']) {
        const res = await h.get(p, { method: 'POST', host: address, localAddress: address });
        assert.equal(res.status, 403, p);
        assert.equal(res.text, `${LOCALHOST_ONLY_MESSAGE}\n`);
        assert.equal(res.text, 'Only requests from localhost are allowed\n');
      }
      assert.deepEqual(h.calls, { quit: 0, drain: 0 });
      // The same server still serves readiness and metrics to anyone.
      assert.equal((await h.get('/healthz/ready', { host: address, localAddress: address })).status, 200);
      assert.equal((await h.get('/stats/prometheus', { host: address, localAddress: address })).status, 200);
    });
  });

  describe('/debug/ndsz', () => {
    it('answers 404 {} before the first NameTable, then the table as JSON', async () => {
      const nds: { table?: unknown } = {};
      const h = await startServer({ debugNameTable: () => nds.table });
      let res = await h.get('/debug/ndsz');
      assert.equal(res.status, 404);
      assert.equal(res.text, '{}');
      const table = { table: { 'reviews.ns2.svc.cluster.local': { ips: ['10.10.10.10'], registry: 'Kubernetes', shortname: 'reviews', namespace: 'ns2' } } };
      nds.table = table;
      res = await h.get('/debug/ndsz');
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(res.text), table);
    });

    it('answers 404 {} when DNS is off', async () => {
      const h = await startServer();
      const res = await h.get('/debug/ndsz');
      assert.equal(res.status, 404);
      assert.equal(res.text, '{}');
    });
  });
});
