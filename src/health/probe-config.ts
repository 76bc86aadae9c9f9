import type { ReadinessProbe } from '../config/types.js';

export const PROBE_HANDLERS = ['httpGet', 'tcpSocket', 'exec', 'grpc'] as const;
export type ProbeHandler = (typeof PROBE_HANDLERS)[number];

const PROBE_NUMBERS = ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold'] as const;
const INT32_MAX = 2_147_483_647;
/** RFC 9110 token: what Node (and Go) accept as a header name. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

type HttpGet = NonNullable<ReadinessProbe['httpGet']>;

/** A ReadinessProbe after Istio's zero-value defaults (`fillInDefaults` in pkg/istio-agent/health). */
export type DefaultedProbe = ReadinessProbe & {
  initialDelaySeconds: number;
  timeoutSeconds: number;
  periodSeconds: number;
  successThreshold: number;
  failureThreshold: number;
  httpGet?: HttpGet & { path: string; scheme: string };
};

/**
 * Istio's defaults for unset or zero fields: thresholds 1, timeout 1 s, period 10 s, initial delay 0;
 * httpGet path `/` and scheme `http`, the scheme lower-cased. The host is not defaulted here: the
 * prober picks it per SPEC §7.2 (probe host, else first instance IP, else `localhost`).
 */
export function probeDefaults(probe: ReadinessProbe): DefaultedProbe {
  const { httpGet, ...rest } = probe;
  const out: DefaultedProbe = {
    ...rest,
    initialDelaySeconds: probe.initialDelaySeconds ?? 0,
    timeoutSeconds: probe.timeoutSeconds || 1,
    periodSeconds: probe.periodSeconds || 10,
    successThreshold: probe.successThreshold || 1,
    failureThreshold: probe.failureThreshold || 1,
  };
  if (httpGet) {
    out.httpGet = {
      ...httpGet,
      path: httpGet.path || '/',
      scheme: (httpGet.scheme || 'http').toLowerCase(),
      ...(httpGet.httpHeaders ? { httpHeaders: httpGet.httpHeaders.map((h) => ({ ...h })) } : {}),
    };
  }
  return out;
}

/** The one handler a valid probe has. */
export function probeHandler(probe: ReadinessProbe): ProbeHandler | undefined {
  return PROBE_HANDLERS.find((h) => probe[h] !== undefined);
}

/**
 * Problems with a probe, each naming its field: `where` names the probe itself, e.g.
 * `mesh: defaultConfig.readinessProbe`, giving `mesh: defaultConfig.readinessProbe.periodSeconds: must
 * be >= 0, got -1`. The config loader already rejects most of these while parsing; this check guards
 * probes built any other way (PROXY_CONFIG JSON, tests, the local control plane) before they run.
 */
export function validateReadinessProbe(probe: ReadinessProbe, where: string): string[] {
  const errors: string[] = [];
  const problem = (field: string, message: string): void => {
    errors.push(`${where}${field === '' ? '' : `.${field}`}: ${message}`);
  };

  for (const field of PROBE_NUMBERS) {
    const value = probe[field];
    if (value === undefined) continue;
    if (!Number.isInteger(value)) problem(field, `must be an integer, got ${value}`);
    else if (value < 0) problem(field, `must be >= 0, got ${value}`);
    else if (value > INT32_MAX) problem(field, `must be <= ${INT32_MAX}, got ${value}`);
  }

  const handlers = PROBE_HANDLERS.filter((h) => probe[h] !== undefined);
  if (handlers.length !== 1) {
    problem('', `needs exactly one of httpGet, tcpSocket, exec or grpc, got ${handlers.length === 0 ? 'none' : handlers.join(' and ')}`);
  }

  const checkPort = (field: string, port: unknown): void => {
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      problem(field, `must be a port number (1-65535), got ${String(port)}`);
    }
  };

  if (probe.httpGet) {
    const http = probe.httpGet;
    checkPort('httpGet.port', http.port);
    const scheme = (http.scheme ?? '').toLowerCase();
    if (scheme !== '' && scheme !== 'http' && scheme !== 'https') {
      problem('httpGet.scheme', `expected "HTTP" or "HTTPS", got "${http.scheme}"`);
    }
    (http.httpHeaders ?? []).forEach((header, i) => {
      if (!HEADER_NAME.test(header.name)) problem(`httpGet.httpHeaders[${i}].name`, `not a valid header name: "${header.name}"`);
      if (/[\r\n\0]/.test(header.value)) problem(`httpGet.httpHeaders[${i}].value`, 'must not contain CR, LF or NUL');
    });
  }
  if (probe.tcpSocket) checkPort('tcpSocket.port', probe.tcpSocket.port);
  if (probe.grpc) checkPort('grpc.port', probe.grpc.port);
  if (probe.exec) {
    const command = probe.exec.command;
    if (!Array.isArray(command) || command.length === 0 || command[0] === '') problem('exec.command', 'must list the command to run');
  }
  return errors;
}
