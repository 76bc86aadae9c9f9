/**
 * The only module that touches the process: argv, environment, signals, exit codes.
 * `pilot-agent proxy` runs the agent; config mistakes print one line each and exit 64 (no stack trace).
 */
import os from 'node:os';
import { Command, CommanderError } from 'commander';
import { Agent } from './agent.js';
import { DEFAULT_WAIT_OPTIONS, debugRequest, normalizeBooleanFlags, proxyCommand, waitForEnvoy, type ProxyCommandLine } from './cli/index.js';
import { ConfigErrors, loadAgentConfig } from './config/index.js';
import { errorMessage } from './errors.js';
import * as grpc from '@grpc/grpc-js';
import { LogRoot, redact } from './log/index.js';
import { AGENT_VERSION, ISTIO_COMPAT_VERSION } from './version.js';

const EXIT_CONFIG_ERROR = 64;
// pilot-agent exits with -1 (255) when a command fails.
const EXIT_FAILURE = 255;
const SHUTDOWN_GRACE_MS = 25_000;

/** grpc-js logs to stderr by itself; send its lines to the `grpc` scope (off by default, as in Istio). */
function routeGrpcLogs(log: LogRoot): void {
  const grpcLog = log.scope('grpc');
  const level = log.levelOf('grpc');
  grpc.setLogVerbosity(level === 'debug' ? grpc.logVerbosity.DEBUG : level === 'info' ? grpc.logVerbosity.INFO : grpc.logVerbosity.ERROR);
  grpc.setLogger({ error: (...args: unknown[]) => grpcLog.warn(args.map(String).join(' ')) });
}

async function runProxy(line: ProxyCommandLine): Promise<number> {
  let log: LogRoot;
  try {
    log = new LogRoot(line.log);
  } catch (err) {
    process.stderr.write(`Error: ${errorMessage(err)}\n`);
    return EXIT_CONFIG_ERROR;
  }
  const defaultLog = log.scope('default');
  routeGrpcLogs(log);
  for (const [name, value] of line.printable) defaultLog.info(`FLAG: --${name}="${value}"`);
  defaultLog.info(`Version ${AGENT_VERSION} (istio-vm-agent, pilot-agent ${ISTIO_COMPAT_VERSION} compatible)`);

  // Why the agent stops: a signal drains Envoy first; Envoy exiting or /quitquitquit do not.
  const shutdown = new AbortController();
  let shouldDrain = false;
  const stop = (reason: string, drain: boolean) => {
    if (shutdown.signal.aborted) return;
    shouldDrain = drain;
    shutdown.abort(new Error(reason));
  };
  let agent: Agent;
  try {
    const config = loadAgentConfig({
      cwd: process.cwd(),
      env: process.env,
      flags: line.flags,
      log: line.log,
      proxyType: line.proxyType,
      networkInterfaces: () => os.networkInterfaces(),
      hostname: () => os.hostname().split('.')[0] ?? '',
    });
    for (const notice of config.notices) defaultLog.info(notice);
    for (const warning of config.warnings) defaultLog.warn(warning);
    agent = new Agent(config, {
      log,
      isRoot: process.getuid?.() === 0,
      onEnvoyExit: () => stop('envoy exited', false),
      onQuit: () => stop('quitquitquit', false),
    });
  } catch (err) {
    if (!(err instanceof ConfigErrors)) throw err;
    for (const e of err.errors) process.stderr.write(`Error: ${redact(e.message)}\n`);
    defaultLog.error(`failed to get proxy config: ${err.errors.length} error(s) in the configuration, see stderr`);
    await log.close();
    return EXIT_CONFIG_ERROR;
  }
  const onSignal = (signal: NodeJS.Signals) => {
    defaultLog.info(`Received ${signal}, shutting down`);
    stop(`received signal: ${signal}`, true);
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);

  try {
    await agent.start(shutdown.signal);
  } catch (err) {
    await agent.close();
    // A signal during start-up is a shutdown, not a failure.
    if (shutdown.signal.aborted) {
      await log.close();
      return 0;
    }
    defaultLog.error(`failed to start the agent: ${errorMessage(err)}`);
    await log.close();
    return EXIT_FAILURE;
  }
  if (!shutdown.signal.aborted) {
    await new Promise<void>((resolve) => shutdown.signal.addEventListener('abort', () => resolve(), { once: true }));
  }
  const forced = setTimeout(() => {
    defaultLog.error('shutdown took too long, exiting');
    process.exit(EXIT_FAILURE);
  }, SHUTDOWN_GRACE_MS);
  forced.unref();
  if (shouldDrain) await agent.drain();
  await agent.close();
  defaultLog.info('Agent has successfully terminated');
  await log.close();
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  let pending: Promise<number> = Promise.resolve(0);
  const program = new Command('pilot-agent')
    .description('Istio Pilot agent (istio-vm-agent): runs on a VM beside Envoy, or alone')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  program.addCommand(
    proxyCommand((line) => {
      pending = runProxy(line);
    }),
  );
  program
    .command('wait')
    .description('Waits until the Envoy proxy is ready')
    .allowUnknownOption(true)
    .option('--timeoutSeconds <n>', 'maximum number of seconds to wait for Envoy to be ready', String(DEFAULT_WAIT_OPTIONS.timeoutSeconds))
    .option('--requestTimeoutMillis <n>', 'number of milliseconds to wait for response', String(DEFAULT_WAIT_OPTIONS.requestTimeoutMillis))
    .option('--periodMillis <n>', 'number of milliseconds to wait between attempts', String(DEFAULT_WAIT_OPTIONS.periodMillis))
    .option('--url <url>', 'URL to use in requests', DEFAULT_WAIT_OPTIONS.url)
    .action((raw: Record<string, string>) => {
      pending = (async () => {
        const log = new LogRoot();
        const result = await waitForEnvoy(
          {
            timeoutSeconds: Number(raw['timeoutSeconds']),
            requestTimeoutMillis: Number(raw['requestTimeoutMillis']),
            periodMillis: Number(raw['periodMillis']),
            url: raw['url'] ?? DEFAULT_WAIT_OPTIONS.url,
          },
          log.scope('default'),
        );
        await log.close();
        if (result.error) process.stderr.write(`Error: ${result.error}\n`);
        return result.code;
      })();
    });
  program
    .command('request')
    .description('Makes an HTTP request to the Envoy admin API')
    .argument('<method>')
    .argument('<path>')
    .argument('[body]')
    .allowUnknownOption(true)
    .option('--debug-port <port>', 'Set the port to make a local request to', '15000')
    .action((method: string, requestPath: string, body: string | undefined, raw: Record<string, string>) => {
      pending = debugRequest(method, requestPath, body, Number(raw['debugPort'])).then((result) => {
        if (result.body !== undefined) process.stdout.write(result.body);
        if (result.error) process.stderr.write(`Error: ${result.error}\n`);
        return result.code;
      });
    });
  program
    .command('version')
    .description('Prints out build version information')
    .option('-s, --short', 'Use --short=false to generate full version information')
    .allowUnknownOption(true)
    .action(() => {
      process.stdout.write(`istio-vm-agent version: ${AGENT_VERSION} (pilot-agent ${ISTIO_COMPAT_VERSION} compatible)\n`);
    });
  try {
    await program.parseAsync(normalizeBooleanFlags(argv), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_FAILURE;
    process.stderr.write(`Error: ${errorMessage(err)}\n`);
    return EXIT_FAILURE;
  }
  return pending;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`Error: ${errorMessage(err)}\n`);
    process.exitCode = EXIT_FAILURE;
  },
);
