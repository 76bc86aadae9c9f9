import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { listenOn } from '../../test/support/ports.js';

export interface RecordedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * A fake Envoy for status-server tests: an admin server answering `/stats?usedonly&filter=` in Envoy's
 * plain `name: value` format from `stats`, and a Prometheus server answering `/stats/prometheus` with
 * `prometheus`. Both on 127.0.0.1 ephemeral ports; every request is recorded.
 */
export class FakeEnvoy {
  readonly stats = new Map<string, number>();
  prometheus = '';
  /** Answer `/stats/prometheus` with this status instead of 200. */
  prometheusStatus = 200;
  /** Never answer `/stats/prometheus` (the connection is cut on close). */
  prometheusHangs = false;
  readonly adminRequests: RecordedRequest[] = [];
  readonly prometheusRequests: RecordedRequest[] = [];
  readonly #admin: http.Server;
  readonly #prometheus: http.Server;

  constructor() {
    this.#admin = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      this.adminRequests.push({ path: req.url ?? '', headers: req.headers });
      if (url.pathname !== '/stats') {
        res.writeHead(404).end();
        return;
      }
      const filter = url.searchParams.get('filter');
      const pattern = filter === null ? undefined : new RegExp(filter);
      const lines = [...this.stats].filter(([name]) => !pattern || pattern.test(name)).map(([name, value]) => `${name}: ${value}\n`);
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=UTF-8' }).end(lines.sort().join(''));
    });
    this.#prometheus = http.createServer((req, res) => {
      this.prometheusRequests.push({ path: req.url ?? '', headers: req.headers });
      if (!(req.url ?? '').startsWith('/stats/prometheus')) {
        res.writeHead(404).end();
        return;
      }
      if (this.prometheusHangs) return;
      res.writeHead(this.prometheusStatus, { 'Content-Type': 'text/plain; version=0.0.4' }).end(this.prometheus);
    });
  }

  get adminPort(): number {
    return (this.#admin.address() as AddressInfo).port;
  }

  get prometheusPort(): number {
    return (this.#prometheus.address() as AddressInfo).port;
  }

  /** Sets the counters and gauges of a fully started Envoy. */
  setReady(): void {
    this.stats.set('cluster_manager.cds.update_success', 1);
    this.stats.set('listener_manager.lds.update_success', 1);
    this.stats.set('server.state', 0);
    this.stats.set('listener_manager.workers_started', 1);
  }

  async start(): Promise<void> {
    await Promise.all([listenOn(this.#admin, 0), listenOn(this.#prometheus, 0)]);
  }

  async close(): Promise<void> {
    await Promise.all([shut(this.#admin), shut(this.#prometheus)]);
  }
}

export { freePort } from '../../test/support/ports.js';

function shut(server: http.Server): Promise<void> {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

export interface TestResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/** One HTTP request on a fresh connection (no keep-alive, so nothing outlives the test). */
export function request(
  port: number,
  path: string,
  options: { method?: string; headers?: http.OutgoingHttpHeaders; host?: string; localAddress?: string; agent?: http.Agent } = {},
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: options.host ?? '127.0.0.1',
        port,
        path,
        method: options.method ?? 'GET',
        headers: options.headers,
        localAddress: options.localAddress,
        agent: options.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

export interface PrometheusSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PrometheusExposition {
  /** Family name → declared type. */
  types: Map<string, string>;
  samples: PrometheusSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Readonly<Record<string, readonly string[]>> = {
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['_sum', '_count'],
};

/**
 * A strict parser for the Prometheus text format 0.0.4, for asserting that a merged scrape is one
 * valid exposition: every line well formed, the text ends with a newline, one TYPE per family and
 * before its samples, and each family's lines contiguous. Throws with the line number otherwise.
 */
export function parsePrometheusText(text: string): PrometheusExposition {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  const types = new Map<string, string>();
  const helps = new Set<string>();
  const finished = new Set<string>();
  const samples: PrometheusSample[] = [];
  let current: string | undefined;
  const enter = (family: string, lineNo: number): void => {
    if (family === current) return;
    if (finished.has(family)) throw new Error(`line ${lineNo}: lines of ${family} are not contiguous`);
    if (current !== undefined) finished.add(current);
    current = family;
  };
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, i) => {
    const lineNo = i + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, keyword, name = '', rest = ''] = m;
      if (!METRIC_NAME.test(name)) throw new Error(`line ${lineNo}: bad metric name ${name}`);
      enter(name, lineNo);
      if (keyword === 'TYPE') {
        if (!TYPES.has(rest.trim())) throw new Error(`line ${lineNo}: bad type ${rest}`);
        if (types.has(name)) throw new Error(`line ${lineNo}: second TYPE line for ${name}`);
        if (samples.some((s) => familyOf(s.name, types) === name)) throw new Error(`line ${lineNo}: TYPE for ${name} after its samples`);
        types.set(name, rest.trim());
      } else {
        if (helps.has(name)) throw new Error(`line ${lineNo}: second HELP line for ${name}`);
        helps.add(name);
      }
      return;
    }
    const sample = parseSample(line, lineNo);
    enter(familyOf(sample.name, types), lineNo);
    samples.push(sample);
  });
  return { types, samples };
}

function familyOf(name: string, types: ReadonlyMap<string, string>): string {
  for (const [type, suffixes] of Object.entries(SUFFIXES)) {
    for (const suffix of suffixes) {
      if (!name.endsWith(suffix)) continue;
      const family = name.slice(0, -suffix.length);
      if (types.get(family) === type) return family;
    }
  }
  return name;
}

function parseSample(line: string, lineNo: number): PrometheusSample {
  const fail = (why: string): never => {
    throw new Error(`line ${lineNo}: ${why}: ${line.slice(0, 120)}`);
  };
  let pos = 0;
  while (pos < line.length && /[a-zA-Z0-9_:]/.test(line[pos] ?? '')) pos++;
  const name = line.slice(0, pos);
  if (!METRIC_NAME.test(name)) fail('bad metric name');
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    for (;;) {
      if (line[pos] === '}') {
        pos++;
        break;
      }
      const eq = line.indexOf('=', pos);
      if (eq < 0) fail('label without value');
      const labelName = line.slice(pos, eq);
      if (!LABEL_NAME.test(labelName)) fail(`bad label name ${labelName}`);
      if (line[eq + 1] !== '"') fail('label value not quoted');
      let value = '';
      let j = eq + 2;
      for (;;) {
        const ch = line[j];
        if (ch === undefined) fail('unterminated label value');
        if (ch === '"') break;
        if (ch === '\\') {
          const next = line[j + 1];
          if (next === 'n') value += '\n';
          else if (next === '\\' || next === '"') value += next;
          else fail('bad escape in label value');
          j += 2;
          continue;
        }
        value += ch;
        j++;
      }
      if (labelName in labels) fail(`duplicate label ${labelName}`);
      labels[labelName] = value;
      pos = j + 1;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') fail('expected , or } after label');
    }
  }
  const rest = line.slice(pos);
  const m = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?$/.exec(rest);
  if (!m) fail('bad value or timestamp');
  const text = m?.[1] ?? '';
  let value: number;
  if (/^[+-]?Inf$/.test(text)) value = text.startsWith('-') ? -Infinity : Infinity;
  else if (text === 'NaN') value = NaN;
  else if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) value = Number(text);
  else value = fail(`bad value ${text}`);
  return { name, labels, value };
}
