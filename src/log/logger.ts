import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import winston from 'winston';
import { formatJson, formatText, type LogRecord } from './format.js';
import { redact, redactValue } from './redact.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal', 'none'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const SEVERITY: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4, none: 5 };
// winston orders levels the other way round: lower number = more severe.
const WINSTON_LEVELS = { fatal: 0, error: 1, warn: 2, info: 3, debug: 4 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly scopeName: string;
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  isEnabled(level: LogLevel): boolean;
  /** A logger for another Istio scope (`xdsproxy`, `sds`, `cache`, ...), sharing the same output. */
  scope(name: string): Logger;
}

export interface LogOptions {
  /** `--log_as_json` */
  readonly asJson: boolean;
  /** `--log_output_level`, e.g. `default:info,sds:debug` or `all:debug` or just `debug`. */
  readonly outputLevel: string;
  /** `--log_target`: `stdout`, `stderr` or a file path. */
  readonly target: string;
}

export const DEFAULT_LOG_OPTIONS: LogOptions = { asJson: false, outputLevel: 'default:info,grpc:none', target: 'stdout' };

export interface ScopeLevels {
  readonly byScope: ReadonlyMap<string, LogLevel>;
  readonly fallback: LogLevel;
}

function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/**
 * Parses Istio's `--log_output_level`: comma-separated `scope:level`; a bare level sets the `default`
 * scope only (every other scope keeps info); `all:<level>` sets every scope and ends the list, as in
 * Istio's pkg/log. Istio's effective default is `default:info,grpc:none`.
 */
export function parseOutputLevels(spec: string): ScopeLevels {
  const byScope = new Map<string, LogLevel>([['grpc', 'none']]);
  for (const raw of spec.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const colon = item.lastIndexOf(':');
    const scope = colon < 0 ? 'default' : item.slice(0, colon);
    const level = (colon < 0 ? item : item.slice(colon + 1)).toLowerCase();
    if (!isLogLevel(level)) {
      throw new Error(`--log_output_level: invalid level "${level}" for scope "${scope}" (want one of ${LOG_LEVELS.join(', ')})`);
    }
    if (scope === 'all') return { byScope: new Map(), fallback: level };
    byScope.set(scope, level);
  }
  return { byScope, fallback: 'info' };
}


/** Owns the winston logger and the output stream; hands out scoped loggers. */
export class LogRoot {
  readonly #winston: winston.Logger;
  readonly #levels: ScopeLevels;
  readonly #ownedStream?: Writable;
  /** Wall-clock ms at performance.now() = 0: µs timestamps that never go backwards between lines. */
  #clockAnchor = Date.now() - performance.now();

  constructor(options: LogOptions = DEFAULT_LOG_OPTIONS, stream?: Writable) {
    this.#levels = parseOutputLevels(options.outputLevel);
    let out = stream;
    if (!out) {
      if (options.target === 'stdout' || options.target === '') out = process.stdout;
      else if (options.target === 'stderr') out = process.stderr;
      else {
        const file = createWriteStream(options.target, { flags: 'a' });
        // A log file that cannot be written must not crash the agent: say so once on stderr.
        file.once('error', (err) => process.stderr.write(`cannot write log file ${options.target}: ${err.message}\n`));
        out = this.#ownedStream = file;
      }
    }
    const render = options.asJson ? formatJson : formatText;
    this.#winston = winston.createLogger({
      levels: WINSTON_LEVELS,
      level: 'debug',
      format: winston.format.printf((info) => render(info['record'] as LogRecord)),
      transports: [new winston.transports.Stream({ stream: out })],
    });
  }

  levelOf(scope: string): LogLevel {
    return this.#levels.byScope.get(scope) ?? this.#levels.fallback;
  }

  scope(name: string): Logger {
    return new ScopedLogger(this, name);
  }

  write(level: Exclude<LogLevel, 'none'>, scope: string, message: string, fields: LogFields | undefined): void {
    const safeFields: LogFields = {};
    if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) safeFields[k] = redactValue(v);
    const record: LogRecord = { time: this.#microsNow(), level, scope, message: redact(message), fields: safeFields };
    this.#winston.log(level, record.message, { record });
  }

  /**
   * Wall-clock time in µs: performance.now() for the digits below the millisecond, re-anchored to
   * Date.now() whenever the two drift apart by more than a millisecond (an NTP step after boot).
   */
  #microsNow(): number {
    const now = performance.now();
    const wall = Date.now();
    if (Math.abs(this.#clockAnchor + now - wall) > 1) this.#clockAnchor = wall - now;
    return Math.floor((this.#clockAnchor + now) * 1000);
  }

  /** Flushes and closes the output. */
  async close(): Promise<void> {
    const done = new Promise<void>((resolve) => this.#winston.once('finish', () => resolve()));
    this.#winston.end();
    await Promise.race([done, new Promise((r) => setTimeout(r, 500).unref())]);
    this.#ownedStream?.end();
  }
}

class ScopedLogger implements Logger {
  constructor(
    private readonly root: LogRoot,
    readonly scopeName: string,
  ) {}

  isEnabled(level: LogLevel): boolean {
    return SEVERITY[level] >= SEVERITY[this.root.levelOf(this.scopeName)] && level !== 'none';
  }

  #log(level: Exclude<LogLevel, 'none' | 'fatal'>, message: string, fields?: LogFields): void {
    if (this.isEnabled(level)) this.root.write(level, this.scopeName, message, fields);
  }

  debug(message: string, fields?: LogFields): void {
    this.#log('debug', message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.#log('info', message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.#log('warn', message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.#log('error', message, fields);
  }
  scope(name: string): Logger {
    return this.root.scope(name);
  }
}
