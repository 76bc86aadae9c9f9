import { status } from '@grpc/grpc-js';

// Go's codes.Code String() names: pilot-agent's error lines read `rpc error: code = Unavailable desc = ...`.
const GO_CODE_NAMES: Record<number, string> = {
  [status.OK]: 'OK',
  [status.CANCELLED]: 'Canceled',
  [status.UNKNOWN]: 'Unknown',
  [status.INVALID_ARGUMENT]: 'InvalidArgument',
  [status.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [status.NOT_FOUND]: 'NotFound',
  [status.ALREADY_EXISTS]: 'AlreadyExists',
  [status.PERMISSION_DENIED]: 'PermissionDenied',
  [status.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [status.FAILED_PRECONDITION]: 'FailedPrecondition',
  [status.ABORTED]: 'Aborted',
  [status.OUT_OF_RANGE]: 'OutOfRange',
  [status.UNIMPLEMENTED]: 'Unimplemented',
  [status.INTERNAL]: 'Internal',
  [status.UNAVAILABLE]: 'Unavailable',
  [status.DATA_LOSS]: 'DataLoss',
  [status.UNAUTHENTICATED]: 'Unauthenticated',
};

export function goCodeName(code: number): string {
  return GO_CODE_NAMES[code] ?? `Code(${code})`;
}

export interface GrpcErrorLike {
  code: number;
  details: string;
}

export function isGrpcError(err: unknown): err is Error & GrpcErrorLike {
  return err instanceof Error && typeof (err as Partial<GrpcErrorLike>).code === 'number';
}

/** An error as Go's status package prints it: `rpc error: code = Unauthenticated desc = <details>`. */
export function describeGrpcError(err: unknown): string {
  if (isGrpcError(err)) return `rpc error: code = ${goCodeName(err.code)} desc = ${err.details}`;
  return err instanceof Error ? err.message : String(err);
}
