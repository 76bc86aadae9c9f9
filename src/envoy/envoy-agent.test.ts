import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { type FakeEnvoyEvent, readFakeEnvoyRecord, writeFakeEnvoyBinary } from '../../test/fakes/fake-envoy-binary.js';
import { LogCapture } from '../../test/support/log-capture.js';
import { TempDirs } from '../../test/support/tmp.js';
import { systemClock } from '../clock.js';
import { EnvoyAgent } from './envoy-agent.js';
import { logLevelArgs } from './envoy-args.js';
import { freePort } from '../../test/support/ports.js';


/** Waits until the fake Envoy's admin API answers. */
async function adminUp(adminPort: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(`http://127.0.0.1:${adminPort}/ready`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('EnvoyAgent', function () {
  this.timeout(20_000);
  const dirs = new TempDirs();
  const agents: EnvoyAgent[] = [];
  const savedEnv = { ...process.env };
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.close()));
    process.env = { ...savedEnv };
    dirs.cleanup();
  });

  async function setup(env: Record<string, string> = {}, options: { terminationDrainMs?: number; exitOnZero?: boolean } = {}) {
    const dir = dirs.make();
    const recordFile = path.join(dir, 'record.jsonl');
    const adminPort = await freePort();
    Object.assign(process.env, { FAKE_ENVOY_RECORD: recordFile, FAKE_ENVOY_ADMIN_PORT: String(adminPort), ...env });
    const bootstrapPath = path.join(dir, 'envoy-rev.json');
    writeFileSync(bootstrapPath, '{}');
    const capture = new LogCapture();
    let exits = 0;
    const envoy = new EnvoyAgent({
      binaryPath: writeFakeEnvoyBinary(dir),
      args: ['-c', bootstrapPath, '--drain-time-s', '45'],
      removeBootstrap: () => rm(bootstrapPath, { force: true }),
      adminPort,
      terminationDrainMs: options.terminationDrainMs ?? 300,
      exitOnZeroActiveConnections: options.exitOnZero ?? false,
      minimumDrainMs: 100,
      clock: systemClock,
      log: capture.root.scope('default'),
      onExit: () => exits++,
    });
    agents.push(envoy);
    const recorded = (): FakeEnvoyEvent[] => readFakeEnvoyRecord(recordFile);
    const waitFor = async (predicate: (r: FakeEnvoyEvent[]) => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!predicate(recorded())) {
        if (Date.now() > deadline) throw new Error(`fake Envoy did not get there: ${JSON.stringify(recorded())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    return { envoy, capture, recorded, waitFor, bootstrapPath, exits: () => exits, adminPort };
  }

  it('launches Envoy with the given command line and logs it', async () => {
    const { envoy, capture, waitFor, recorded } = await setup();
    await envoy.start(new AbortController().signal);
    await waitFor((r) => r.some((e) => e.event === 'start'));
    assert.deepEqual(recorded()[0]?.args?.slice(2), ['--drain-time-s', '45']);
    await capture.waitFor('Envoy command: [-c ');
  });

  it('drains inbound listeners, waits the termination period, then kills Envoy with Istio\'s log lines', async () => {
    const { envoy, capture, waitFor, recorded, bootstrapPath, exits, adminPort } = await setup();
    await envoy.start(new AbortController().signal);
    // Wait until the fake's admin API answers before draining.
    await adminUp(adminPort);
    const started = Date.now();
    await envoy.drain();
    assert.ok(Date.now() - started >= 280, 'the termination drain period was waited');
    await envoy.close();
    await waitFor((r) => r.some((e) => e.event === 'admin' && e.method === 'POST' && e.url === '/drain_listeners?inboundonly&graceful'));
    for (const line of [
      'Agent draining Proxy for termination',
      'Graceful termination period is 300ms, starting...',
      'Graceful termination period complete, terminating remaining proxies.',
      'Envoy aborted normally',
      'Aborted proxy instance',
    ]) {
      await capture.waitFor(line);
    }
    assert.equal(existsSync(bootstrapPath), false, 'the bootstrap is deleted');
    assert.equal(exits(), 0, 'a stop the agent asked for is not an Envoy exit');
    assert.ok(recorded().length > 0);
  });

  it('with EXIT_ON_ZERO_ACTIVE_CONNECTIONS, waits until the inbound connections are gone', async () => {
    const dir = dirs.make();
    const state = path.join(dir, 'state.json');
    writeFileSync(state, JSON.stringify({ active: 2 }));
    const { envoy, capture, adminPort } = await setup({ FAKE_ENVOY_STATE: state }, { exitOnZero: true });
    await envoy.start(new AbortController().signal);
    await adminUp(adminPort);
    const draining = envoy.drain();
    await capture.waitFor('There are still 2 active connections');
    writeFileSync(state, JSON.stringify({ active: 0 }));
    await draining;
    await capture.waitFor('There are no more active connections. terminating proxy...');
  });

  it('reports Envoy crashing on its own and deletes the bootstrap', async () => {
    const { envoy, capture, bootstrapPath, exits } = await setup({ FAKE_ENVOY_EXIT_AFTER_MS: '200', FAKE_ENVOY_EXIT_CODE: '3' });
    await envoy.start(new AbortController().signal);
    assert.match(await capture.waitFor('Envoy exited with error'), /\terror\tEnvoy exited with error: exit status 3$/);
    for (let i = 0; i < 50 && exits() === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(exits(), 1);
    assert.equal(existsSync(bootstrapPath), false);
  });

  it('turns pilot-agent log levels into Envoy flags', () => {
    assert.deepEqual(logLevelArgs('warning', ''), ['-l', 'warning']);
    assert.deepEqual(logLevelArgs('warning,misc:error', ''), ['-l', 'warning', '--component-log-level', 'misc:error']);
    assert.deepEqual(logLevelArgs('info', 'upstream:debug,http:trace'), ['-l', 'info', '--component-log-level', 'upstream:debug,http:trace']);
  });
});
