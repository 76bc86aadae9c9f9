/**
 * A strict reader of protobuf's JSON mapping, as Envoy parses a bootstrap: every field must exist in the
 * message (by proto name or its lowerCamel JSON name), every value must have the field's JSON type, a
 * oneof takes one member, and each `google.protobuf.Any` is checked against the type its `@type` names.
 * The result is in the form protobufjs's `Type.fromObject` takes (Any packed to bytes, Duration split
 * into seconds and nanos, Struct as Values), so a checked document can really be encoded and decoded.
 *
 * protobufjs's own `fromObject` silently drops unknown fields and coerces mistyped values, so it alone
 * would accept a misspelt bootstrap that Envoy rejects.
 */
import protobuf from 'protobufjs';

export interface ProtoJsonOptions {
  /**
   * Type URLs that the target binary knows but the loaded protos do not define: a TypedStruct naming
   * one is accepted without checking its `value`. (An Any naming one is still a problem: its fields
   * could not be encoded.)
   */
  readonly opaqueTypeUrls?: readonly string[];
}

export interface ProtoJsonResult {
  /** The document in protobufjs object form; meaningful only when `problems` is empty. */
  readonly object: Record<string, unknown>;
  /** One line per problem: `<json path>: <what is wrong>`. */
  readonly problems: string[];
}

type JsonObject = { [key: string]: unknown };

const TYPED_STRUCTS = new Set(['.udpa.type.v1.TypedStruct', '.xds.type.v3.TypedStruct']);
const WRAPPERS: Readonly<Record<string, string>> = {
  '.google.protobuf.DoubleValue': 'double',
  '.google.protobuf.FloatValue': 'float',
  '.google.protobuf.Int64Value': 'int64',
  '.google.protobuf.UInt64Value': 'uint64',
  '.google.protobuf.Int32Value': 'int32',
  '.google.protobuf.UInt32Value': 'uint32',
  '.google.protobuf.BoolValue': 'bool',
  '.google.protobuf.StringValue': 'string',
  '.google.protobuf.BytesValue': 'bytes',
};
/** Well-known types whose JSON form is not an object of fields: inside an Any they sit under `value`. */
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPERS),
  '.google.protobuf.Any',
  '.google.protobuf.Duration',
  '.google.protobuf.Timestamp',
  '.google.protobuf.FieldMask',
  '.google.protobuf.Struct',
  '.google.protobuf.Value',
  '.google.protobuf.ListValue',
]);
const MAX_DURATION_SECONDS = 315_576_000_000;

/** Checks `json` against `type` and converts it; see the module comment. */
export function fromProtoJson(type: protobuf.Type, json: unknown, options: ProtoJsonOptions = {}): ProtoJsonResult {
  const reader = new ProtoJsonReader(type.root, new Set(options.opaqueTypeUrls ?? []));
  const object = reader.message(type, json, '');
  return { object: isObject(object) ? object : {}, problems: reader.problems };
}

class ProtoJsonReader {
  readonly problems: string[] = [];

  constructor(
    private readonly root: protobuf.Namespace,
    private readonly opaqueTypeUrls: ReadonlySet<string>,
  ) {}

  private problem(path: string, message: string): undefined {
    this.problems.push(`${path === '' ? '(root)' : path}: ${message}`);
    return undefined;
  }

  /** A message value: well-known types by their JSON mapping, any other as an object of fields. */
  message(type: protobuf.Type, json: unknown, path: string): unknown {
    const name = type.fullName;
    const wrapped = WRAPPERS[name];
    if (wrapped !== undefined) {
      const value = this.scalar(wrapped, json, path);
      return value === undefined ? undefined : { value };
    }
    switch (name) {
      case '.google.protobuf.Any':
        return this.any(json, path);
      case '.google.protobuf.Duration':
        return this.duration(json, path);
      case '.google.protobuf.Timestamp':
        return this.timestamp(json, path);
      case '.google.protobuf.FieldMask':
        if (typeof json !== 'string') return this.problem(path, `expected a field mask string, got ${describe(json)}`);
        return { paths: json === '' ? [] : json.split(',').map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) };
      case '.google.protobuf.Struct':
        if (!isObject(json)) return this.problem(path, `expected an object (Struct), got ${describe(json)}`);
        return { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, this.value(v, `${path}.${k}`)])) };
      case '.google.protobuf.Value':
        return this.value(json, path);
      case '.google.protobuf.ListValue':
        if (!Array.isArray(json)) return this.problem(path, `expected an array (ListValue), got ${describe(json)}`);
        return { values: json.map((v: unknown, i) => this.value(v, `${path}[${i}]`)) };
    }
    if (!isObject(json)) return this.problem(path, `expected an object (${name.slice(1)}), got ${describe(json)}`);
    return this.object(type, json, path, new Set());
  }

  /** A message written as an object of fields (minus `skip`); a TypedStruct's value is checked too. */
  private object(type: protobuf.Type, json: JsonObject, path: string, skip: ReadonlySet<string>): JsonObject {
    const out = this.fields(type, json, path, skip);
    if (TYPED_STRUCTS.has(type.fullName)) this.typedStruct(json, path);
    return out;
  }

  /** The fields of `json` (minus `skip`) against the message's fields. */
  private fields(type: protobuf.Type, json: JsonObject, path: string, skip: ReadonlySet<string>): JsonObject {
    const byName = new Map<string, protobuf.Field>();
    for (const field of type.fieldsArray) {
      byName.set(field.name, field);
      byName.set(lowerCamel(field.name), field);
    }
    const out: JsonObject = {};
    const seen = new Map<protobuf.Field, string>();
    const oneofs = new Map<protobuf.OneOf, string>();
    for (const [key, value] of Object.entries(json)) {
      if (skip.has(key)) continue;
      const at = join(path, key);
      const field = byName.get(key);
      if (field === undefined) {
        this.problem(at, `unknown field of ${type.fullName.slice(1)}`);
        continue;
      }
      const earlier = seen.get(field);
      if (earlier !== undefined) {
        this.problem(at, `field set twice (also as "${earlier}")`);
        continue;
      }
      seen.set(field, key);
      if (field.partOf !== null) {
        const other = oneofs.get(field.partOf);
        if (other !== undefined) this.problem(at, `oneof ${field.partOf.name} already has "${other}"`);
        oneofs.set(field.partOf, key);
      }
      const converted = this.fieldValue(field, value, at);
      if (converted !== undefined) out[field.name] = converted;
    }
    return out;
  }

  private fieldValue(field: protobuf.Field, json: unknown, path: string): unknown {
    if (json === null && !isNullValueField(field)) return this.problem(path, 'null (leave the field out instead)');
    if (field instanceof protobuf.MapField) {
      if (!isObject(json)) return this.problem(path, `expected an object (map), got ${describe(json)}`);
      const out: JsonObject = {};
      for (const [key, value] of Object.entries(json)) {
        const at = `${path}[${JSON.stringify(key)}]`;
        if (this.mapKey(field.keyType, key, at) === undefined) continue;
        if (value === null) {
          this.problem(at, 'null map value');
          continue;
        }
        const converted = this.single(field, value, at);
        if (converted !== undefined) out[key] = converted;
      }
      return out;
    }
    if (field.repeated) {
      if (!Array.isArray(json)) return this.problem(path, `expected an array, got ${describe(json)}`);
      const out: unknown[] = [];
      json.forEach((item: unknown, i) => {
        const at = `${path}[${i}]`;
        if (item === null) {
          this.problem(at, 'null array element');
          return;
        }
        const converted = this.single(field, item, at);
        if (converted !== undefined) out.push(converted);
      });
      return out;
    }
    return this.single(field, json, path);
  }

  /** One value of a field (an element, for repeated and map fields). */
  private single(field: protobuf.Field, json: unknown, path: string): unknown {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) return this.message(resolved, json, path);
    if (resolved instanceof protobuf.Enum) return this.enumValue(resolved, json, path);
    return this.scalar(field.type, json, path);
  }

  private mapKey(keyType: string, key: string, path: string): string | undefined {
    if (keyType === 'string') return key;
    if (keyType === 'bool') return key === 'true' || key === 'false' ? key : this.problem(path, 'map key must be "true" or "false"');
    return this.scalar(keyType, key, path) === undefined ? undefined : key;
  }

  private enumValue(type: protobuf.Enum, json: unknown, path: string): unknown {
    if (type.fullName === '.google.protobuf.NullValue') {
      return json === null ? 0 : this.problem(path, `expected null, got ${describe(json)}`);
    }
    if (typeof json === 'string') {
      return Object.hasOwn(type.values, json) ? json : this.problem(path, `"${json}" is not a value of enum ${type.fullName.slice(1)}`);
    }
    if (typeof json === 'number' && Number.isInteger(json)) {
      return Object.values(type.values).includes(json) ? json : this.problem(path, `${json} is not a value of enum ${type.fullName.slice(1)}`);
    }
    return this.problem(path, `expected an enum name (${type.fullName.slice(1)}), got ${describe(json)}`);
  }

  private scalar(type: string, json: unknown, path: string): unknown {
    switch (type) {
      case 'string':
        return typeof json === 'string' ? json : this.problem(path, `expected a string, got ${describe(json)}`);
      case 'bool':
        return typeof json === 'boolean' ? json : this.problem(path, `expected a boolean, got ${describe(json)}`);
      case 'bytes':
        if (typeof json !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(json)) return this.problem(path, `expected base64 bytes, got ${describe(json)}`);
        return new Uint8Array(Buffer.from(json.replace(/-/g, '+').replace(/_/g, '/'), 'base64'));
      case 'double':
      case 'float':
        return this.floating(type, json, path);
      case 'int32':
      case 'sint32':
      case 'sfixed32':
        return this.integer(json, path, -(2 ** 31), 2 ** 31 - 1, type);
      case 'uint32':
      case 'fixed32':
        return this.integer(json, path, 0, 2 ** 32 - 1, type);
      case 'int64':
      case 'sint64':
      case 'sfixed64':
        return this.integer(json, path, -(2n ** 63n), 2n ** 63n - 1n, type);
      case 'uint64':
      case 'fixed64':
        return this.integer(json, path, 0, 2n ** 64n - 1n, type);
      default:
        return this.problem(path, `unsupported field type ${type}`);
    }
  }

  /** A number or a decimal string, in range; 64-bit values come back as strings (exact). */
  private integer(json: unknown, path: string, min: number | bigint, max: number | bigint, type: string): unknown {
    let value: bigint;
    if (typeof json === 'number' && Number.isInteger(json)) value = BigInt(json);
    else if (typeof json === 'string' && /^-?\d+$/.test(json)) value = BigInt(json);
    else return this.problem(path, `expected an integer (${type}), got ${describe(json)}`);
    if (value < BigInt(min) || value > BigInt(max)) return this.problem(path, `${value} is out of range for ${type}`);
    return typeof max === 'bigint' ? value.toString() : Number(value);
  }

  private floating(type: string, json: unknown, path: string): unknown {
    let value: number;
    if (typeof json === 'number') value = json;
    else if (json === 'NaN' || json === 'Infinity' || json === '-Infinity') value = Number(json);
    else if (typeof json === 'string' && /^-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(json)) value = Number(json);
    else return this.problem(path, `expected a number (${type}), got ${describe(json)}`);
    if (type === 'float' && Number.isFinite(value) && Math.abs(value) > 3.4028234663852886e38) return this.problem(path, `${value} is out of range for float`);
    return value;
  }

  private duration(json: unknown, path: string): unknown {
    const match = typeof json === 'string' ? /^(-?)(\d+)(?:\.(\d{1,9}))?s$/.exec(json) : null;
    if (match === null) return this.problem(path, `expected a duration like "1.5s", got ${describe(json)}`);
    const [, minus = '', whole = '0', fraction = ''] = match;
    const seconds = Number(whole);
    if (seconds > MAX_DURATION_SECONDS) return this.problem(path, 'duration out of range');
    const nanos = fraction === '' ? 0 : Number(fraction.padEnd(9, '0'));
    const sign = minus === '-' ? -1 : 1;
    return { seconds: sign * seconds, nanos: sign * nanos };
  }

  private timestamp(json: unknown, path: string): unknown {
    const match =
      typeof json === 'string' ? /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(json) : null;
    const ms = match === null || typeof json !== 'string' ? NaN : Date.parse(json);
    if (match === null || Number.isNaN(ms)) return this.problem(path, `expected an RFC 3339 timestamp, got ${describe(json)}`);
    const fraction = match[1] ?? '';
    return { seconds: Math.floor(ms / 1000), nanos: fraction === '' ? 0 : Number(fraction.padEnd(9, '0')) };
  }

  /** google.protobuf.Value in protobufjs form. */
  private value(json: unknown, path: string): unknown {
    if (json === null) return { null_value: 0 };
    if (typeof json === 'number') return Number.isFinite(json) ? { number_value: json } : this.problem(path, 'a Value number must be finite');
    if (typeof json === 'string') return { string_value: json };
    if (typeof json === 'boolean') return { bool_value: json };
    if (Array.isArray(json)) return { list_value: { values: json.map((v: unknown, i) => this.value(v, `${path}[${i}]`)) } };
    if (isObject(json)) {
      return { struct_value: { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, this.value(v, `${path}.${k}`)])) } };
    }
    return this.problem(path, `not a JSON value: ${describe(json)}`);
  }

  /** An Any: its `@type` names a loaded message, checked and packed into bytes. */
  private any(json: unknown, path: string): unknown {
    if (!isObject(json)) return this.problem(path, `expected an object (Any), got ${describe(json)}`);
    const typeUrl = json['@type'];
    if (typeof typeUrl !== 'string') return this.problem(path, 'Any without a string "@type"');
    const at = `${path}(${typeUrl.slice(typeUrl.lastIndexOf('/') + 1)})`;
    const type = this.typeOf(typeUrl);
    if (type === undefined) return this.problem(at, `@type names no loaded message: ${typeUrl}`);
    const before = this.problems.length;
    let inner: unknown;
    if (SPECIAL_JSON.has(type.fullName)) {
      const extra = Object.keys(json).filter((k) => k !== '@type' && k !== 'value');
      for (const key of extra) this.problem(join(at, key), `unknown field of an Any holding ${type.fullName.slice(1)}`);
      if (!Object.hasOwn(json, 'value')) return this.problem(at, `an Any holding ${type.fullName.slice(1)} needs "value"`);
      inner = this.message(type, json['value'], join(at, 'value'));
    } else {
      inner = this.object(type, json, at, new Set(['@type']));
    }
    if (this.problems.length > before || !isObject(inner)) return undefined;
    return { type_url: typeUrl, value: type.encode(type.fromObject(inner)).finish() };
  }

  /** A TypedStruct's `value` is the named extension's config in JSON: Envoy converts it, so check it too. */
  private typedStruct(json: JsonObject, path: string): void {
    const typeUrl = json['type_url'] ?? json['typeUrl'];
    if (typeof typeUrl !== 'string' || this.opaqueTypeUrls.has(typeUrl)) return;
    const type = this.typeOf(typeUrl);
    if (type === undefined) {
      this.problem(join(path, 'type_url'), `names no loaded message: ${typeUrl}`);
      return;
    }
    this.message(type, json['value'] ?? {}, `${join(path, 'value')}(${type.fullName.slice(1)})`);
  }

  private typeOf(typeUrl: string): protobuf.Type | undefined {
    const slash = typeUrl.lastIndexOf('/');
    if (slash < 0) return undefined;
    const found = this.root.lookup(`.${typeUrl.slice(slash + 1)}`);
    return found instanceof protobuf.Type ? found : undefined;
  }
}

function isNullValueField(field: protobuf.Field): boolean {
  const name = field.resolvedType?.fullName;
  return name === '.google.protobuf.Value' || name === '.google.protobuf.NullValue';
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function lowerCamel(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

function join(path: string, key: string): string {
  return /^[A-Za-z_@][\w@]*$/.test(key) ? (path === '' ? key : `${path}.${key}`) : `${path}[${JSON.stringify(key)}]`;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${JSON.stringify(value)}`;
}
