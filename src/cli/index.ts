export { normalizeBooleanFlags, proxyCommand } from './proxy-flags.js';
export type { ProxyCommandLine } from './proxy-flags.js';
export { waitForEnvoy, DEFAULT_WAIT_OPTIONS } from './wait.js';
export type { WaitOptions } from './wait.js';
export { debugRequest, ALLOWED_DEBUG_PORTS } from './request.js';
