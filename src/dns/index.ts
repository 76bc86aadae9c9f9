export { DnsServer, DNS_NOT_READY_MESSAGE, DEFAULT_DNS_ADDRESS, ROOT_RESOLV_CONF_PATH, listenHosts, listenPlan } from './dns-server.js';
export type { DnsServerDeps } from './dns-server.js';
export { LookupTable, TTL_SECONDS } from './lookup-table.js';
export type { LookupTableOptions } from './lookup-table.js';
export { parseResolvConf } from './resolv-conf.js';
export type { ResolvConf } from './resolv-conf.js';
