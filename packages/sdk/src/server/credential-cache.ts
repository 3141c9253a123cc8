/**
 * The cache of verified credentials: the engine keys it on the exact text of every header that
 * can carry a credential, so a repeated credential skips parsing and signature checks. Entries
 * keep the whole text, and a hit must match it.
 */
import type { Lru } from './lru.js';
import { createLru } from './lru.js';
import type { PresentedCredential } from './offers.js';
import type { PaywallRequest } from './types.js';

/** Verified credentials by the text of their headers; see {@link createCredentialCache}. */
export interface CredentialCache {
  /** The credential verified before for exactly `text`, if any. */
  get(text: string): PresentedCredential | undefined;
  set(text: string, presented: PresentedCredential): void;
}

const MAX_CACHED_CREDENTIALS = 10_000;

/** Characters of a credential's text that key the cache. */
const CACHE_SLOT_CHARS = 48;

/**
 * Creates an empty cache (bounded, least recently used first out).
 *
 * @example
 * ```ts
 * const cache = createCredentialCache();
 * cache.set(text, presented);
 * ```
 */
export function createCredentialCache(): CredentialCache {
  const entries: Lru<string, { text: string; presented: PresentedCredential }> =
    createLru(MAX_CACHED_CREDENTIALS);
  return {
    get(text) {
      const entry = entries.get(cacheSlot(text));
      return entry !== undefined && entry.text === text ? entry.presented : undefined;
    },
    set(text, presented) {
      entries.set(cacheSlot(text), { text, presented });
    },
  };
}

/**
 * The cache key of a credential text: its last {@link CACHE_SLOT_CHARS} characters. A map hashes a
 * fresh string on every look-up, and a whole L402 header (600+ characters, new with each request)
 * costs a third of a microsecond to hash. The tail holds the preimage and the end of the signed
 * token, so different credentials do not share it by chance, and an entry is only used when its
 * whole text matches.
 */
function cacheSlot(text: string): string {
  return text.length > CACHE_SLOT_CHARS ? text.slice(-CACHE_SLOT_CHARS) : text;
}

/**
 * The exact text of every credential-bearing header of `request`: the Authorization value itself
 * when it is the only one (the common case, and the cheapest to look up), else every value joined
 * after a line feed (which no header value contains). `headers` are the other credential headers
 * the offer kinds read (lower case). Empty when the request carries none.
 *
 * @example
 * ```ts
 * credentialText(request, ['macaroon', 'payment-signature']); // 'L402 AgEE…:9f3c…'
 * ```
 */
export function credentialText(request: PaywallRequest, headers: readonly string[]): string {
  const reader = request.headers;
  let others: string[] | undefined;
  for (let i = 0; i < headers.length; i++) {
    const value = reader.get(headers[i] as string);
    if (value === null) continue;
    others ??= headers.map(() => '');
    others[i] = value;
  }
  const authorization = request.authorization;
  if (authorization === undefined) {
    const header = reader.get('authorization');
    if (others === undefined) return header ?? '';
    return ['', header ?? '', ...others].join('\n');
  }
  if (others === undefined && authorization.length <= 1) return authorization[0] ?? '';
  return ['', ...authorization, ...(others ?? headers.map(() => ''))].join('\n');
}
