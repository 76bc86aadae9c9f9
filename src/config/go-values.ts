/**
 * Parsers for values written the way Istio's Go code reads them (strconv, time.ParseDuration,
 * net.SplitHostPort, protobuf JSON durations), so an operator's existing files mean the same thing here.
 * Every parser returns `undefined` (or an error string) instead of throwing; callers attach file and line.
 */
import { isIP } from 'node:net';

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's strconv.ParseBool: exactly 1,t,T,TRUE,true,True / 0,f,F,FALSE,false,False. */
export function parseBool(text: string): boolean | undefined {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  return undefined;
}

const DURATION_UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5 micro sign
  'μs': 1e-3, // U+03BC Greek mu
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_SEGMENT = '(\\d+\\.?\\d*|\\.\\d+)(ns|us|µs|μs|ms|s|m|h)';
// time.Duration is an int64 of nanoseconds: about 292 years.
const MAX_DURATION_MS = 9_223_372_036_854.775;

/**
 * Go's time.ParseDuration (`300ms`, `1h30m`, `-1.5s`, `0`), in milliseconds (fractional below 1 ms).
 * A bare number other than 0 has no unit and is rejected, as in Go.
 */
export function parseGoDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  const segment = new RegExp(DURATION_SEGMENT, 'y'); // sticky, so segments must be contiguous
  while (segment.lastIndex < rest.length) {
    const match = segment.exec(rest);
    if (!match) return undefined;
    const [, amount = '', unit = ''] = match;
    total += Number(amount) * (DURATION_UNIT_MS[unit] ?? NaN);
  }
  if (!Number.isFinite(total) || total > MAX_DURATION_MS) return undefined;
  return sign * total;
}

/** google.protobuf.Duration in proto-JSON form: `45s`, `0.5s`, `-1.000000001s`; milliseconds. */
export function parseProtoDuration(text: string): number | undefined {
  const match = /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (!match) return undefined;
  const [, minus = '', seconds = '0', fraction = ''] = match;
  const ms = Number(seconds) * 1000 + (fraction === '' ? 0 : Number(`0.${fraction}`) * 1000);
  // Proto durations are limited to ±315,576,000,000 seconds (10,000 years).
  if (Number(seconds) > 315_576_000_000) return undefined;
  return minus === '-' ? -ms : ms;
}

/** Go's strconv.Atoi: optional sign, decimal digits only, 64-bit range (checked as a safe integer here). */
export function parseGoInt(text: string): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Go's strconv.ParseFloat for the decimal forms operators write (`0.5`, `.01`, `1e-2`). */
export function parseGoFloat(text: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

export function isPort(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= 65535;
}

/**
 * Go's net.SplitHostPort: `host:port` or `[v6]:port`. Returns an error string in Go's words when the
 * address has no port or too many colons.
 */
export function splitHostPort(address: string): { host: string; port: string } | string {
  const colon = address.lastIndexOf(':');
  if (colon < 0) return `address ${address}: missing port in address`;
  let host: string;
  if (address.startsWith('[')) {
    const close = address.indexOf(']');
    if (close < 0) return `address ${address}: missing ']' in address`;
    if (close + 1 === address.length) return `address ${address}: missing port in address`;
    if (close + 1 !== colon) return `address ${address}: too many colons in address`;
    host = address.slice(1, close);
  } else {
    host = address.slice(0, colon);
    if (host.includes(':')) return `address ${address}: too many colons in address`;
  }
  if (address.slice(colon + 1).includes('[') || address.slice(colon + 1).includes(']')) {
    return `address ${address}: unexpected bracket in address`;
  }
  return { host, port: address.slice(colon + 1) };
}

/** A DNS-1123 label as Kubernetes and Istio check it: lowercase alphanumerics and '-', 1-63 characters. */
function isDns1123Label(label: string): boolean {
  return label.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(label);
}

/** Istio's FQDN check for proxy addresses: ≤255 characters, DNS-1123 labels, TLD not all-numeric. */
export function fqdnProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty domain name not allowed';
  if (name.length > 255) return `domain name "${name}" too long (max 255)`;
  const labels = name.split('.');
  const tld = labels[labels.length - 1] ?? '';
  if (/^[+-]?\d+$/.test(tld)) return `domain name "${name}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (const [i, label] of labels.entries()) {
    if (i === labels.length - 1 && label === '') break; // trailing dot: `istio.io.`
    if (!isDns1123Label(label)) return `domain name "${name}" invalid (label "${label}" invalid)`;
  }
  return undefined;
}

/** Istio's ValidateProxyAddress: `host:port`, host a valid FQDN or IP literal, port 1-65535. */
export function proxyAddressProblem(address: string): string | undefined {
  const parts = splitHostPort(address);
  if (typeof parts === 'string') return `unable to split "${address}": ${parts}`;
  const port = parseGoInt(parts.port);
  if (port === undefined) return `port (${parts.port}) is not a number`;
  if (!isPort(port)) return `port number ${port} must be in the range 1..65535`;
  if (fqdnProblem(parts.host) !== undefined && isIP(parts.host) === 0) {
    return `"${parts.host}" is not a valid hostname or an IP address`;
  }
  return undefined;
}

/**
 * An IP address in the canonical form Go's netip prints (`fd00::10`, not `FD00:0::0010`), or undefined
 * if the text is not an IP literal.
 */
export function canonicalIp(text: string): string | undefined {
  const family = isIP(text);
  if (family === 4) return text;
  if (family !== 6) return undefined;
  if (text.includes('%')) return text.toLowerCase(); // zoned addresses are kept as written
  try {
    // The WHATWG URL parser serialises IPv6 hosts in RFC 5952 form.
    const host = new URL(`http://[${text}]/`).hostname;
    const canonical = host.slice(1, -1);
    // Go prints IPv4-mapped addresses with a dotted tail (::ffff:10.0.0.1); the URL parser uses hex.
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
    if (mapped) {
      const hi = parseInt(mapped[1] ?? '0', 16);
      const lo = parseInt(mapped[2] ?? '0', 16);
      return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    return canonical;
  } catch {
    return text.toLowerCase();
  }
}
