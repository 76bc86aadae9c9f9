import { Command, Option } from 'commander';
import type { ProxyFlags } from '../config/index.js';
import { DEFAULT_LOG_OPTIONS, type LogOptions } from '../log/index.js';

export interface ProxyCommandLine {
  proxyType: 'sidecar' | 'router';
  flags: ProxyFlags;
  log: LogOptions;
  /** Every flag with its effective value, for Istio's `FLAG: --name="value"` startup lines. */
  printable: [string, string][];
}

/** Go's strconv.ParseBool, which pflag uses for `--flag=value` booleans. */
function goBool(value: string | boolean | undefined, name: string): boolean {
  if (value === undefined || value === true) return true;
  if (value === false) return false;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new Error(`invalid argument "${value}" for "--${name}" flag: strconv.ParseBool: parsing "${value}": invalid syntax`);
}

function goInt(value: string, name: string): number {
  if (!/^-?\d+$/.test(value)) throw new Error(`invalid argument "${value}" for "--${name}" flag: strconv.ParseInt: parsing "${value}": invalid syntax`);
  return Number(value);
}

const PROXY_FLAG_DEFAULTS: ProxyFlags = {
  meshConfigFile: './etc/istio/config/mesh',
  serviceCluster: 'istio-proxy',
  proxyLogLevel: 'warning',
  proxyComponentLogLevel: '',
  concurrency: 0,
  domain: '',
  templateFile: '',
  outlierLogPath: '',
  stsPort: 0,
  tokenManagerPlugin: 'GoogleTokenExchange',
  profiling: true,
};

/** Builds the `proxy` subcommand with pilot-agent's flags (SPEC §2.3); unknown flags are ignored, as cobra is told to. */
export function proxyCommand(onParsed: (line: ProxyCommandLine) => void): Command {
  const command = new Command('proxy')
    .description('XDS proxy agent')
    .argument('[type]', 'proxy type: sidecar or router', 'sidecar')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .option('--meshConfig <file>', 'File name for Istio mesh configuration', PROXY_FLAG_DEFAULTS.meshConfigFile)
    .option('--serviceCluster <name>', 'Service cluster', PROXY_FLAG_DEFAULTS.serviceCluster)
    .option('--proxyLogLevel <level>', "The log level used to start the Envoy proxy", PROXY_FLAG_DEFAULTS.proxyLogLevel)
    .option('--proxyComponentLogLevel <levels>', 'The component log level used to start the Envoy proxy', '')
    .option('--concurrency <n>', 'number of worker threads to run', '0')
    .option('--domain <domain>', 'DNS domain suffix', '')
    .option('--templateFile <file>', 'Go template bootstrap config', '')
    .option('--outlierLogPath <path>', 'The log path for outlier detection', '')
    .option('--stsPort <port>', 'HTTP port of the STS server (0 = off)', '0')
    .option('--tokenManagerPlugin <name>', 'Token provider plugin', PROXY_FLAG_DEFAULTS.tokenManagerPlugin)
    .addOption(new Option('--profiling [bool]', 'Enable profiling via web interface host:port/debug/pprof').default('true'))
    .addOption(new Option('--log_as_json [bool]', 'Whether to format output as JSON or in plain console-friendly format').default('false'))
    .option('--log_output_level <levels>', 'Comma-separated minimum per-scope logging level', DEFAULT_LOG_OPTIONS.outputLevel)
    .option('--log_target <target>', 'The set of paths where to output the log', DEFAULT_LOG_OPTIONS.target)
    .action((type: string, raw: Record<string, string | boolean>) => {
      const str = (key: string): string => String(raw[key] ?? '');
      const proxyType = type === 'router' ? 'router' : 'sidecar';
      if (type !== 'sidecar' && type !== 'router') throw new Error(`Invalid proxy Type: ${type}`);
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
