/**
 * `Authorization: Payment <base64url JSON>` credentials (draft-httpauth-payment): the client echoes
 * the challenge it answers and adds a method-specific payload.
 */
import { TollwayError } from '../errors.js';
import { parseCredentials } from '../internal/www-authenticate.js';

import type { PaymentChallenge } from './challenge.js';
import {
  decodeJsonBase64Url,
  encodeJsonBase64Url,
  isJsonObject,
  type JsonObject,
  type JsonValue,
} from './json.js';

/** The session actions of draft-lightning-session. */
export type PaymentSessionAction = 'open' | 'bearer' | 'topUp' | 'close';

/**
 * The proof of payment. A lightning `charge` carries `{preimage}`; a `session` carries an `action`
 * and the members that action needs. Hex values are kept as sent; `verifyPaymentCredential` checks
 * them.
 */
export interface PaymentPayload {
  /** Hex preimage of the invoice that was paid. */
  preimage?: string;
  /** Session intent only. */
  action?: PaymentSessionAction;
  /** Session intent: the payment hash of the deposit invoice. */
  sessionId?: string;
  /** Session intent, `open`: an amountless invoice for the refund. */
  returnInvoice?: string;
  /** Session intent, `topUp`: the preimage of the top-up invoice. */
  topUpPreimage?: string;
}

/** A decoded `Payment` credential. */
export interface PaymentCredential {
  /** The challenge being answered, echoed unchanged. */
  challenge: PaymentChallenge;
  /** Optional payer identifier (a DID). */
  source?: string;
  payload: PaymentPayload;
}

const ECHO_REQUIRED = ['id', 'realm', 'method', 'intent', 'request'] as const;
/** Optional echoed parameters, in the order Aperture writes them. */
const ECHO_OPTIONAL = ['expires', 'description', 'opaque', 'digest'] as const;
const PAYLOAD_MEMBERS = new Set([
  'preimage',
  'action',
  'sessionId',
  'returnInvoice',
  'topUpPreimage',
]);
const TOKEN = /^[A-Za-z0-9_-]+={0,2}$/;

function invalid(message: string, cause?: unknown): TollwayError {
  return new TollwayError('invalid_credential', message, cause === undefined ? {} : { cause });
}

function stringMember(object: JsonObject, name: string, path: string): string | undefined {
  const member = object[name];
  if (member === undefined) return undefined;
  if (typeof member !== 'string') throw invalid(`${path}${name} is not a string`);
  return member;
}

function isSessionAction(text: string): text is PaymentSessionAction {
  return text === 'open' || text === 'bearer' || text === 'topUp' || text === 'close';
}

function readChallenge(value: JsonValue | undefined): PaymentChallenge {
  if (!isJsonObject(value)) throw invalid('challenge is missing or not an object');
  const id = stringMember(value, 'id', 'challenge.');
  const realm = stringMember(value, 'realm', 'challenge.');
  const method = stringMember(value, 'method', 'challenge.');
  const intent = stringMember(value, 'intent', 'challenge.');
  const request = stringMember(value, 'request', 'challenge.');
  if (!id || !realm || !method || !intent || !request) {
    throw invalid('the challenge needs a non-empty id, realm, method, intent and request');
  }
  const challenge: PaymentChallenge = { id, realm, method, intent, request };
  for (const name of ECHO_OPTIONAL) {
    const member = stringMember(value, name, 'challenge.');
    if (member) challenge[name] = member;
  }
  return challenge;
}

function readPayload(value: JsonValue | undefined): PaymentPayload {
  if (!isJsonObject(value)) throw invalid('payload is missing or not an object');
  const payload: PaymentPayload = {};
  // Wire order is kept, so that formatting a parsed credential gives back the same bytes.
  for (const name of Object.keys(value)) {
    const member = PAYLOAD_MEMBERS.has(name) ? stringMember(value, name, 'payload.') : undefined;
    if (member === undefined) continue;
    if (name === 'action') {
      if (!isSessionAction(member))
        throw invalid(`unknown session action ${JSON.stringify(member)}`);
      payload.action = member;
    } else if (name === 'preimage') {
      payload.preimage = member;
    } else if (name === 'sessionId') {
      payload.sessionId = member;
    } else if (name === 'returnInvoice') {
      payload.returnInvoice = member;
    } else {
      payload.topUpPreimage = member;
    }
  }
  return payload;
}

/**
 * Formats a credential as an `Authorization` value: `Payment ` and base64url (no padding) of the
 * JSON `{challenge: {id, realm, method, intent, request, expires?, description?, opaque?,
 * digest?}, source?, payload}`; empty optional members are left out, payload members keep their
 * order.
 *
 * @example
 * ```ts
 * headers.set('Authorization', formatPaymentCredential({ challenge, payload: { preimage } }));
 * ```
 */
export function formatPaymentCredential(credential: PaymentCredential): string {
  const challenge: JsonObject = {};
  for (const name of ECHO_REQUIRED) challenge[name] = credential.challenge[name];
  for (const name of ECHO_OPTIONAL) {
    const value = credential.challenge[name];
    if (value !== undefined && value !== '') challenge[name] = value;
  }
  const payload: JsonObject = {};
  for (const [name, value] of Object.entries(credential.payload)) {
    if (PAYLOAD_MEMBERS.has(name) && typeof value === 'string') payload[name] = value;
  }
  const json: JsonObject = { challenge };
  if (credential.source !== undefined && credential.source !== '') json.source = credential.source;
  json.payload = payload;
  return `Payment ${encodeJsonBase64Url(json)}`;
}

/**
 * Reads the `Payment` credential from `Authorization` values (one string, several lines, or
 * `undefined`). The scheme is case-insensitive; credentials of other schemes are ignored.
 *
 * Returns `undefined` when there is no `Payment` credential at all, so a server can tell "no
 * credential" (answer with a challenge) from "bad credential". Throws:
 * - `invalid_credential` when the token is empty, not strict base64url, not UTF-8 JSON, or lacks
 *   a non-empty string `challenge.id`, `.realm`, `.method`, `.intent`, `.request`, or an object
 *   `payload` (payload members other than those of {@link PaymentPayload} are ignored);
 * - `conflicting_credentials` when several different `Payment` credentials are present (repeats of
 *   the same one are accepted).
 *
 * The payload is not checked here: see `verifyPaymentCredential`.
 *
 * @example
 * ```ts
 * const credential = parsePaymentCredential(request.headers.get('authorization') ?? undefined);
 * if (credential === undefined) return challenge402();
 * ```
 */
export function parsePaymentCredential(
  authorization: string | readonly string[] | undefined,
): PaymentCredential | undefined {
  if (authorization === undefined) return undefined;
  const tokens = new Set<string>();
  for (const { schemeLower, rest } of parseCredentials(authorization)) {
    if (schemeLower !== 'payment') continue;
    if (rest === '') throw invalid('empty Payment credential');
    if (!TOKEN.test(rest)) throw invalid('the Payment credential is not base64url');
    tokens.add(rest.replace(/=+$/, ''));
  }
  const [token, ...others] = tokens;
  if (token === undefined) return undefined;
  if (others.length > 0) {
    throw new TollwayError('conflicting_credentials', 'several different Payment credentials');
  }
  let json: JsonValue;
  try {
    json = decodeJsonBase64Url(token);
  } catch (cause) {
    throw invalid('the Payment credential is not base64url JSON', cause);
  }
  if (!isJsonObject(json)) throw invalid('the Payment credential is not a JSON object');
  const credential: PaymentCredential = {
    challenge: readChallenge(json.challenge),
    payload: readPayload(json.payload),
  };
  const source = stringMember(json, 'source', '');
  if (source) credential.source = source;
  return credential;
}
