import { isIPv6 } from 'node:net';
import { getSystemErrorMap } from 'node:util';

/*
 * Probe failures become the WorkloadEntry's `Healthy` condition message in istiod, so they are worded
 * as pilot-agent's Go errors are (`dial tcp 127.0.0.1:8080: connect: connection refused`): operators
 * and alerting that match on those messages keep working.
 */

// Go prints syscall errors with the C library's strerror text; libuv's wording differs for some.
const STRERROR: Record<string, string> = {
  EACCES: 'permission denied',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'cannot assign requested address',
  ECONNABORTED: 'software caused connection abort',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ENOENT: 'no such file or directory',
  ENOEXEC: 'exec format error',
  EPIPE: 'broken pipe',
  ETIMEDOUT: 'connection timed out',
};

// Go's syscall.Signal String() for the signals a probe command plausibly dies of.
const SIGNAL_TEXT: Record<string, string> = {
  SIGABRT: 'aborted',
  SIGBUS: 'bus error',
  SIGHUP: 'hangup',
  SIGINT: 'interrupt',
  SIGKILL: 'killed',
  SIGPIPE: 'broken pipe',
  SIGQUIT: 'quit',
  SIGSEGV: 'segmentation fault',
  SIGTERM: 'terminated',
};

export interface SystemErrorLike {
  code?: string;
  errno?: number;
  syscall?: string;
  address?: string;
  port?: number;
  hostname?: string;
  message: string;
}

function asSystemError(err: unknown): SystemErrorLike {
  if (err instanceof Error) return err;
  return { message: String(err) };
}

/** The strerror text for a Node system error, e.g. `connection refused`. */
export function systemErrorText(err: unknown): string {
  const e = asSystemError(err);
  if (e.code !== undefined && STRERROR[e.code] !== undefined) return STRERROR[e.code]!;
  if (typeof e.errno === 'number') {
    const known = getSystemErrorMap().get(e.errno);
    if (known) return known[1];
  }
  return e.message;
}

/** `host:port`, bracketing IPv6 literals, as Go's net.JoinHostPort. */
export function joinHostPort(host: string, port: number): string {
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A failed TCP dial as Go's *net.OpError prints it: `dial tcp 10.0.0.5:8080: connect: connection
 * refused`, with the bound source first when there is one (`dial tcp 127.0.0.6:0->10.0.0.5:8080: ...`).
 */
export function describeDialError(err: unknown, target: string, source?: string): string {
  const e = asSystemError(err);
  if (e.syscall === 'getaddrinfo' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
    const host = e.hostname ?? target;
    const why = e.code === 'EAI_AGAIN' ? 'temporary failure in name resolution' : 'no such host';
    return `dial tcp: lookup ${host}: ${why}`;
  }
  const to = e.address !== undefined && e.port !== undefined ? joinHostPort(e.address, e.port) : target;
  const from = source === undefined ? '' : `${joinHostPort(source, 0)}->`;
  if (e.syscall === 'connect' || e.syscall === 'bind') return `dial tcp ${from}${to}: ${e.syscall}: ${systemErrorText(e)}`;
  return e.message;
}

/** How Go's os/exec reports a command that did not exit 0: `exit status 3`, `signal: killed`. */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal !== null) return `signal: ${SIGNAL_TEXT[signal] ?? signal}`;
  return `exit status ${code ?? -1}`;
}

/** How Go's os/exec reports a command that could not be started. */
export function describeSpawnError(err: unknown, file: string): string {
  const e = asSystemError(err);
  // exec.Command looks a bare name up in $PATH first; a path is executed as given.
  if (e.code === 'ENOENT' && !file.includes('/')) return `exec: "${file}": executable file not found in $PATH`;
  return `fork/exec ${file}: ${systemErrorText(e)}`;
}
