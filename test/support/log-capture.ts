import { Writable } from 'node:stream';
import { LogRoot, type LogOptions } from '../../src/log/index.js';

/** A LogRoot writing into memory, for asserting on exact log lines. */
export class LogCapture {
  readonly lines: string[] = [];
  readonly root: LogRoot;

  constructor(options: Partial<LogOptions> = {}) {
    const lines = this.lines;
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n')) if (line !== '') lines.push(line);
        done();
      },
    });
    this.root = new LogRoot({ asJson: false, outputLevel: 'default:info,grpc:none', target: 'stdout', ...options }, stream);
  }

  /** Lines whose message column contains `text`. */
  find(text: string): string[] {
    return this.lines.filter((l) => l.includes(text));
  }

  async waitFor(text: string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.find((l) => l.includes(text));
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`log line containing "${text}" not seen; got:\n${this.lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
