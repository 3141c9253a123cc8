/**
 * The RFC 7239 `Forwarded` element the gateway adds for the hop it is: who connected (`for`), the
 * host they asked for and the scheme they used.
 */

/**
 * A quoted-string (RFC 9110 §5.6.4): `"` and `\` escaped. Host names seldom hold either: checking
 * first spares the usual request a regular-expression replace.
 */
function quoted(text: string): string {
  const plain = !text.includes('"') && !text.includes('\\');
  return `"${plain ? text : text.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Formats one `Forwarded` element. An IPv6 address is bracketed and quoted, as RFC 7239 §6 says;
 * an unknown peer is `unknown`.
 *
 * @example
 * ```ts
 * formatForwardedElement({ for: '203.0.113.7', host: 'api.example:8402', proto: 'https' });
 * // 'for=203.0.113.7;host="api.example:8402";proto=https'
 * ```
 */
export function formatForwardedElement(hop: { for: string; host: string; proto: string }): string {
  const node =
    hop.for === '' ? 'unknown' : hop.for.includes(':') ? quoted(`[${hop.for}]`) : hop.for;
  const host = hop.host === '' ? '' : `;host=${quoted(hop.host)}`;
  return `for=${node}${host};proto=${hop.proto}`;
}
