import { isIPv4, isIPv6 } from 'node:net';

/**
 * Address bytes for A (4 bytes) or AAAA (16 bytes) records; undefined if `text` is not an IP address.
 * A zone (`fe80::1%eth0`) is accepted and dropped, as Go's netip does before building a record.
 * IPv4-mapped IPv6 addresses stay IPv6, as in Istio.
 */
export function ipBytes(text: string): Buffer | undefined {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  const zone = text.indexOf('%');
  const address = zone >= 0 ? text.slice(0, zone) : text;
  if (!isIPv6(address)) return undefined;
  return ipv6Bytes(address);
}

function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  let text = address;
  // A trailing dotted quad fills the last 32 bits.
  const lastColon = text.lastIndexOf(':');
  let tailGroups: number[] = [];
  if (text.indexOf('.', lastColon) > 0) {
    const quad = text.slice(lastColon + 1).split('.').map(Number);
    tailGroups = [(quad[0]! << 8) | quad[1]!, (quad[2]! << 8) | quad[3]!];
    text = text.slice(0, lastColon + 1) + '0';
  }
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const gap = text.indexOf('::');
  let groups: number[];
  if (gap >= 0) {
    const head = parse(text.slice(0, gap));
    const tail = parse(text.slice(gap + 2));
    if (tailGroups.length) tail.pop();
    const fill = 8 - head.length - tail.length - tailGroups.length;
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail, ...tailGroups];
  } else {
    groups = parse(text);
    if (tailGroups.length) groups.pop();
    groups.push(...tailGroups);
  }
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

/** Canonical text of address bytes (RFC 5952, `::ffff:a.b.c.d` for IPv4-mapped), like Go's netip. */
export function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  }
  // The longest run of two or more zero groups (the first on a tie) becomes `::`.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
