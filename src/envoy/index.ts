export { EnvoyAgent, describeExit } from './envoy-agent.js';
export type { EnvoyAgentDeps } from './envoy-agent.js';
export { envoyArgs, logLevelArgs } from './envoy-args.js';
export * from './bootstrap/index.js';
