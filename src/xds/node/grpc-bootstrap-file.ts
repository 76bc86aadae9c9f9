import type { Component } from '../../lifecycle.js';
import type { Logger } from '../../log/index.js';
import { writeGrpcBootstrap, type GrpcBootstrap } from './grpc-bootstrap.js';

/** Writes the gRPC bootstrap file at start (pilot-agent always writes it); it is left in place at exit. */
export class GrpcBootstrapFile implements Component {
  readonly name = 'grpc-bootstrap';

  constructor(private readonly deps: { file: string; bootstrap: GrpcBootstrap; log: Logger }) {}

  async start(_signal: AbortSignal): Promise<void> {
    await writeGrpcBootstrap(this.deps.file, this.deps.bootstrap);
    this.deps.log.info(`gRPC bootstrap written to ${this.deps.file}`);
  }

  async close(): Promise<void> {}
}
