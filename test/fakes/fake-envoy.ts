/**
 * A fake Envoy for tests: takes Envoy's command line, reads the bootstrap it is given (`-c`), serves
 * the admin API bits the agent uses (`/ready`, `/stats`, `/stats/prometheus`, `/drain_listeners`) on
 * the bootstrap's admin port, and exits on SIGTERM/SIGINT like Envoy. Controlled by the environment:
 *
 *   FAKE_ENVOY_RECORD   file that gets one JSON line per event (argv, admin requests)
 *   FAKE_ENVOY_STATE    JSON file re-read per request: { cds, lds, rejected, state, workers, active }
 *   FAKE_ENVOY_EXIT_AFTER_MS / FAKE_ENVOY_EXIT_CODE   crash after a while
 *   FAKE_ENVOY_SERIES   how many Prometheus series /stats/prometheus returns (default 3)
 *   FAKE_ENVOY_ADMIN_PORT   overrides the bootstrap's admin port
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const args = process.argv.slice(2);
const record = (event: Record<string, unknown>): void => {
  const file = process.env['FAKE_ENVOY_RECORD'];
  if (file) appendFileSync(file, `${JSON.stringify(event)}\n`);
};
record({ event: 'start', args, pid: process.pid });

interface FakeState {
  cds?: number;
  lds?: number;
  rejected?: number;
  state?: number;
  workers?: number;
  active?: number;
}

function state(): FakeState {
  const file = process.env['FAKE_ENVOY_STATE'];
  if (!file) return { cds: 1, lds: 1, state: 0, workers: 1, active: 0 };
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as FakeState;
  } catch {
    return {};
  }
}

interface SocketAddress {
  address?: { socket_address?: { port_value?: number } };
}

function readBootstrap(): { admin?: SocketAddress; static_resources?: { listeners?: SocketAddress[] } } {
  try {
    return JSON.parse(readFileSync(args[args.indexOf('-c') + 1] ?? '', 'utf8')) as ReturnType<typeof readBootstrap>;
  } catch {
    return {};
  }
}

function adminPort(): number {
  const override = process.env['FAKE_ENVOY_ADMIN_PORT'];
  if (override) return Number(override);
  return readBootstrap().admin?.address?.socket_address?.port_value ?? 15000;
}

/** Ports of the bootstrap's listeners that route /stats/prometheus (Envoy's 15090), served like the admin API. */
function prometheusPorts(): number[] {
  return (readBootstrap().static_resources?.listeners ?? [])
    .filter((listener) => JSON.stringify(listener).includes('/stats/prometheus'))
    .flatMap((listener) => listener.address?.socket_address?.port_value ?? []);
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  record({ event: 'admin', method: req.method, url });
  const s = state();
  if (url.startsWith('/ready')) {
    res.statusCode = s.state === 0 ? 200 : 503;
    res.end(s.state === 0 ? 'LIVE\n' : 'PRE_INITIALIZING\n');
  } else if (url.startsWith('/drain_listeners') && req.method === 'POST') {
    res.end('OK\n');
  } else if (url.startsWith('/stats/prometheus')) {
    const count = Number(process.env['FAKE_ENVOY_SERIES'] ?? 3);
    const lines = ['# TYPE envoy_cluster_upstream_cx_total counter'];
    for (let i = 0; i < count; i++) lines.push(`envoy_cluster_upstream_cx_total{cluster_name="outbound|80||svc-${i}.example.com"} ${i}`);
    res.setHeader('content-type', 'text/plain; version=0.0.4');
    res.end(`${lines.join('\n')}\n`);
  } else if (url.startsWith('/stats')) {
    const success = (n: number | undefined) => n ?? 0;
    res.end(
      [
        `cluster_manager.cds.update_rejected: ${success(s.rejected)}`,
        `cluster_manager.cds.update_success: ${success(s.cds)}`,
        `listener_manager.lds.update_rejected: ${success(s.rejected)}`,
        `listener_manager.lds.update_success: ${success(s.lds)}`,
        `listener_manager.workers_started: ${success(s.workers)}`,
        `server.state: ${s.state ?? 0}`,
        `listener.0.0.0.0_15006.downstream_cx_active: ${success(s.active)}`,
        `listener.admin.downstream_cx_active: 1`,
        '',
      ].join('\n'),
    );
  } else {
    res.statusCode = 404;
    res.end();
  }
});
server.listen(adminPort(), '127.0.0.1');
const extra = prometheusPorts().map((port) => {
  const listener = createServer((req, res) => server.emit('request', req, res));
  listener.listen(port, '127.0.0.1');
  return listener;
});

const stop = (signal: string) => {
  record({ event: 'signal', signal });
  server.close();
  for (const listener of extra) listener.close();
  process.exit(0);
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

const exitAfter = process.env['FAKE_ENVOY_EXIT_AFTER_MS'];
if (exitAfter) {
  setTimeout(() => {
    record({ event: 'crash' });
    process.exit(Number(process.env['FAKE_ENVOY_EXIT_CODE'] ?? 1));
  }, Number(exitAfter));
}
