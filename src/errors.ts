/** Stable codes for runtime failures, so that logs and tests can match on them. */
export type AgentErrorCode =
  | 'CA_SIGN_FAILED'
  | 'CA_UNAUTHENTICATED'
  | 'CA_ROOT_MISSING'
  | 'CSR_FAILED'
  | 'CERT_INVALID'
  | 'SOCKET_IN_USE'
  | 'SOCKET_LISTEN_FAILED'
  | 'TOKEN_UNREADABLE'
  | 'UPSTREAM_ADDRESS_INVALID';

/** A runtime failure: says what was being done, and to what; keeps the original error as `cause`. */
export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
