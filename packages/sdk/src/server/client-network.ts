/**
 * The client network of an IP address, the unit freebies and unauthenticated rate limits count
 * by: an IPv4 /24 or an IPv6 /48 (what one customer, one office or one cloud tenant usually holds).
 */

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX_GROUP = /^[0-9a-f]{1,4}$/;

/** The network of clients whose address could not be read: they share one allowance. */
export const UNKNOWN_NETWORK = 'unknown';

function ipv4Octets(text: string): number[] | undefined {
  const match = IPV4.exec(text);
  if (match === null) return undefined;
  const octets = match.slice(1).map(Number);
  return octets.every((octet) => octet <= 255) ? octets : undefined;
}

/** The eight 16-bit groups of an IPv6 address (zone removed), or undefined. */
function ipv6Groups(text: string): number[] | undefined {
  const address = text.split('%')[0] ?? '';
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const parts = halves.map((half) => (half === '' ? [] : half.split(':')));
  const groups: number[][] = [];
  for (const [index, half] of parts.entries()) {
    const values: number[] = [];
    for (const [position, part] of half.entries()) {
      const last = index === parts.length - 1 && position === half.length - 1;
      const octets = last ? ipv4Octets(part) : undefined;
      if (octets !== undefined) {
        const [a = 0, b = 0, c = 0, d = 0] = octets;
        values.push((a << 8) | b, (c << 8) | d);
      } else if (HEX_GROUP.test(part)) {
        values.push(Number.parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    groups.push(values);
  }
  const [head = [], tail = []] = groups;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(halves.length === 1 ? 0 : missing).fill(0), ...tail];
}

/**
 * The client network `ip` belongs to: `'203.0.113.0/24'` for IPv4, `'2001:db8:1::/48'` for IPv6.
 * IPv4-mapped IPv6 addresses (`::ffff:203.0.113.7`, as dual-stack servers report IPv4 clients)
 * count as IPv4; a zone (`%eth0`) is ignored; surrounding brackets are accepted. Anything else
 * (an empty string, a host name) gives {@link UNKNOWN_NETWORK}.
 *
 * @example
 * ```ts
 * clientNetwork('203.0.113.7');         // '203.0.113.0/24'
 * clientNetwork('2001:db8:1:2::7');     // '2001:db8:1::/48'
 * clientNetwork('::ffff:203.0.113.7');  // '203.0.113.0/24'
 * ```
 */
export function clientNetwork(ip: string): string {
  const text = ip
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (text.length > 64) return UNKNOWN_NETWORK;
  const v4 = ipv4Octets(text);
  if (v4 !== undefined) return `${v4[0]}.${v4[1]}.${v4[2]}.0/24`;
  const groups = ipv6Groups(text);
  if (groups === undefined) return UNKNOWN_NETWORK;
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0] = groups;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0xffff) {
    return `${g6 >> 8}.${g6 & 0xff}.${(groups[7] ?? 0) >> 8}.0/24`;
  }
  return `${g0.toString(16)}:${g1.toString(16)}:${g2.toString(16)}::/48`;
}
