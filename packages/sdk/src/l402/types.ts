/**
 * Data types shared across the L402 modules.
 */

/** A caveat as carried in a macaroon. First-party caveats have no `verificationId`. */
export interface Caveat {
  /** The caveat identifier; for first-party caveats the UTF-8 `condition=value` predicate. */
  identifier: Uint8Array;
  /** Third-party caveats only: the encrypted verification key id. */
  verificationId?: Uint8Array;
  /** Third-party caveats only: where the discharge comes from. */
  location?: string;
}

/** A decoded macaroon (libmacaroons V2 binary format). Immutable by convention. */
export interface Macaroon {
  location: string;
  identifier: Uint8Array;
  caveats: readonly Caveat[];
  /** 32-byte HMAC-SHA256 chain signature. */
  signature: Uint8Array;
}

/** The fields of an L402 identifier (Aperture layout, version 0). */
export interface TokenIdentifier {
  version: number;
  /** 32 bytes. */
  paymentHash: Uint8Array;
  /** 32 bytes. */
  tokenId: Uint8Array;
}

/** The authentication scheme name as written on the wire. */
export type L402Scheme = 'L402' | 'LSAT';

/** A parsed `WWW-Authenticate: L402|LSAT …` challenge. */
export interface L402Challenge {
  scheme: L402Scheme;
  /** The macaroon (from `macaroon=` or `token=`), as base64 text exactly as received. */
  macaroon: string;
  /** The BOLT11 invoice. */
  invoice: string;
  /** `version=` when present (2026 spec form). */
  version?: string;
}

/** A parsed L402 credential (`Authorization: L402 <macaroon>:<preimage>` or a header form). */
export interface L402Credential {
  scheme: L402Scheme;
  /** The macaroon(s) presented; the first one is the token, any others are discharges. */
  macaroons: readonly Macaroon[];
  /** 32 bytes. */
  preimage: Uint8Array;
}
