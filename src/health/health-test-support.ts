/**
 * Test-only helpers for the health tests: a harness around WorkloadHealthChecker driven by the fake
 * clock while real servers answer, and real HTTP(S), TCP and gRPC health servers on 127.0.0.1.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { ReadinessProbe } from '../config/types.js';
import type { HealthReport } from '../xds/index.js';
import { FakeClock } from '../../test/fakes/fake-clock.js';
import { LogCapture } from '../../test/support/log-capture.js';
import { listenOn } from '../../test/support/ports.js';
import { selfSignedCertificate } from '../../test/support/self-signed.js';
import { WorkloadHealthChecker, type WorkloadHealthCheckerDeps } from './workload-health-checker.js';

/** Cleanups registered right after each resource is made; run in reverse by `run()` (afterEach). */
export { freePort } from '../../test/support/ports.js';

export class Cleanups {
  readonly #fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.#fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.#fns.splice(0).reverse()) await fn();
  }
}

/** Polls (real time) until `check` holds; fails with `what` after the timeout. */
export async function waitUntil(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface LogLine {
  level: string;
  scope: string;
  message: string;
  fields: string;
}

/** A WorkloadHealthChecker on a fake clock, recording its reports and its [healthcheck] lines at debug. */
export class Harness {
  readonly clock = new FakeClock();
  readonly logs = new LogCapture({ outputLevel: 'default:info,healthcheck:debug' });
  readonly reports: HealthReport[] = [];
  readonly checker: WorkloadHealthChecker;

  constructor(cleanups: Cleanups, probe: ReadinessProbe, overrides: Partial<WorkloadHealthCheckerDeps> = {}) {
    this.checker = new WorkloadHealthChecker({
      probe,
      instanceIps: ['127.0.0.1'],
      rewriteLocalhost: false,
      clock: this.clock,
      log: this.logs.root.scope('healthcheck'),
      report: (r) => this.reports.push(r),
      ...overrides,
    });
    cleanups.add(() => this.checker.close());
  }

  get periodMs(): number {
    return this.checker.probe.periodSeconds * 1000;
  }

  lines(): LogLine[] {
    return this.logs.lines.map((line) => {
      const [, level = '', scope = '', message = '', fields = ''] = line.split('\t');
      return { level, scope, message, fields };
    });
  }

  /** Messages logged at `level` (info by default). */
  messages(level = 'info'): string[] {
    return this.lines()
      .filter((l) => l.level === level)
      .map((l) => l.message);
  }

  /** Completed probe rounds, counted from the debug line each round logs. */
  rounds(): number {
    return this.messages('debug').filter((m) => m.startsWith('probe completed with')).length;
  }

  async start(): Promise<void> {
    await this.checker.start(new AbortController().signal);
  }

  /** Waits for round `n` (1-based) to complete. */
  async waitRound(n: number): Promise<void> {
    await waitUntil(() => this.rounds() >= n, `probe round ${n}; log:\n${this.logs.lines.join('\n')}`);
  }

  /** Moves the fake clock one period on and waits for the round that starts. */
  async tick(): Promise<void> {
    const before = this.rounds();
    await this.clock.advance(this.periodMs);
    await this.waitRound(before + 1);
  }

  /** The result of the last completed round: undefined = healthy, else its failure message. */
  lastRound(): string | undefined {
    const last = this.messages('debug')
      .filter((m) => m.startsWith('probe completed with'))
      .at(-1);
    if (last === undefined) throw new Error('no round completed');
    const prefix = 'probe completed with unhealthy status: ';
    return last.startsWith(prefix) ? last.slice(prefix.length) : undefined;
  }
}

// ---- HTTP(S) ----

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  remoteAddress: string;
}

export type HttpBehaviour = { status: number } | 'hang';

/** A real HTTP or HTTPS server whose answer the test sets; it can be stopped and restarted on its port. */
export class TestHttpServer {
  behaviour: HttpBehaviour = { status: 200 };
  readonly requests: SeenRequest[] = [];
  readonly #hanging = new Set<ServerResponse>();
  #server?: http.Server | https.Server;
  port = 0;

  constructor(
    private readonly host: string,
    private readonly tls?: { cert: string; key: string },
  ) {}

  async listen(port = this.port): Promise<this> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        remoteAddress: req.socket.remoteAddress ?? '',
      });
      const behaviour = this.behaviour;
      if (behaviour === 'hang') {
        this.#hanging.add(res);
        return;
      }
      res.writeHead(behaviour.status, { 'content-type': 'text/plain' }).end('probe answer\n');
    };
    const server = this.tls ? https.createServer(this.tls, handler) : http.createServer(handler);
    this.port = await listenOn(server, port, this.host);
    this.#server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const res of this.#hanging) res.destroy();
    this.#hanging.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A self-signed certificate for `localhost` / 127.0.0.1, PEM. */
export function localhostCertificate(): Promise<{ cert: string; key: string }> {
  return selfSignedCertificate({
    name: 'CN=localhost',
    sans: [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ],
  });
}

// ---- TCP ----

/** A real TCP listener that accepts and closes connections; stop/restart on the same port. */
export class TestTcpServer {
  accepted = 0;
  #server?: net.Server;
  port = 0;

  async listen(port = this.port): Promise<this> {
    const server = net.createServer((socket) => {
      this.accepted++;
      socket.on('error', () => undefined);
      socket.end();
    });
    this.port = await listenOn(server, port);
    this.#server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}


// ---- gRPC ----

/*
 * The health messages built with protobufjs reflection, independently of the prober's hand-written
 * Writer/Reader encoding, so each checks the other.
 */
const healthProto = new protobuf.Root().define('grpc.health.v1');
const servingStatus = new protobuf.Enum('ServingStatus', { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 });
const healthCheckRequest = new protobuf.Type('HealthCheckRequest').add(new protobuf.Field('service', 1, 'string'));
const healthCheckResponse = new protobuf.Type('HealthCheckResponse').add(servingStatus).add(new protobuf.Field('status', 1, 'ServingStatus'));
healthProto.add(healthCheckRequest).add(healthCheckResponse);

export type ServingStatusName = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';
export type GrpcBehaviour = ServingStatusName | 'hang' | { code: grpc.status; details: string };

interface HealthRequestMessage {
  service: string;
}

/** A real grpc-js server implementing grpc.health.v1.Health/Check (or, with `implementHealth: false`, nothing). */
export class TestGrpcHealthServer {
  /** Per service name ('' = the server as a whole); an unknown service gets NOT_FOUND, as grpc-go's health server answers. */
  readonly statuses = new Map<string, GrpcBehaviour>([['', 'SERVING']]);
  readonly requests: { service: string; userAgent: string }[] = [];
  readonly #hanging = new Set<grpc.sendUnaryData<number>>();
  #server?: grpc.Server;
  port = 0;

  constructor(private readonly implementHealth = true) {}

  async listen(port = this.port): Promise<this> {
    const server = new grpc.Server();
    if (this.implementHealth) {
      const definition: grpc.ServiceDefinition = {
        Check: {
          path: '/grpc.health.v1.Health/Check',
          requestStream: false,
          responseStream: false,
          requestSerialize: (m: HealthRequestMessage) => Buffer.from(healthCheckRequest.encode(m).finish()),
          requestDeserialize: (b: Buffer) => healthCheckRequest.toObject(healthCheckRequest.decode(b), { defaults: true }) as HealthRequestMessage,
          responseSerialize: (status: number) => Buffer.from(healthCheckResponse.encode({ status }).finish()),
          responseDeserialize: (b: Buffer) => (healthCheckResponse.toObject(healthCheckResponse.decode(b)) as { status: number }).status,
        },
      };
      server.addService(definition, {
        Check: (call: grpc.ServerUnaryCall<HealthRequestMessage, number>, callback: grpc.sendUnaryData<number>) => {
          this.requests.push({ service: call.request.service, userAgent: String(call.metadata.get('user-agent')[0] ?? '') });
          const behaviour = this.statuses.get(call.request.service);
          if (behaviour === undefined) callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
          else if (behaviour === 'hang') this.#hanging.add(callback);
          else if (typeof behaviour === 'object') callback(behaviour);
          else callback(null, servingStatus.values[behaviour]);
        },
      });
    }
    this.port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound)));
    });
    this.#server = server;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#hanging.clear();
    // The listening socket closes at once: new connections are refused from here on.
    server?.forceShutdown();
  }
}
