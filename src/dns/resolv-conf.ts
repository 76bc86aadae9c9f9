import { isIP } from 'node:net';

export interface ResolvConf {
  /** `nameserver` addresses, in file order (invalid ones skipped). */
  nameservers: string[];
  /** The search list: the last `search` or `domain` line wins, as in Go's resolv.conf readers. */
  search: string[];
}

/** Parses resolv.conf(5) for what the DNS proxy uses. */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [] };
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const [keyword, ...args] = line.split(/\s+/);
    switch (keyword) {
      case 'nameserver': {
        const address = args[0];
        if (address !== undefined && isIP(address.split('%')[0]!) !== 0) out.nameservers.push(address);
        break;
      }
      case 'search':
        out.search = args.filter((a) => !a.startsWith('#') && !a.startsWith(';'));
        break;
      case 'domain':
        out.search = args[0] !== undefined ? [args[0]] : [];
        break;
    }
  }
  return out;
}

/** `host:port` as Go's net.JoinHostPort writes it (IPv6 bracketed). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Splits `host:port` / `[v6]:port` / `:port`; undefined if malformed. */
export function splitHostPort(address: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host: match[1] ?? match[2] ?? '', port };
}
