/**
 * gRPC's length-prefixed messages over an HTTP/2 stream: 1 byte compressed flag, 4 bytes big-endian
 * length, then the message. The pass-through reads these itself so it can forward a large message while
 * it is still arriving.
 */

export const FRAME_HEADER_BYTES = 5;
const EMPTY = Buffer.alloc(0);

export class FrameError extends Error {
  override readonly name = 'FrameError';
}

/** The 5-byte prefix of an uncompressed message of `length` bytes. */
export function frameHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = 0;
  header.writeUInt32BE(length, 1);
  return header;
}

/** What a FrameReader hands over as bytes arrive. */
export interface FrameSink {
  /** A new message of `length` bytes starts; returns how to treat it. */
  begin(length: number, compressed: boolean): 'stream' | 'whole';
  /** 'stream' mode: the next bytes of the current message, in order, as they arrive (no copies). */
  part(bytes: Buffer, header: Buffer | undefined): void;
  /** 'whole' mode: the complete message. */
  whole(message: Buffer): void;
}

/**
 * Splits an HTTP/2 DATA stream into gRPC messages. Each message is either assembled whole (small ones,
 * ones the agent must read), or streamed on chunk by chunk ('stream' mode), in which case the sink also
 * receives the original 5-byte header with the first part.
 *
 * `decide(prefix, total)` lets the sink look at a message's first bytes before choosing: it is called
 * with as many bytes as have arrived, and may return 'more' to wait for further bytes.
 */
export class FrameReader {
  #header = Buffer.alloc(0);
  #remaining = 0;
  #mode: 'header' | 'peek' | 'stream' | 'whole' = 'header';
  #parts: Buffer[] = [];
  #collected = 0;
  #length = 0;

  constructor(
    private readonly sink: FrameSink & { peek?(prefix: Buffer, length: number): 'stream' | 'whole' | 'more' },
    private readonly maxPeekBytes = 64 * 1024,
  ) {}

  push(chunk: Buffer): void {
    let data = chunk;
    while (data.length > 0) {
      if (this.#mode === 'header') {
        const need = FRAME_HEADER_BYTES - this.#header.length;
        this.#header = Buffer.concat([this.#header, data.subarray(0, need)]);
        data = data.subarray(need);
        if (this.#header.length < FRAME_HEADER_BYTES) return;
        const flag = this.#header[0];
        if (flag !== 0 && flag !== 1) throw new FrameError(`invalid gRPC message flag ${String(flag)}`);
        this.#length = this.#header.readUInt32BE(1);
        this.#remaining = this.#length;
        const choice = this.sink.begin(this.#length, flag === 1);
        this.#mode = choice === 'stream' && this.sink.peek && this.#length > 0 ? 'peek' : choice;
        this.#parts = [];
        this.#collected = 0;
        if (this.#remaining === 0) this.#finishWhole();
        continue;
      }
      // Most chunks lie wholly inside one message: pass them on without making new views.
      const isWhole = data.length <= this.#remaining;
      const take = isWhole ? data : data.subarray(0, this.#remaining);
      data = isWhole ? EMPTY : data.subarray(take.length);
      this.#remaining -= take.length;
      if (this.#mode === 'stream') {
        this.sink.part(take, undefined);
        if (this.#remaining === 0) this.#reset();
        continue;
      }
      this.#parts.push(take);
      this.#collected += take.length;
      if (this.#mode === 'peek') {
        const prefix = this.#parts.length === 1 ? take : Buffer.concat(this.#parts);
        this.#parts = [prefix];
        const verdict = this.#remaining === 0 ? 'whole' : this.sink.peek?.(prefix, this.#length) ?? 'whole';
        if (verdict === 'stream') {
          this.#mode = 'stream';
          this.sink.part(prefix, this.#header);
          this.#parts = [];
          if (this.#remaining === 0) this.#reset();
          continue;
        }
        if (verdict === 'whole' || this.#collected >= this.maxPeekBytes) this.#mode = 'whole';
      }
      if (this.#remaining === 0) this.#finishWhole();
    }
  }

  /** True between messages: a stream that ends here ended cleanly. */
  get isAtBoundary(): boolean {
    return this.#mode === 'header' && this.#header.length === 0;
  }

  #finishWhole(): void {
    const message = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#collected);
    this.#reset();
    this.sink.whole(message);
  }

  #reset(): void {
    this.#mode = 'header';
    this.#header = Buffer.alloc(0);
    this.#parts = [];
    this.#collected = 0;
  }
}
