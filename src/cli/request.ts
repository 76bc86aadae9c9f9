import { describeFetchError } from './wait.js';

/** The ports `pilot-agent request` may reach, as pilot-agent allows them. */
export const ALLOWED_DEBUG_PORTS = [15000, 15021, 15020, 15004] as const;
const REQUEST_TIMEOUT_MS = 60_000;

export interface RequestResult {
  code: number;
  /** Printed to stdout: the response body. */
  body?: string;
  /** Printed as `Error: <error>`. */
  error?: string;
}

/**
 * `pilot-agent request <method> <path> [<body>]`: an HTTP request to a local debug port (Envoy's admin
 * API by default), printing the body; a status above 399 other than 404 is an error, as in pilot-agent.
 */
export async function debugRequest(method: string, requestPath: string, body: string | undefined, debugPort: number): Promise<RequestResult> {
  if (!(ALLOWED_DEBUG_PORTS as readonly number[]).includes(debugPort)) {
    return { code: 255, error: `debug port ${debugPort} is not in allowed list [${ALLOWED_DEBUG_PORTS.join(' ')}]` };
  }
  const url = `http://localhost:${debugPort}/${requestPath.replace(/^\/+/, '')}`;
  try {
    const response = await fetch(url, {
      method: method.toUpperCase(),
      body: body === undefined || body === '' ? undefined : body,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    if (response.status > 399 && response.status !== 404) {
      return { code: 255, error: `received unsuccessful status code ${response.status}: ${text}` };
    }
    return { code: 0, body: text };
  } catch (err) {
    return { code: 255, error: `${method.toUpperCase()} ${url}: ${describeFetchError(err)}` };
  }
}
