import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ReadinessProbe } from '../config/types.js';
import { TempDirs } from '../../test/support/tmp.js';
import { Cleanups, Harness, waitUntil } from './health-test-support.js';

/*
 * The loop, thresholds and events, driven by a real exec probe (`test -f <file>`: the test makes the
 * application ready by creating the file) on the fake clock.
 */
describe('WorkloadHealthChecker', () => {
  const cleanups = new Cleanups();
  const dirs = new TempDirs();
  afterEach(async () => {
    await cleanups.run();
    dirs.cleanup();
  });

  function readyFile(): { file: string; ready: () => void; notReady: () => void } {
    const file = path.join(dirs.make('ivma-health-'), 'ready');
    return { file, ready: () => writeFileSync(file, ''), notReady: () => rmSync(file, { force: true }) };
  }

  function execProbe(file: string, extra: Partial<ReadinessProbe> = {}): ReadinessProbe {
    return { exec: { command: ['test', '-f', file] }, ...extra };
  }

  it('logs the start line and waits the initial delay before the first probe', async () => {
    const app = readyFile();
    app.ready();
    const h = new Harness(cleanups, execProbe(app.file, { initialDelaySeconds: 5 }));
    const startedAt = h.clock.now();
    await h.start();
    assert.deepEqual(h.messages(), ['starting health check for health.AggregateProber in 5s']);
    assert.match(h.lines()[0]!.fields, /prober=ExecProber/);
    assert.equal(h.clock.nextWakeUp, startedAt + 5000);

    await h.clock.advance(4999);
    assert.equal(h.rounds(), 0);
    assert.deepEqual(h.reports, []);

    await h.clock.advance(1);
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    assert.deepEqual(h.messages(), ['starting health check for health.AggregateProber in 5s', 'success threshold hit, marking as healthy']);
  });

  it('probes at once without an initial delay, then every period', async () => {
    const app = readyFile();
    app.ready();
    const h = new Harness(cleanups, execProbe(app.file, { periodSeconds: 3 }));
    const startedAt = h.clock.now();
    await h.start();
    assert.equal(h.messages()[0], 'starting health check for health.AggregateProber in 0s');
    await h.waitRound(1);
    await waitUntil(() => h.clock.nextWakeUp === startedAt + 3000, 'the next round to be scheduled');
    await h.tick();
    await h.tick();
    assert.equal(h.rounds(), 3);
    assert.equal(h.clock.now(), startedAt + 6000);
  });

  it('reports the first determination even when it is unhealthy', async () => {
    const app = readyFile();
    const h = new Harness(cleanups, execProbe(app.file));
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: 'exit status 1' }]);
    assert.deepEqual(h.messages().slice(1), ['failure threshold hit, marking as unhealthy: exit status 1']);
  });

  it('reports only changes: healthy, unhealthy, healthy, over many rounds', async () => {
    const app = readyFile();
    app.ready();
    const h = new Harness(cleanups, execProbe(app.file));
    await h.start();
    await h.waitRound(1);
    await h.tick();
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }]);

    app.notReady();
    await h.tick();
    await h.tick();
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }, { healthy: false, message: 'exit status 1' }]);

    app.ready();
    await h.tick();
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }, { healthy: false, message: 'exit status 1' }, { healthy: true }]);
    assert.equal(h.rounds(), 8);
    // Repeated failures are logged at debug only, once per round; info has one line per change.
    assert.deepEqual(h.messages(), [
      'starting health check for health.AggregateProber in 0s',
      'success threshold hit, marking as healthy',
      'failure threshold hit, marking as unhealthy: exit status 1',
      'success threshold hit, marking as healthy',
    ]);
    assert.equal(h.messages('debug').filter((m) => m === 'probe completed with unhealthy status: exit status 1').length, 3);
    assert.deepEqual(h.checker.lastReport, { healthy: true });
  });

  it('with failureThreshold 2, one failure does not flip to unhealthy', async () => {
    const app = readyFile();
    app.ready();
    const h = new Harness(cleanups, execProbe(app.file, { failureThreshold: 2 }));
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: true }]);

    app.notReady();
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }], 'one failure');
    app.ready();
    await h.tick();
    app.notReady();
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }], 'failures not consecutive');
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: true }, { healthy: false, message: 'exit status 1' }]);
  });

  it('with successThreshold 2, one success does not flip to healthy', async () => {
    const app = readyFile();
    const h = new Harness(cleanups, execProbe(app.file, { successThreshold: 2 }));
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: 'exit status 1' }]);

    app.ready();
    await h.tick();
    assert.equal(h.reports.length, 1, 'one success');
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: false, message: 'exit status 1' }, { healthy: true }]);
  });

  it('needs failureThreshold failures for the first determination too', async () => {
    const app = readyFile();
    const h = new Harness(cleanups, execProbe(app.file, { failureThreshold: 3 }));
    await h.start();
    await h.waitRound(1);
    await h.tick();
    assert.deepEqual(h.reports, []);
    await h.tick();
    assert.deepEqual(h.reports, [{ healthy: false, message: 'exit status 1' }]);
  });

  it("makes Envoy's readiness error the probe's message", async () => {
    const app = readyFile();
    app.ready();
    let envoyError: string | undefined = 'config not received from XDS server (is Istiod running?)';
    let envoyChecks = 0;
    const h = new Harness(cleanups, execProbe(app.file), {
      envoyReady: async () => {
        envoyChecks++;
        if (envoyError !== undefined) throw new Error(envoyError);
      },
    });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: 'config not received from XDS server (is Istiod running?)' }]);
    assert.deepEqual(h.messages().slice(1), ['failure threshold hit, marking as unhealthy: config not received from XDS server (is Istiod running?)']);

    envoyError = undefined;
    await h.tick();
    assert.deepEqual(h.reports.at(-1), { healthy: true });
    assert.equal(envoyChecks, 2);
  });

  it("bounds Envoy's readiness check by the probe timeout", async () => {
    const app = readyFile();
    app.ready();
    const h = new Harness(cleanups, execProbe(app.file, { timeoutSeconds: 2 }), {
      envoyReady: (signal) => new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    });
    await h.start();
    await h.clock.advance(2000);
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: 'Envoy readiness check timed out after 2s' }]);
  });

  it('kills a probe command that outlives the timeout', async () => {
    const h = new Harness(cleanups, { exec: { command: ['sleep', '30'] }, timeoutSeconds: 2 });
    await h.start();
    // The command is running; the round ends when the timeout passes on the clock.
    await h.clock.advance(1999);
    assert.equal(h.rounds(), 0);
    await h.clock.advance(1);
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: 'command timeout exceeded: signal: killed' }]);
  });

  it('reports a command that cannot be started', async () => {
    const h = new Harness(cleanups, { exec: { command: ['no-such-probe-command-ivma'] } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: 'exec: "no-such-probe-command-ivma": executable file not found in $PATH' }]);

    const h2 = new Harness(cleanups, { exec: { command: ['/no/such/probe'] } });
    await h2.start();
    await h2.waitRound(1);
    assert.deepEqual(h2.reports, [{ healthy: false, message: 'fork/exec /no/such/probe: no such file or directory' }]);
  });

  it('reports the exit status and the signal of a failed command', async () => {
    const h = new Harness(cleanups, { exec: { command: [process.execPath, '-e', 'process.exit(3)'] } });
    await h.start();
    await h.waitRound(1);
    assert.deepEqual(h.reports, [{ healthy: false, message: 'exit status 3' }]);

    const h2 = new Harness(cleanups, { exec: { command: [process.execPath, '-e', 'process.kill(process.pid, "SIGTERM")'] } });
    await h2.start();
    await h2.waitRound(1);
    assert.deepEqual(h2.reports, [{ healthy: false, message: 'signal: terminated' }]);
  });

  it('stops probing and reporting on close, leaving no timer behind', async () => {
    const app = readyFile();
    app.ready();
    const h = new Harness(cleanups, execProbe(app.file));
    await h.start();
    await h.waitRound(1);
    await h.checker.close();
    assert.equal(h.clock.pending, 0);
    app.notReady();
    await h.clock.advance(h.periodMs * 3);
    assert.equal(h.rounds(), 1);
    assert.deepEqual(h.reports, [{ healthy: true }]);
    await h.checker.close();
  });

  it('close during a probe ends it without a report', async () => {
    const h = new Harness(cleanups, { exec: { command: ['sleep', '30'] }, timeoutSeconds: 10 });
    await h.start();
    await h.checker.close();
    assert.equal(h.clock.pending, 0);
    assert.deepEqual(h.reports, []);
  });

  it('close before start is safe, and start after close does nothing', async () => {
    const h = new Harness(cleanups, { tcpSocket: { port: 1 } });
    await h.checker.close();
    await h.start();
    assert.deepEqual(h.messages(), []);
  });

  it('keeps probing when the report callback throws', async () => {
    const app = readyFile();
    app.ready();
    let calls = 0;
    const h = new Harness(cleanups, execProbe(app.file), {
      report: () => {
        calls++;
        throw new Error('stream gone');
      },
    });
    await h.start();
    await h.waitRound(1);
    app.notReady();
    await h.tick();
    assert.equal(calls, 2);
    assert.ok(h.messages('warn').includes('failed to report health: stream gone'));
  });

  it('refuses an invalid probe', () => {
    assert.throws(
      () => new Harness(cleanups, { periodSeconds: -1 }),
      /readinessProbe\.periodSeconds: must be >= 0, got -1; readinessProbe: needs exactly one of httpGet, tcpSocket, exec or grpc, got none/,
    );
  });
});
