/** Configuration: the only folder that reads the environment and the operator's files. */
export { loadAgentConfig, DEFAULT_PROXY_FLAGS, type LoadAgentConfigInput } from './load-agent-config.js';
export { ConfigError, ConfigErrors, type ConfigErrorSource } from './errors.js';
export type {
  AgentConfig,
  CaConfig,
  DnsConfig,
  IdentityConfig,
  JsonValue,
  ProxyConfig,
  ProxyFlags,
  ReadinessProbe,
  SecretsConfig,
  UpstreamConfig,
  XdsConfig,
} from './types.js';
export {
  parseBool,
  parseGoDuration,
  parseGoFloat,
  parseGoInt,
  parseProtoDuration,
  splitHostPort,
} from './go-values.js';
export { parseShellEnv, type ShellEnvEntry, type ShellEnvOptions, type ShellEnvResult } from './shell-env.js';
export { proxyConfigJson } from './proxy-config.js';
