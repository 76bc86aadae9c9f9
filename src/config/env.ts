/**
 * The merged environment (process env over cluster.env over sidecar.env) with the origin of every
 * value, and typed readers with Go semantics that report bad values against that origin:
 * `cluster.env:7: ISTIO_META_DNS_CAPTURE: expected "true" or "false", got "yes"`.
 */
import { formatDuration } from '../log/index.js';
import type { ConfigErrorSource } from './errors.js';
import { isPort, parseBool, parseGoDuration, parseGoFloat, parseGoInt, splitHostPort } from './go-values.js';
import type { Issues } from './issues.js';

/** Where a value came from: an env file and line, `environment` (the process env), a mesh file line... */
export interface ValueOrigin {
  readonly file: string;
  readonly line?: number;
}

export interface EnvEntry {
  readonly value: string;
  readonly origin: ValueOrigin;
}

/** The `file` of values taken from the agent's own process environment. */
export const PROCESS_ENV_ORIGIN: ValueOrigin = { file: 'environment' };

export function sourceOf(origin: ValueOrigin, key: string): ConfigErrorSource {
  const source: ConfigErrorSource = { file: origin.file, key };
  if (origin.line !== undefined) source.line = origin.line;
  return source;
}

export class MergedEnv {
  readonly #entries = new Map<string, EnvEntry>();

  get(key: string): string | undefined {
    return this.#entries.get(key)?.value;
  }

  entry(key: string): EnvEntry | undefined {
    return this.#entries.get(key);
  }

  has(key: string): boolean {
    return this.#entries.has(key);
  }

  set(key: string, value: string, origin: ValueOrigin): void {
    this.#entries.set(key, { value, origin });
  }

  source(key: string): ConfigErrorSource {
    return sourceOf(this.#entries.get(key)?.origin ?? PROCESS_ENV_ORIGIN, key);
  }

  /** Keys starting with `prefix`, in insertion order. */
  withPrefix(prefix: string): [string, EnvEntry][] {
    return [...this.#entries].filter(([key]) => key.startsWith(prefix));
  }

  toRecord(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [key, { value }] of [...this.#entries].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[key] = value;
    return out;
  }
}

/** A value to convert, with where it came from (for the message). */
export interface SourcedValue {
  readonly value: string;
  readonly source: ConfigErrorSource;
}

export function expectBool(input: SourcedValue, fallback: boolean, issues: Issues): boolean {
  if (input.value === '') return emptyMeansDefault(input, String(fallback), issues, fallback);
  const parsed = parseBool(input.value);
  if (parsed === undefined) {
    issues.error(input.source, `expected "true" or "false", got "${input.value}"`);
    return fallback;
  }
  return parsed;
}

export interface NumberLimits {
  readonly min?: number;
  readonly max?: number;
}

/** A Go duration (`5s`, `1h30m`, `300ms`), in milliseconds. */
export function expectDuration(input: SourcedValue, fallbackMs: number, issues: Issues, limits: NumberLimits = {}): number {
  if (input.value === '') return emptyMeansDefault(input, formatDuration(fallbackMs), issues, fallbackMs);
  const parsed = parseGoDuration(input.value);
  if (parsed === undefined) {
    issues.error(input.source, `expected a duration such as "5s", "300ms" or "1h30m", got "${input.value}"`);
    return fallbackMs;
  }
  return checkLimits(input, parsed, fallbackMs, issues, limits, formatDuration);
}

export function expectInt(input: SourcedValue, fallback: number, issues: Issues, limits: NumberLimits = {}): number {
  if (input.value === '') return emptyMeansDefault(input, String(fallback), issues, fallback);
  const parsed = parseGoInt(input.value);
  if (parsed === undefined) {
    issues.error(input.source, `expected an integer, got "${input.value}"`);
    return fallback;
  }
  return checkLimits(input, parsed, fallback, issues, limits);
}

export function expectFloat(input: SourcedValue, fallback: number, issues: Issues, limits: NumberLimits = {}): number {
  if (input.value === '') return emptyMeansDefault(input, String(fallback), issues, fallback);
  const parsed = parseGoFloat(input.value);
  if (parsed === undefined) {
    issues.error(input.source, `expected a number, got "${input.value}"`);
    return fallback;
  }
  return checkLimits(input, parsed, fallback, issues, limits);
}

/** A TCP/UDP port: 1-65535, or also 0 where 0 means "off". */
export function expectPort(input: SourcedValue, fallback: number, issues: Issues, options: { allowZero?: boolean } = {}): number {
  if (input.value === '') return emptyMeansDefault(input, String(fallback), issues, fallback);
  const parsed = parseGoInt(input.value);
  if (parsed === undefined || !(isPort(parsed) || (options.allowZero === true && parsed === 0))) {
    issues.error(input.source, `expected a port number (${options.allowZero === true ? '0' : '1'}-65535), got "${input.value}"`);
    return fallback;
  }
  return parsed;
}

/** `host:port` (host may be empty, a name, or an IP; `[v6]:port`) with a valid port. */
export function expectHostPort(input: SourcedValue, fallback: string, issues: Issues, options: { allowZero?: boolean } = {}): string {
  if (input.value === '') return emptyMeansDefault(input, fallback, issues, fallback);
  const parts = splitHostPort(input.value);
  if (typeof parts === 'string') {
    issues.error(input.source, `expected host:port, got "${input.value}" (${parts})`);
    return fallback;
  }
  const port = parseGoInt(parts.port);
  const isZeroAllowed = options.allowZero === true && port === 0;
  if (port === undefined || (!isPort(port) && !isZeroAllowed)) {
    issues.error(input.source, `port "${parts.port}" in "${input.value}" is not a port number (${options.allowZero ? 0 : 1}-65535)`);
    return fallback;
  }
  return input.value;
}

/** A JSON object whose values are all strings (ISTIO_METAJSON_LABELS). Empty text means {}. */
export function expectJsonStringMap(input: SourcedValue, issues: Issues): Record<string, string> {
  if (input.value.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(input.value);
  } catch (err) {
    issues.error(input.source, `invalid JSON: ${firstLine(err)}`);
    return {};
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    issues.error(input.source, `expected a JSON object of strings, got ${jsonKind(parsed)}`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (typeof value !== 'string') {
      issues.error(input.source, `expected a JSON object of strings, but "${key}" is ${jsonKind(value)}`);
      return {};
    }
    out[key] = value;
  }
  return out;
}

/** Any JSON document (ISTIO_METAJSON_*): only checks that it parses. */
export function expectJson(input: SourcedValue, issues: Issues): void {
  if (input.value.trim() === '') return;
  try {
    JSON.parse(input.value);
  } catch (err) {
    issues.error(input.source, `invalid JSON: ${firstLine(err)}`);
  }
}

function emptyMeansDefault<T>(input: SourcedValue, shown: string, issues: Issues, fallback: T): T {
  issues.warn(input.source, `empty value, using the default ${shown}`);
  return fallback;
}

function checkLimits(
  input: SourcedValue,
  value: number,
  fallback: number,
  issues: Issues,
  limits: NumberLimits,
  show: (n: number) => string = String,
): number {
  if (limits.min !== undefined && value < limits.min) {
    issues.error(input.source, `must be >= ${show(limits.min)}, got "${input.value}"`);
    return fallback;
  }
  if (limits.max !== undefined && value > limits.max) {
    issues.error(input.source, `must be <= ${show(limits.max)}, got "${input.value}"`);
    return fallback;
  }
  return value;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value} (${JSON.stringify(value)})`;
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split('\n')[0] ?? text;
}

/** Typed reads of the merged environment; absent keys give the default silently. */
export class EnvReader {
  constructor(
    readonly env: MergedEnv,
    readonly issues: Issues,
  ) {}

  #input(key: string): SourcedValue | undefined {
    const entry = this.env.entry(key);
    return entry === undefined ? undefined : { value: entry.value, source: sourceOf(entry.origin, key) };
  }

  /** A string; a key set to '' stays '' (Go's env.Register semantics: only unset means default). */
  string(key: string, fallback: string): string {
    return this.env.get(key) ?? fallback;
  }

  bool(key: string, fallback: boolean): boolean {
    const input = this.#input(key);
    return input === undefined ? fallback : expectBool(input, fallback, this.issues);
  }

  durationMs(key: string, fallbackMs: number, limits?: NumberLimits): number {
    const input = this.#input(key);
    return input === undefined ? fallbackMs : expectDuration(input, fallbackMs, this.issues, limits);
  }

  int(key: string, fallback: number, limits?: NumberLimits): number {
    const input = this.#input(key);
    return input === undefined ? fallback : expectInt(input, fallback, this.issues, limits);
  }

  float(key: string, fallback: number, limits?: NumberLimits): number {
    const input = this.#input(key);
    return input === undefined ? fallback : expectFloat(input, fallback, this.issues, limits);
  }

  port(key: string, fallback: number, options?: { allowZero?: boolean }): number {
    const input = this.#input(key);
    return input === undefined ? fallback : expectPort(input, fallback, this.issues, options);
  }

  hostPort(key: string, fallback: string, options: { allowZero?: boolean } = {}): string {
    const input = this.#input(key);
    return input === undefined ? fallback : expectHostPort(input, fallback, this.issues, options);
  }

  jsonStringMap(key: string): Record<string, string> {
    const input = this.#input(key);
    return input === undefined ? {} : expectJsonStringMap(input, this.issues);
  }
}
