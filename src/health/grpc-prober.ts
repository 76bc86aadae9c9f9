import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { errorMessage } from '../errors.js';
import { formatDuration } from '../log/index.js';
import { describeGrpcError, goCodeName, isGrpcError } from '../net/index.js';
import { joinHostPort } from './go-errors.js';
import { HEALTHY, settleFirst, unhealthy, type ProbeContext, type ProbeResult, type Prober } from './prober.js';
import { PROBE_USER_AGENT } from './http-prober.js';

export const HEALTH_CHECK_METHOD = '/grpc.health.v1.Health/Check';

/** grpc.health.v1.HealthCheckResponse.ServingStatus */
export const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
const SERVING = 1;

/*
 * grpc.health.v1 (grpc/health/v1/health.proto) is two one-field messages, and neither @grpc/grpc-js
 * nor this repository ships its .proto, so they are encoded here with protobufjs's Writer and Reader:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }   // enum: varint
 */

export function encodeHealthCheckRequest(service: string): Buffer {
  const writer = protobuf.Writer.create();
  // proto3 omits a field holding its default value.
  if (service !== '') writer.uint32((1 << 3) | 2).string(service);
  return Buffer.from(writer.finish());
}

/** The `status` of a HealthCheckResponse; 0 (UNKNOWN) when absent. Unknown fields are skipped. */
export function decodeHealthCheckResponse(bytes: Uint8Array): number {
  const reader = protobuf.Reader.create(bytes);
  let status = 0;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    if (tag >>> 3 === 1 && (tag & 7) === 0) status = reader.int32();
    else reader.skipType(tag & 7);
  }
  return status;
}

/**
 * grpc.health.v1.Health/Check over plaintext; healthy iff SERVING. A new channel per probe, closed
 * after it, as Istio dials one per probe. Messages follow Istio's GRPCProber.
 */
export class GrpcProber implements Prober {
  readonly kind = 'GRPCProber';
  readonly #target: string;

  constructor(
    host: string,
    private readonly port: number,
    private readonly service: string,
  ) {
    this.#target = joinHostPort(host, port);
  }

  probe({ signal, timeoutMs }: ProbeContext): Promise<ProbeResult> {
    let client: grpc.Client | undefined;
    let call: grpc.ClientUnaryCall | undefined;
    return settleFirst<ProbeResult>(signal, {
      start: (settle) => {
        client = new grpc.Client(this.#target, grpc.credentials.createInsecure(), {
          'grpc.primary_user_agent': PROBE_USER_AGENT,
          // A private subchannel: closing the client then really closes the connection.
          'grpc.use_local_subchannel_pool': 1,
        });
        call = client.makeUnaryRequest(
          HEALTH_CHECK_METHOD,
          (service: string) => encodeHealthCheckRequest(service),
          (bytes: Buffer) => decodeHealthCheckResponse(bytes),
          this.service,
          new grpc.Metadata(),
          {},
          (err, status) => {
            if (err) settle(unhealthy(this.#describe(err, timeoutMs)));
            else if (status === SERVING) settle(HEALTHY);
            // Istio's Go prober has no message here (and would fail on the missing error): say what came back.
            else settle(unhealthy(`health rpc probe on port ${this.port} returned status ${SERVING_STATUS[status ?? 0] ?? String(status)}`));
          },
        );
      },
      onAbort: () =>
        unhealthy(`health rpc probe timed out after ${formatDuration(timeoutMs)}: rpc error: code = DeadlineExceeded desc = context deadline exceeded`),
      onThrow: (err) => unhealthy(`health rpc probe failed: ${errorMessage(err)}`),
      cleanup: () => {
        call?.cancel();
        client?.close();
      },
    });
  }

  #describe(err: unknown, timeoutMs: number): string {
    if (!isGrpcError(err)) return `health rpc probe failed: ${errorMessage(err)}`;
    const text = describeGrpcError(err);
    switch (err.code as grpc.status) {
      case grpc.status.UNAVAILABLE:
        // Istio dials (blocking) before calling: an unreachable port is a connect failure.
        return `failed to connect health check grpc service on port ${this.port}: ${text}`;
      case grpc.status.UNIMPLEMENTED:
        return `service on port ${this.port} doesn't implement the grpc health protocol grpc.health.v1.Health: ${text}`;
      case grpc.status.DEADLINE_EXCEEDED:
        return `health rpc probe timed out after ${formatDuration(timeoutMs)}: ${text}`;
      default:
        return `health rpc probe failed with status ${goCodeName(err.code)}: ${text}`;
    }
  }
}
