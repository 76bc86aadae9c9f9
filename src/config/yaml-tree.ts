/**
 * YAML text → a small tree that keeps the line of every key and value, so a bad field can be reported
 * as `mesh:12: defaultConfig.proxyAdminPort: ...`.
 *
 * Istio reads these files with sigs.k8s.io/yaml (go-yaml v2, YAML 1.1 scalars: `yes`/`on` are
 * booleans, `0777` is octal) and converts them to JSON before protobuf decoding. The same YAML 1.1
 * scalar rules are used here, minus two things go-yaml v2 does not do: sexagesimal numbers (`1:30`)
 * and timestamps stay strings.
 */
import type { JsonValue } from './types.js';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';

export type YScalarValue = string | number | boolean | null;

export type YNode =
  | { readonly kind: 'map'; readonly line: number; readonly entries: readonly YEntry[] }
  | { readonly kind: 'seq'; readonly line: number; readonly items: readonly YNode[] }
  | { readonly kind: 'scalar'; readonly line: number; readonly value: YScalarValue };

export interface YEntry {
  readonly key: string;
  readonly line: number;
  readonly value: YNode;
}

export interface YamlProblem {
  readonly line?: number;
  readonly message: string;
}

export interface YamlParseResult {
  /** Undefined when the text has errors or holds no document (empty, or comments only). */
  readonly root?: YNode;
  readonly errors: YamlProblem[];
  readonly warnings: YamlProblem[];
}

export function parseYamlTree(text: string): YamlParseResult {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, {
    lineCounter,
    version: '1.1',
    uniqueKeys: false,
    prettyErrors: false,
    customTags: (tags) =>
      tags.filter((tag) => typeof tag === 'string' || (tag.format !== 'TIME' && tag.tag !== 'tag:yaml.org,2002:timestamp')),
  });
  const lineOf = (offset: number | undefined): number | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line;
  const errors: YamlProblem[] = [];
  const warnings: YamlProblem[] = [];
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    for (const e of doc.errors) errors.push(problem(lineOf(e.pos[0]), e.message));
    for (const w of doc.warnings) warnings.push(problem(lineOf(w.pos[0]), w.message));
  }
  if (errors.length > 0) return { errors, warnings };
  const [first, ...rest] = list;
  if (rest.some((doc) => doc.contents !== null)) {
    // go-yaml's Unmarshal reads the first document and ignores the others.
    warnings.push(problem(lineOf(rest[0]?.range[0]), 'only the first YAML document is used; the others are ignored'));
  }
  if (first === undefined || first.contents === null) return { errors, warnings };
  const converter = new Converter(first, (offset) => lineOf(offset) ?? 1, warnings);
  const root = converter.convert(first.contents, 1);
  return { root, errors: errors.concat(converter.errors), warnings };
}

function problem(line: number | undefined, message: string): YamlProblem {
  const text = message.split('\n')[0] ?? message;
  return line === undefined ? { message: text } : { line, message: text };
}

class Converter {
  readonly errors: YamlProblem[] = [];
  readonly #resolving = new Set<Node>();

  constructor(
    private readonly doc: Document.Parsed,
    private readonly lineOf: (offset: number | undefined) => number,
    private readonly warnings: YamlProblem[],
  ) {}

  convert(node: unknown, fallbackLine: number): YNode {
    if (node === null || node === undefined) return { kind: 'scalar', line: fallbackLine, value: null };
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      const line = this.lineOf(node.range?.[0]);
      if (target === undefined || this.#resolving.has(target)) {
        this.errors.push({ line, message: `alias *${node.source} cannot be resolved` });
        return { kind: 'scalar', line, value: null };
      }
      this.#resolving.add(target);
      try {
        return this.convert(target, line);
      } finally {
        this.#resolving.delete(target);
      }
    }
    if (isMap(node)) {
      const line = this.lineOf(node.range?.[0]);
      const entries: YEntry[] = [];
      const merged: YEntry[] = [];
      for (const pair of node.items) {
        const keyLine = isScalar(pair.key) || isMap(pair.key) || isSeq(pair.key) ? this.lineOf(pair.key.range?.[0]) : line;
        if (isScalar(pair.key) && typeof pair.key.value === 'symbol') {
          merged.push(...this.#mergeEntries(pair.value, keyLine));
          continue;
        }
        const key = this.#keyText(pair.key, keyLine);
        if (key === undefined) continue;
        if (entries.some((e) => e.key === key)) {
          this.warnings.push({ line: keyLine, message: `duplicate key "${key}": the last one wins` });
        }
        entries.push({ key, line: keyLine, value: this.convert(pair.value, keyLine) });
      }
      // `<<: *anchor` supplies keys the map does not set itself.
      for (const entry of merged) if (!entries.some((e) => e.key === entry.key)) entries.push(entry);
      return { kind: 'map', line, entries: dedupe(entries) };
    }
    if (isSeq(node)) {
      const line = this.lineOf(node.range?.[0]);
      return { kind: 'seq', line, items: node.items.map((item) => this.convert(item, line)) };
    }
    if (isScalar(node)) {
      const line = this.lineOf(node.range?.[0]);
      const value: unknown = node.value;
      if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        return { kind: 'scalar', line, value };
      }
      if (typeof value === 'bigint') return { kind: 'scalar', line, value: Number(value) };
      // !!binary and other exotic tags: keep their source text.
      return { kind: 'scalar', line, value: typeof node.source === 'string' ? node.source : '' };
    }
    this.errors.push({ line: fallbackLine, message: 'unsupported YAML node' });
    return { kind: 'scalar', line: fallbackLine, value: null };
  }

  #mergeEntries(value: unknown, line: number): YEntry[] {
    const converted = this.convert(value, line);
    const maps = converted.kind === 'seq' ? converted.items : [converted];
    const out: YEntry[] = [];
    for (const map of maps) {
      if (map.kind !== 'map') {
        this.errors.push({ line, message: 'merge key "<<" needs a mapping or a list of mappings' });
        continue;
      }
      for (const entry of map.entries) if (!out.some((e) => e.key === entry.key)) out.push(entry);
    }
    return out;
  }

  /** Go's YAML→JSON conversion turns scalar keys into strings (`true: x` → "true"). */
  #keyText(key: unknown, line: number): string | undefined {
    if (key === null || key === undefined) return '';
    if (isScalar(key)) {
      const value: unknown = key.value;
      if (value === null) return '';
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value);
    }
    this.errors.push({ line, message: 'mapping keys must be plain scalars' });
    return undefined;
  }
}

/** Keeps the last occurrence of each key (in the position of the last one), as go-yaml does. */
function dedupe(entries: YEntry[]): YEntry[] {
  const last = new Map<string, number>();
  entries.forEach((e, i) => last.set(e.key, i));
  return entries.filter((e, i) => last.get(e.key) === i);
}

/** A short description of a node's type for messages: `a string ("abc")`, `a mapping`. */
export function describeNode(node: YNode): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  const value = node.value;
  if (value === null) return 'null';
  if (typeof value === 'string') return `a string (${JSON.stringify(value)})`;
  return `a ${typeof value} (${String(value)})`;
}

/** The node as plain JSON (for fields kept verbatim). */
export function toJson(node: YNode): JsonValue {
  if (node.kind === 'scalar') return node.value;
  if (node.kind === 'seq') return node.items.map(toJson);
  const out: Record<string, JsonValue> = {};
  for (const entry of node.entries) out[entry.key] = toJson(entry.value);
  return out;
}
