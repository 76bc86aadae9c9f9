/** Istio's log line formats (pkg/log): TAB-separated text, or one JSON object per line. */

/** A field value as Go's %v would print it: arrays as `[a b]`, everything else via String(). */
export function formatValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(formatValue).join(' ')}]`;
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC: Istio prints microseconds, JavaScript dates only carry milliseconds. */
export function formatTimestamp(epochMicros: number): string {
  const millis = Math.floor(epochMicros / 1000);
  const iso = new Date(millis).toISOString(); // 2026-11-21T10:56:51.123Z
  const micros = String(Math.floor(epochMicros % 1_000_000)).padStart(6, '0');
  return `${iso.slice(0, 19)}.${micros}Z`;
}

export interface LogRecord {
  readonly time: number; // epoch microseconds
  readonly level: string;
  readonly scope: string;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}

export function formatText(record: LogRecord): string {
  const columns = [formatTimestamp(record.time), record.level];
  // The default scope has no column of its own, as in Istio.
  if (record.scope !== 'default') columns.push(record.scope);
  columns.push(record.message);
  const pairs = Object.entries(record.fields).map(([k, v]) => `${k}=${formatValue(v)}`);
  if (pairs.length > 0) columns.push(pairs.join(' '));
  return columns.join('\t');
}

export function formatJson(record: LogRecord): string {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record.fields)) {
    fields[k] = Array.isArray(v) || typeof v === 'object' ? v : formatValue(v);
  }
  return JSON.stringify({
    level: record.level,
    time: formatTimestamp(record.time),
    scope: record.scope,
    msg: record.message,
    ...fields,
  });
}
