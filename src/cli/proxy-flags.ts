import { Command, Option } from 'commander';
import { DEFAULT_PROXY_FLAGS as DEFAULTS, parseBool, parseGoInt, type ProxyFlags } from '../config/index.js';
import { DEFAULT_LOG_OPTIONS, type LogOptions } from '../log/index.js';

export interface ProxyCommandLine {
  proxyType: 'sidecar' | 'router';
  flags: ProxyFlags;
  log: LogOptions;
  /** Every flag with its effective value, for Istio's `FLAG: --name="value"` startup lines. */
  printable: [string, string][];
}

/** A `--flag` or `--flag=value` boolean, parsed as pflag does (Go's strconv.ParseBool). */
function goBool(value: string | boolean | undefined, name: string): boolean {
  if (value === undefined || typeof value === 'boolean') return value ?? true;
  const parsed = parseBool(value);
  if (parsed === undefined) throw new Error(`invalid argument "${value}" for "--${name}" flag: strconv.ParseBool: parsing "${value}": invalid syntax`);
  return parsed;
}

function goInt(value: string, name: string): number {
  const parsed = parseGoInt(value);
  if (parsed === undefined) throw new Error(`invalid argument "${value}" for "--${name}" flag: strconv.ParseInt: parsing "${value}": invalid syntax`);
  return parsed;
}

/**
 * Operands left once unknown flags are dropped the way pflag drops them: `--x=1` alone, and `--x 1`
 * together with its value (commander, told to allow unknown options, passes both through as operands).
 */
function positionalArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (!arg.startsWith('-')) out.push(arg);
    else if (!arg.includes('=') && i + 1 < args.length && !(args[i + 1] ?? '').startsWith('-')) i++;
  }
  return out;
}

const BOOLEAN_FLAGS = ['profiling', 'log_as_json'] as const;

/**
 * pflag booleans are `--flag` or `--flag=value`, never `--flag value`. Commander's optional values would
 * swallow the next word (`--log_as_json router`), so booleans are rewritten to that one form first.
 */
export function normalizeBooleanFlags(args: readonly string[]): string[] {
  return args.map((arg) => {
    for (const name of BOOLEAN_FLAGS) {
      if (arg === `--${name}`) return `--${name}=true`;
    }
    return arg;
  });
}

/** Builds the `proxy` subcommand with pilot-agent's flags (SPEC §2.3); unknown flags are ignored, as cobra is told to. */
export function proxyCommand(onParsed: (line: ProxyCommandLine) => void): Command {
  const command = new Command('proxy')
    .description('XDS proxy agent')
    .argument('[type]', 'proxy type: sidecar or router', 'sidecar')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .option('--meshConfig <file>', 'File name for Istio mesh configuration', DEFAULTS.meshConfigFile)
    .option('--serviceCluster <name>', 'Service cluster', DEFAULTS.serviceCluster)
    .option('--proxyLogLevel <level>', "The log level used to start the Envoy proxy", DEFAULTS.proxyLogLevel)
    .option('--proxyComponentLogLevel <levels>', 'The component log level used to start the Envoy proxy', '')
    .option('--concurrency <n>', 'number of worker threads to run', String(DEFAULTS.concurrency))
    .option('--domain <domain>', 'DNS domain suffix', '')
    .option('--templateFile <file>', 'Go template bootstrap config', '')
    .option('--outlierLogPath <path>', 'The log path for outlier detection', '')
    .option('--stsPort <port>', 'HTTP port of the STS server (0 = off)', String(DEFAULTS.stsPort))
    .option('--tokenManagerPlugin <name>', 'Token provider plugin', DEFAULTS.tokenManagerPlugin)
    .addOption(new Option('--profiling <bool>', 'Enable profiling via web interface host:port/debug/pprof').default(String(DEFAULTS.profiling)))
    .addOption(new Option('--log_as_json <bool>', 'Whether to format output as JSON or in plain console-friendly format').default('false'))
    .option('--log_output_level <levels>', 'Comma-separated minimum per-scope logging level', DEFAULT_LOG_OPTIONS.outputLevel)
    .option('--log_target <target>', 'The set of paths where to output the log', DEFAULT_LOG_OPTIONS.target)
    .action((_type: string, raw: Record<string, string | boolean>) => {
      const str = (key: string): string => String(raw[key] ?? '');
      const type = positionalArgs(command.args)[0] ?? 'sidecar';
      if (type !== 'sidecar' && type !== 'router') throw new Error(`Invalid proxy Type: ${type}`);
      const proxyType = type;
      const flags: ProxyFlags = {
        meshConfigFile: str('meshConfig'),
        serviceCluster: str('serviceCluster'),
        proxyLogLevel: str('proxyLogLevel'),
        proxyComponentLogLevel: str('proxyComponentLogLevel'),
        concurrency: goInt(str('concurrency'), 'concurrency'),
        domain: str('domain'),
        templateFile: str('templateFile'),
        outlierLogPath: str('outlierLogPath'),
        stsPort: goInt(str('stsPort'), 'stsPort'),
        tokenManagerPlugin: str('tokenManagerPlugin'),
        profiling: goBool(raw['profiling'], 'profiling'),
      };
      const log: LogOptions = {
        asJson: goBool(raw['log_as_json'], 'log_as_json'),
        outputLevel: str('log_output_level'),
        target: str('log_target'),
      };
      const printable = command.options
        .map((o): [string, string] => [o.long?.replace(/^--/, '') ?? '', String(raw[o.attributeName()] ?? '')])
        .sort(([a], [b]) => a.localeCompare(b));
      onParsed({ proxyType, flags, log, printable });
    });
  return command;
}
