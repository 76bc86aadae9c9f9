import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/grpc-js';

/**
 * A bidirectional gRPC stream for tests: send requests, await responses one by one with a timeout,
 * and observe how the stream ended.
 */
export class TestStream<Req, Res> {
  readonly #call: grpc.ClientDuplexStream<Req, Res>;
  readonly #received: Res[] = [];
  #waiters: (() => void)[] = [];
  status?: grpc.StatusObject;
  error?: grpc.ServiceError;

  constructor(client: grpc.Client, method: MethodDefinition<Req, Res>, metadata = new grpc.Metadata()) {
    this.#call = client.makeBidiStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, metadata);
    this.#call.on('data', (message: Res) => {
      this.#received.push(message);
      this.#wake();
    });
    this.#call.on('status', (status: grpc.StatusObject) => {
      this.status = status;
      this.#wake();
    });
    this.#call.on('error', (err: grpc.ServiceError) => {
      this.error = err;
      this.#wake();
    });
  }

  send(request: Req): void {
    this.#call.write(request);
  }

  end(): void {
    this.#call.end();
  }

  cancel(): void {
    this.#call.cancel();
  }

  /** The next response, or an error if none arrives within `timeoutMs` or the stream ends first. */
  async next(timeoutMs = 10_000): Promise<Res> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.#received.shift();
      if (message !== undefined) return message;
      if (this.status || this.error) throw new Error(`stream ended: ${this.error?.message ?? this.status?.details}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Asserts that nothing arrives within `ms`. */
  async expectSilence(ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.#received.length > 0) throw new Error(`expected no response, got ${this.#received.length}`);
  }

  /** Waits for the stream to end; resolves with its final status. */
  async ended(timeoutMs = 10_000): Promise<grpc.StatusObject | grpc.ServiceError> {
    const deadline = Date.now() + timeoutMs;
    while (!this.status && !this.error) {
      if (Date.now() > deadline) throw new Error('stream did not end');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.error ?? (this.status as grpc.StatusObject);
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}
