/**
 * The paying fetch's credential cache: where a paid credential is saved (an L402 token under the
 * paths its `tollway_paths` caveat names, else under the scope it was bought for, until its
 * `*_valid_until`; a single-use charge under its request path), and whether a saved one can serve
 * a request. Several processes may share the store, so a token found there may have been bought
 * for another path or service: its caveats (`tollway_paths`, `tollway_methods`, `services`) are
 * read before it is sent.
 *
 * @internal
 */
import { isTollwayError } from '../errors.js';
import { bytesToHex } from '../internal/bytes.js';
import { tollwayConditions } from '../l402/caveats.js';
import { decodeIdentifier } from '../l402/identifier.js';
import { firstPartyCaveats, parseMacaroon } from '../l402/macaroon.js';
import type { Offer } from './offers.js';
import type { Acquired, PayingContext } from './paying-context.js';
import { credentialHeader, isReusable, protocolOf, type ResumeData } from './resume-data.js';
import { scopeCovers } from './store-common.js';
import type { StoredCredential } from './types.js';

/** Where an L402 token can be used, as its first-party caveats say; an absent member: anywhere. */
export interface TokenReach {
  /** `tollway_paths`: path prefixes. */
  paths?: string[];
  /** `tollway_methods`: HTTP methods, upper case. */
  methods?: string[];
  /** `services`: the names of the services it grants. */
  services?: string[];
  /** The earliest `<service>_valid_until`, unix ms. */
  expiresAt?: number;
  /** `tollway_price_msat`: the price of one request the token paid for (what one use is worth). */
  priceMsat?: bigint;
}

/** Splits a comma list, items trimmed, empty ones dropped. */
function listOf(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}

/** The name in a `services` grant, `<name>:<tier>`. */
function serviceName(grant: string): string {
  const colon = grant.lastIndexOf(':');
  return colon < 0 ? grant : grant.slice(0, colon);
}

/**
 * The reach of an L402 token (base64 macaroon), or undefined when it is not a macaroon (tokens
 * are opaque to a client; Tollway's and Aperture's are macaroons). Repeated conditions may only
 * narrow, so the last of each is read.
 *
 * @internal
 */
export function tokenReach(macaroon: string): TokenReach | undefined {
  let caveats: string[];
  try {
    caveats = firstPartyCaveats(parseMacaroon(macaroon));
  } catch (error) {
    if (isTollwayError(error)) return undefined;
    throw error;
  }
  const reach: TokenReach = {};
  for (const caveat of caveats) {
    const at = caveat.indexOf('=');
    if (at <= 0) continue;
    const condition = caveat.slice(0, at);
    const value = caveat.slice(at + 1);
    if (condition === tollwayConditions.paths) {
      reach.paths = listOf(value).filter((path) => path.startsWith('/'));
    } else if (condition === tollwayConditions.methods) {
      reach.methods = listOf(value).map((method) => method.toUpperCase());
    } else if (condition === 'services') {
      reach.services = listOf(value).map(serviceName);
    } else if (condition === tollwayConditions.priceMsat && /^[0-9]{1,19}$/.test(value)) {
      reach.priceMsat = BigInt(value);
    } else if (condition.endsWith('_valid_until') && /^[0-9]{1,12}$/.test(value)) {
      reach.expiresAt = Math.min(reach.expiresAt ?? Number.POSITIVE_INFINITY, Number(value) * 1000);
    }
  }
  return reach;
}

/**
 * The scopes an L402 token is saved under (its `tollway_paths` caveat, else `fallback`) and its
 * expiry.
 *
 * @internal
 */
export function tokenScope(
  macaroon: string,
  fallback: string,
): { scopes: string[]; expiresAt?: number } {
  const reach = tokenReach(macaroon);
  const paths = reach?.paths;
  const scopes = paths !== undefined && paths.length > 0 ? paths : [fallback];
  return reach?.expiresAt === undefined ? { scopes } : { scopes, expiresAt: reach.expiresAt };
}

/** A request a saved credential might be sent with. */
export interface CredentialTarget {
  path: string;
  method: string;
  /** The services the server's L402 offers for this request sell, when it named any. */
  services?: ReadonlySet<string>;
}

/** The macaroon of an L402 (or LSAT) `Authorization` value, or undefined for any other credential. */
function l402Macaroon(header: { name: string; value: string }): string | undefined {
  if (header.name.toLowerCase() !== 'authorization') return undefined;
  return /^(?:L402|LSAT) ([^\s:]+):[0-9a-fA-F]{64}$/i.exec(header.value)?.[1];
}

/** Credential values whose reach is remembered at most (then the memory starts over). */
const REMEMBERED_REACHES = 256;

/**
 * The reach of the L402 token a credential carries (null: another credential, or an opaque
 * token), read once per credential value: a cached token is checked on every send.
 *
 * @internal
 */
export function credentialReach(
  context: PayingContext,
  header: { name: string; value: string },
): TokenReach | null {
  const known = context.reaches.get(header.value);
  if (known !== undefined) return known;
  const macaroon = l402Macaroon(header);
  const reach = (macaroon === undefined ? undefined : tokenReach(macaroon)) ?? null;
  if (context.reaches.size >= REMEMBERED_REACHES) context.reaches.clear();
  context.reaches.set(header.value, reach);
  return reach;
}

/**
 * False when the caveats of a saved L402 token say it cannot serve `target`: its paths do not
 * cover the path, its methods do not list the method, or the services it grants are not those
 * the server sells for this request. True otherwise (other credentials are saved for their exact
 * path; an opaque token says nothing).
 *
 * @internal
 */
export function credentialApplies(
  context: PayingContext,
  header: { name: string; value: string },
  target: CredentialTarget,
): boolean {
  const reach = credentialReach(context, header);
  if (reach === null) return true;
  const { paths, methods, services } = reach;
  if (paths !== undefined && paths.length > 0 && !paths.some((p) => scopeCovers(p, target.path))) {
    return false;
  }
  if (methods !== undefined && !methods.includes(target.method.toUpperCase())) return false;
  const wanted = target.services;
  if (services === undefined || wanted === undefined || wanted.size === 0) return true;
  return services.some((service) => wanted.has(service));
}

/**
 * The services the L402 offers of a refusal sell (from their macaroons' `services` caveats);
 * empty when none names any.
 *
 * @internal
 */
export function offeredServices(offers: readonly Offer[]): Set<string> {
  const services = new Set<string>();
  for (const offer of offers) {
    if (offer.protocol !== 'l402') continue;
    for (const service of tokenReach(offer.macaroon)?.services ?? []) services.add(service);
  }
  return services;
}

/**
 * The credential saved for `target`'s path on `origin` (the longest scope covering it, not
 * expired), when its caveats let it serve `target`.
 *
 * @internal
 */
export async function findSavedCredential(
  context: PayingContext,
  origin: string,
  target: CredentialTarget,
): Promise<StoredCredential | undefined> {
  const saved = await context.store.findCredential(origin, target.path, context.now());
  return saved !== undefined && credentialApplies(context, saved.header, target)
    ? saved
    : undefined;
}

/**
 * The credential to send of one read from the store.
 *
 * @internal
 */
export function acquiredOf(stored: StoredCredential): Acquired {
  return {
    header: stored.header,
    protocol: stored.protocol,
    reusable: stored.singleUse !== true,
    ...(stored.account === undefined ? {} : { account: stored.account }),
    stored,
  };
}

/**
 * Saves a single-use credential (an MPP charge, an x402 payment) that was not spent — the server
 * released it, or it could not be sent — under the path of its request, for the next call there.
 *
 * @internal
 */
export async function keepSingleUse(
  context: PayingContext,
  url: URL,
  credential: Acquired,
): Promise<void> {
  await context.store.saveCredential({
    origin: url.origin,
    scope: url.pathname,
    protocol: credential.protocol,
    header: credential.header,
    singleUse: true,
    createdAt: context.now(),
    ...(credential.account === undefined ? {} : { account: credential.account }),
  });
}

/**
 * Saves the credential of the balance an x402 payment bought, as the server handed it over
 * (`Tollway-Credential: L402 <macaroon>:<secret>`), under every scope its token covers, for the
 * later calls to present. Returns its account (the token's payment hash), or undefined when the
 * value is not an L402 credential.
 *
 * @internal
 */
export async function saveBoughtCredential(
  context: PayingContext,
  origin: string,
  value: string,
): Promise<string | undefined> {
  const header = { name: 'Authorization', value: value.trim() };
  const macaroon = l402Macaroon(header);
  if (macaroon === undefined) return undefined;
  let account: string;
  try {
    account = bytesToHex(decodeIdentifier(parseMacaroon(macaroon).identifier).paymentHash);
  } catch (error) {
    if (isTollwayError(error)) return undefined;
    throw error;
  }
  const { scopes, expiresAt } = tokenScope(macaroon, '/');
  for (const scope of scopes) {
    await context.store.saveCredential({
      origin,
      scope,
      protocol: 'l402',
      header,
      account,
      createdAt: context.now(),
      ...(expiresAt === undefined ? {} : { expiresAt }),
    });
  }
  return account;
}

/**
 * Saves the credential of a payment to `origin` (described by its resume data) with `preimage`:
 * an L402 token under every scope it covers, an MPP charge of a balance under the scope a token
 * without path caveats gets, a single-use charge under its request path. Its account is the
 * payment hash.
 *
 * @internal
 */
export async function saveCredential(
  context: PayingContext,
  origin: string,
  data: ResumeData,
  paid: { preimage: string; paymentHash: string },
): Promise<void> {
  const { preimage, paymentHash } = paid;
  const header = credentialHeader(data.credential, preimage);
  const reusable = isReusable(data.credential);
  const { scopes, expiresAt } =
    data.credential.protocol === 'l402'
      ? tokenScope(data.credential.macaroon, data.scope)
      : { scopes: [reusable ? data.scope : data.path], expiresAt: undefined };
  const saved: StoredCredential[] = scopes.map((scope) => ({
    origin,
    scope,
    protocol: protocolOf(data.credential),
    header,
    account: paymentHash,
    createdAt: context.now(),
    ...(reusable ? {} : { singleUse: true }),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  }));
  for (const credential of saved) await context.store.saveCredential(credential);
}
