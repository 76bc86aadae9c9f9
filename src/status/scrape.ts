/**
 * Helpers for the merged `/stats/prometheus` scrape: which request headers go upstream, how long to
 * wait, and how the parts are joined so the result is still one valid Prometheus text exposition.
 */

/** The merged output is always Prometheus text 0.0.4, the only format every part can be asked for. */
export const PROMETHEUS_TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export const DEFAULT_SCRAPE_TIMEOUT_MS = 5_000;

/**
 * The scraper's `X-Prometheus-Scrape-Timeout-Seconds` (a decimal number of seconds) as milliseconds,
 * else 5 s, like pilot-agent.
 */
export function scrapeTimeoutMs(header: string | undefined): number {
  if (header === undefined) return DEFAULT_SCRAPE_TIMEOUT_MS;
  const seconds = Number(header.trim());
  return header.trim() !== '' && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : DEFAULT_SCRAPE_TIMEOUT_MS;
}

/**
 * The scraper's `Accept` with everything but the text format removed. The agent's own part is text
 * 0.0.4, so Envoy and the app must answer in text too: an OpenMetrics or protobuf part would not
 * merge. Undefined when nothing is left (the upstream's default is text).
 */
export function filterAccept(accept: string | undefined): string | undefined {
  if (accept === undefined) return undefined;
  const kept = accept
    .split(',')
    .map((item) => item.trim())
    .filter((item) => {
      const type = (item.split(';')[0] ?? '').trim().toLowerCase();
      return type === 'text/plain' || type === 'text/*' || type === '*/*';
    });
  return kept.length > 0 ? kept.join(',') : undefined;
}

/** Whether `Accept-Encoding` allows gzip (`gzip` or `*` with a non-zero q, and gzip not refused). */
export function acceptsGzip(acceptEncoding: string | undefined): boolean {
  if (!acceptEncoding) return false;
  let gzip: number | undefined;
  let any: number | undefined;
  for (const item of acceptEncoding.split(',')) {
    const [coding = '', ...params] = item.split(';').map((p) => p.trim());
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    const name = coding.toLowerCase();
    if (name === 'gzip' || name === 'x-gzip') gzip = q;
    else if (name === '*') any = q;
  }
  return (gzip ?? any ?? 0) > 0;
}

const NEWLINE = 0x0a;
const EOF_MARKER = Buffer.from('# EOF');

/**
 * Joins the parts, each ending in exactly one newline, so the last line of one part never runs into
 * the first of the next. An OpenMetrics `# EOF` a non-conforming upstream sent anyway is dropped: it
 * would end the exposition in the middle.
 */
export function joinExpositions(parts: readonly Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const raw of parts) {
    let part = raw;
    if (endsWithEof(part)) part = part.subarray(0, part.lastIndexOf(EOF_MARKER));
    if (part.length === 0) continue;
    out.push(part);
    if (part[part.length - 1] !== NEWLINE) out.push(Buffer.from('\n'));
  }
  return Buffer.concat(out);
}

function endsWithEof(part: Buffer): boolean {
  let end = part.length;
  while (end > 0 && (part[end - 1] === NEWLINE || part[end - 1] === 0x0d || part[end - 1] === 0x20)) end--;
  const start = end - EOF_MARKER.length;
  return start >= 0 && (start === 0 || part[start - 1] === NEWLINE) && part.subarray(start, end).equals(EOF_MARKER);
}
