/**
 * The L402 offer: a macaroon minted for the shared invoice (`LSAT` line, then `L402` line), and
 * the check of `Authorization: L402 <macaroon>:<preimage>` credentials (and the `Macaroon` /
 * `Grpc-Metadata-Macaroon` header forms).
 */
import type { TollwayErrorCode } from '../errors.js';
import { bytesToHex, hexToBytes } from '../internal/bytes.js';
import { type CaveatScope, verifyCaveats } from '../l402/caveats.js';
import { formatL402Challenges } from '../l402/challenge.js';
import { parseL402Credential } from '../l402/credential.js';
import { decodeIdentifier, encodeIdentifier } from '../l402/identifier.js';
import { createMacaroon, firstPartyCaveats, formatMacaroon } from '../l402/macaroon.js';
import type { L402Credential } from '../l402/types.js';
import { verifyL402 } from '../l402/verify.js';
import type {
  CredentialCheck,
  CredentialVerdict,
  OfferKind,
  PaymentProof,
  PresentedCredential,
} from './offers.js';
import type { RootKeys } from './root-keys.js';
import { createRouteCaveats, type Route, type Sale } from './route.js';

/** Options of {@link createL402Offer}. */
export interface L402OfferOptions {
  rootKeys: RootKeys;
  /** `legacy` (default): `LSAT` then `L402` line; `spec`: one `L402 version="0", token=…` line. */
  form?: 'legacy' | 'spec';
}

/** Codes verifyL402 returns only after the signature verified (caveat checks). */
const CAVEAT_CODES = new Set<TollwayErrorCode>([
  'token_expired',
  'wrong_service',
  'caveat_not_satisfied',
  'invalid_caveat',
  'unknown_caveat',
]);

/** A token whose signature verified: what later requests with the same credential reuse. */
interface VerifiedToken {
  tokenId: string;
  paymentHash: string;
  caveats: string[];
}

function proofOf(token: VerifiedToken, scope: CaveatScope, check: CredentialCheck): PaymentProof {
  const tier = scope.services?.find((grant) => grant.name === check.route.service)?.tier;
  return {
    protocol: 'l402',
    tokenId: token.tokenId,
    account: token.paymentHash,
    paymentHash: token.paymentHash,
    headers: [],
    ...(tier === undefined ? {} : { tier }),
    ...(scope.validUntil === undefined ? {} : { expiresAt: scope.validUntil * 1000 }),
    ...(scope.uses === undefined ? {} : { maxUses: scope.uses }),
    ...(scope.balanceMsat === undefined ? {} : { balanceMsat: scope.balanceMsat }),
    ...priceOf(scope),
    ...(scope.boughtWith === undefined ? {} : { boughtWith: scope.boughtWith }),
  };
}

/** The price a token paid per request, in its listed unit, from its caveats. */
function priceOf(scope: CaveatScope): Pick<PaymentProof, 'maxPrice'> {
  if (scope.priceMsat !== undefined) return { maxPrice: { unit: 'msat', msat: scope.priceMsat } };
  if (scope.priceMicroUsd !== undefined) {
    return { maxPrice: { unit: 'usd', microUsd: scope.priceMicroUsd } };
  }
  return {};
}

function requestOf(check: CredentialCheck) {
  return {
    service: check.route.service,
    path: check.path,
    method: check.method,
    now: check.now / 1000,
    ...(check.route.requiresCapability === undefined
      ? {}
      : { capability: check.route.requiresCapability }),
  };
}

/** True when `a` and `b` are checked against the same caveats, the time aside. */
function sameShape(a: CredentialCheck, b: CredentialCheck): boolean {
  return (
    a.route.service === b.route.service &&
    a.route.requiresCapability === b.route.requiresCapability &&
    a.method === b.method &&
    a.path === b.path
  );
}

function present(credential: L402Credential, rootKeys: RootKeys): PresentedCredential {
  const macaroon = credential.macaroons[0];
  let verified: VerifiedToken | undefined;

  function firstCheck(check: CredentialCheck): CredentialVerdict {
    const verifyWith = (index: number) =>
      verifyL402(credential, {
        ...requestOf(check),
        resolveRootKey: (_identifier, raw) => rootKeys.rootKey(raw, index),
      });
    let result = verifyWith(0);
    for (let index = 1; index < rootKeys.size; index++) {
      if (result.ok || result.code !== 'invalid_signature') break;
      result = verifyWith(index);
    }
    if (!result.ok && !CAVEAT_CODES.has(result.code)) return result;
    if (macaroon === undefined) {
      return { ok: false, code: 'invalid_credential', message: 'the credential has no macaroon' };
    }
    // The signature verified (a caveat may still have failed): later requests skip to the caveats.
    const identifier = decodeIdentifier(macaroon.identifier);
    verified = {
      tokenId: bytesToHex(identifier.tokenId),
      paymentHash: bytesToHex(identifier.paymentHash),
      caveats: firstPartyCaveats(macaroon),
    };
    return result.ok ? { ok: true, proof: proofOf(verified, result.value, check) } : result;
  }

  // The last request shape this token passed for, and its proof: repeated requests of the same
  // shape reuse it while the token has not expired (the only caveat that depends on time).
  let lastCheck: CredentialCheck | undefined;
  let lastProof: PaymentProof | undefined;

  return {
    kind: 'l402',
    verify(check) {
      if (verified === undefined) return firstCheck(check);
      if (lastCheck !== undefined && lastProof !== undefined && sameShape(check, lastCheck)) {
        const { expiresAt } = lastProof;
        if (expiresAt === undefined || check.now < expiresAt) {
          return { ok: true, proof: lastProof };
        }
      }
      const scope = verifyCaveats(verified.caveats, requestOf(check));
      if (!scope.ok) return scope;
      lastCheck = check;
      lastProof = proofOf(verified, scope.value, check);
      return { ok: true, proof: lastProof };
    },
  };
}

/** What {@link mintL402Token} mints a token for. */
export interface L402Mint {
  route: Route;
  /** The payment the token is for: its preimage is the credential's second half. */
  paymentHash: Uint8Array;
  tokenId: Uint8Array;
  sale: Sale;
  /** Caveats appended after the route's (`tollway_bought_with=x402`). */
  caveats?: readonly string[];
}

/**
 * Mints a token (identifier v0, a root key derived from the current master secret, the route's
 * caveats) for one payment.
 *
 * @example
 * ```ts
 * const macaroon = mintL402Token(rootKeys, { route, paymentHash, tokenId: createTokenId(), sale });
 * ```
 */
export function mintL402Token(rootKeys: RootKeys, mint: L402Mint) {
  const identifier = encodeIdentifier({
    version: 0,
    paymentHash: mint.paymentHash,
    tokenId: mint.tokenId,
  });
  return createMacaroon({
    rootKey: rootKeys.rootKey(identifier),
    identifier,
    caveats: [...createRouteCaveats(mint.route, mint.sale), ...(mint.caveats ?? [])],
  });
}

/**
 * Creates the L402 offer kind. Tokens carry identifier v0 (the invoice's payment hash and the
 * shared token id), a root key derived from the current master secret, and the route's caveats;
 * credentials verify under any accepted master secret.
 *
 * @example
 * ```ts
 * const l402 = createL402Offer({ rootKeys: createRootKeys([secret]) });
 * ```
 */
export function createL402Offer(options: L402OfferOptions): OfferKind {
  const { rootKeys } = options;
  return {
    name: 'l402',
    headers: ['macaroon', 'grpc-metadata-macaroon'],
    offer(parts) {
      const { invoice } = parts;
      if (invoice === undefined) return undefined;
      const balanceMsat = parts.route.balance === undefined ? undefined : parts.amountMsat;
      const macaroon = mintL402Token(rootKeys, {
        route: parts.route,
        paymentHash: hexToBytes(invoice.paymentHash, 32),
        tokenId: parts.tokenId,
        sale: { balanceMsat, price: parts.price, now: parts.now },
      });
      const challenges = formatL402Challenges({
        macaroon,
        invoice: invoice.paymentRequest,
        ...(options.form === undefined ? {} : { form: options.form }),
      });
      return {
        challenges,
        entry: {
          protocol: 'l402',
          scheme: 'L402',
          amount: parts.amountMsat.toString(),
          unit: 'msat',
          invoice: invoice.paymentRequest,
          paymentHash: invoice.paymentHash,
          macaroon: formatMacaroon(macaroon),
          expiresAt: new Date(invoice.expiresAt).toISOString(),
          credential: 'Authorization: L402 <macaroon>:<hex preimage of the invoice>',
        },
      };
    },
    read(source) {
      const macaroonHeader = source.headers.get('macaroon');
      const grpcMetadataMacaroon = source.headers.get('grpc-metadata-macaroon');
      const credential = parseL402Credential(source.authorization, {
        ...(macaroonHeader === null ? {} : { macaroonHeader }),
        ...(grpcMetadataMacaroon === null ? {} : { grpcMetadataMacaroon }),
      });
      return credential === undefined ? undefined : present(credential, rootKeys);
    },
  };
}
