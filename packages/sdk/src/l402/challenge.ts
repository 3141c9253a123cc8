/**
 * `WWW-Authenticate: L402 …` / `LSAT …` challenges, in every form deployed servers send.
 */
import { isTollwayError, TollwayError } from '../errors.js';
import { base64ToBytes } from '../internal/bytes.js';
import { formatChallenge, parseChallenges } from '../internal/www-authenticate.js';
import { formatMacaroon } from './macaroon.js';
import type { L402Challenge, Macaroon } from './types.js';

/** Parameters of {@link formatL402Challenges}. */
export interface FormatL402ChallengesParams {
  /** The token, minted for the invoice's payment hash. */
  macaroon: Macaroon;
  /** The BOLT11 invoice. */
  invoice: string;
  /**
   * `legacy` (default): `LSAT macaroon="…", invoice="…"` then the same with `L402`, as Aperture
   * sends (old clients read only the first line, looking for `LSAT`). `spec`: the single 2026 form
   * `L402 version="0", token="…", invoice="…"`, which older parsers reject.
   */
  form?: 'legacy' | 'spec';
}

const INVOICE = /^ln[0-9a-z]+$/i;

/**
 * The `WWW-Authenticate` values to send for one L402 offer (append each as its own header line),
 * the macaroon as standard padded base64.
 *
 * @example
 * ```ts
 * for (const value of formatL402Challenges({ macaroon, invoice })) {
 *   headers.append('WWW-Authenticate', value);
 * }
 * ```
 */
export function formatL402Challenges(params: FormatL402ChallengesParams): string[] {
  const token = formatMacaroon(params.macaroon);
  if (params.form === 'spec') {
    return [formatChallenge('L402', { version: '0', token, invoice: params.invoice })];
  }
  return ['LSAT', 'L402'].map((scheme) =>
    formatChallenge(scheme, { macaroon: token, invoice: params.invoice }),
  );
}

function isBase64(text: string): boolean {
  try {
    base64ToBytes(text);
    return true;
  } catch (error) {
    if (isTollwayError(error)) return false;
    throw error;
  }
}

/**
 * Reads every usable L402 challenge from `WWW-Authenticate` values (one string, or several lines),
 * in order. Accepted: scheme `L402` or `LSAT` in any case; the token in `token=` (2026 spec,
 * preferred when both are present) or `macaroon=`; quoted or bare values; `version=` (returned
 * as-is); challenges of other schemes (Basic, Bearer, Payment, …) in the same comma-joined value;
 * a missing comma between parameters; unknown parameters (ignored). The macaroon is only checked
 * to be base64 (standard or URL-safe, padded or not) and returned exactly as received: clients
 * treat it as opaque, since some servers put non-Aperture tokens in it.
 *
 * A challenge without a macaroon or an invoice, or with a macaroon that is not base64, is skipped.
 * Throws `invalid_challenge` when no usable L402 challenge is left; its `details.skipped` and its
 * message say why each candidate was skipped.
 *
 * @example
 * ```ts
 * const [offer] = parseL402Challenges(response.headers.get('www-authenticate') ?? '');
 * await wallet.pay(offer.invoice);
 * ```
 */
export function parseL402Challenges(value: string | readonly string[]): L402Challenge[] {
  const found: L402Challenge[] = [];
  const skipped: string[] = [];
  for (const { schemeLower, params } of parseChallenges(value)) {
    if (schemeLower !== 'l402' && schemeLower !== 'lsat') continue;
    const name = schemeLower === 'l402' ? 'L402' : 'LSAT';
    const macaroon = params.token || params.macaroon;
    const { invoice, version } = params;
    if (!macaroon) {
      skipped.push(`${name}: missing macaroon (or token)`);
    } else if (!invoice) {
      skipped.push(`${name}: missing invoice`);
    } else if (!INVOICE.test(invoice)) {
      skipped.push(`${name}: invoice is not BOLT11 text`);
    } else if (!isBase64(macaroon)) {
      skipped.push(`${name}: macaroon is not base64`);
    } else {
      const challenge: L402Challenge = { scheme: name, macaroon, invoice };
      if (version !== undefined) challenge.version = version;
      found.push(challenge);
    }
  }
  if (found.length === 0) {
    const why =
      skipped.length === 0
        ? 'no L402 challenge'
        : `no usable L402 challenge (${skipped.join('; ')})`;
    throw new TollwayError('invalid_challenge', why, { details: { skipped } });
  }
  return found;
}
