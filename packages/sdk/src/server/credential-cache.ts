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

/** Characters from the end of a credential's text that key the cache. */
const CACHE_KEY_CHARS = 48;

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
  const entries: Lru<number, { text: string; presented: PresentedCredential }> =
    createLru(MAX_CACHED_CREDENTIALS);
  return {
    get(text) {
      const entry = entries.get(cacheKey(text));
      return entry !== undefined && entry.text === text ? entry.presented : undefined;
    },
    set(text, presented) {
      entries.set(cacheKey(text), { text, presented });
    },
  };
}

/**
 * The cache key of a credential text: a number hashed from its length and its last
 * {@link CACHE_KEY_CHARS} characters. A map keyed by strings hashes a fresh string on every
 * look-up (a whole L402 header is 600+ characters, new with each request), and a key cut from the
 * text is a new string each time too: its allocation and hash were a sixth of the paid request's
 * time in the engine. A number is hashed for free. The tail holds the preimage and the end of the
 * signed token, so different credentials do not share a key by chance; an entry is only used when
 * its whole text matches, and two texts with one key only take each other's place.
 */
function cacheKey(text: string): number {
  let hash = text.length;
  for (let i = Math.max(0, text.length - CACHE_KEY_CHARS); i < text.length; i++) {
    hash = (Math.imul(hash, 31) + text.charCodeAt(i)) | 0;
  }
  // Within V8's small integers, which a map keys without allocating.
  return hash & 0x3fffffff;
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
