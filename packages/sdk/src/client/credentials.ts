/**
 * The paying fetch's credential cache: where a paid credential is saved (an L402 token under the
 * paths its `tollway_paths` caveat names, else under the scope it was bought for, until its
 * `*_valid_until`; a single-use charge under its request path).
 *
 * @internal
 */
import { isTollwayError } from '../errors.js';
import { tollwayConditions } from '../l402/caveats.js';
import { firstPartyCaveats, parseMacaroon } from '../l402/macaroon.js';
import type { PayingContext } from './paying-context.js';
import { credentialHeader, type ResumeData } from './resume-data.js';
import type { StoredCredential } from './types.js';

/**
 * The scopes an L402 token covers (its `tollway_paths` caveat, else `fallback`) and its expiry.
 *
 * @internal
 */
export function tokenScope(
  macaroon: string,
  fallback: string,
): { scopes: string[]; expiresAt?: number } {
  let caveats: string[];
  try {
    caveats = firstPartyCaveats(parseMacaroon(macaroon));
  } catch (error) {
    if (isTollwayError(error)) return { scopes: [fallback] };
    throw error;
  }
  let paths: string[] | undefined;
  let until: number | undefined;
  for (const caveat of caveats) {
    const at = caveat.indexOf('=');
    if (at <= 0) continue;
    const condition = caveat.slice(0, at);
    const value = caveat.slice(at + 1);
    if (condition === tollwayConditions.paths) {
      paths = value
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p.startsWith('/'));
    } else if (condition.endsWith('_valid_until') && /^[0-9]{1,12}$/.test(value)) {
      until = Math.min(until ?? Number.POSITIVE_INFINITY, Number(value) * 1000);
    }
  }
  const scopes = paths !== undefined && paths.length > 0 ? paths : [fallback];
  return until === undefined ? { scopes } : { scopes, expiresAt: until };
}

/**
 * Saves the credential of a payment to `origin` (described by its resume data) with `preimage`:
 * an L402 token under every scope it covers, a single-use charge under its request path.
 *
 * @internal
 */
export async function saveCredential(
  context: PayingContext,
  origin: string,
  data: ResumeData,
  preimage: string,
): Promise<void> {
  const header = credentialHeader(data.credential, preimage);
  const { scopes, expiresAt } =
    data.credential.protocol === 'l402'
      ? tokenScope(data.credential.macaroon, data.scope)
      : { scopes: [data.path], expiresAt: undefined };
  const saved: StoredCredential[] = scopes.map((scope) => ({
    origin,
    scope,
    protocol: data.credential.protocol,
    header,
    createdAt: context.now(),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  }));
  for (const credential of saved) await context.store.saveCredential(credential);
}
