export { normalizeBooleanFlags, proxyCommand } from './proxy-flags.js';
export type { ProxyCommandLine } from './proxy-flags.js';
