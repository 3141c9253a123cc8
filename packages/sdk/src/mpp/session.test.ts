import { describe, expect, it } from 'vitest';
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes, sha256 } from '../internal/crypto.js';
import { formatPaymentChallenge, parsePaymentChallenges } from './challenge.js';
import {
  formatPaymentCredential,
  type PaymentPayload,
  parsePaymentCredential,
} from './credential.js';
import { createSessionChallenge, verifySessionCredential } from './session.js';
import { decodeSessionRequest, encodeSessionRequest } from './session-request.js';

const secret = randomBytes(32);
const now = new Date('2026-12-06T12:00:00Z');

function paid() {
  const preimage = randomBytes(32);
  return { preimage: bytesToHex(preimage), hash: bytesToHex(sha256(preimage)) };
}

function challengeFor(hash: string, expires = new Date(now.getTime() + 900_000)) {
  return createSessionChallenge({
    secret,
    realm: 'api.example.com',
    amountSat: 3n,
    paymentHash: hash,
    depositInvoice: 'lnbcrt50u1pexample',
    depositAmountSat: 5000n,
    idleTimeoutSeconds: 300,
    unitType: 'request',
    expires,
  });
}

/** The credential as a server reads it off the wire. */
function wire(challenge: ReturnType<typeof challengeFor>, payload: PaymentPayload) {
  const [parsed] = parsePaymentChallenges(formatPaymentChallenge(challenge));
  if (parsed === undefined) throw new Error('no challenge');
  const credential = parsePaymentCredential(
    formatPaymentCredential({ challenge: parsed, payload }),
  );
  if (credential === undefined) throw new Error('no credential');
  return credential;
}

describe('lightning session credentials', () => {
  it('round-trips the request with its amounts', () => {
    const { hash } = paid();
    const request = {
      amountSat: 3n,
      paymentHash: hash,
      depositInvoice: 'lnbc',
      depositAmountSat: 5000n,
      idleTimeoutSeconds: 300,
    };
    expect(decodeSessionRequest(encodeSessionRequest(request))).toEqual(request);
  });

  it('opens with the deposit preimage and a return invoice; the session id is the deposit hash', () => {
    const deposit = paid();
    const verified = verifySessionCredential(
      wire(challengeFor(deposit.hash), {
        action: 'open',
        preimage: deposit.preimage,
        returnInvoice: 'lnbcrt1pret',
      }),
      { secret, now },
    );
    expect(verified).toMatchObject({
      ok: true,
      value: {
        action: 'open',
        sessionId: deposit.hash,
        depositSat: 5000n,
        returnInvoice: 'lnbcrt1pret',
      },
    });
  });

  it('refuses an open that did not pay, has no return invoice, or answers an expired challenge', () => {
    const deposit = paid();
    const other = paid();
    const check = (payload: PaymentPayload, challenge = challengeFor(deposit.hash)) =>
      verifySessionCredential(wire(challenge, payload), { secret, now });
    expect(check({ action: 'open', preimage: other.preimage, returnInvoice: 'x' })).toMatchObject({
      code: 'preimage_mismatch',
    });
    expect(check({ action: 'open', preimage: deposit.preimage })).toMatchObject({
      code: 'invalid_credential',
    });
    expect(
      check(
        { action: 'open', preimage: deposit.preimage, returnInvoice: 'x' },
        challengeFor(deposit.hash, new Date(now.getTime() - 1)),
      ),
    ).toMatchObject({ code: 'challenge_expired' });
  });

  it('takes bearer and close on any challenge of ours, expired or not, with the deposit preimage', () => {
    const deposit = paid();
    const old = challengeFor(paid().hash, new Date(now.getTime() - 3_600_000));
    for (const action of ['bearer', 'close'] as const) {
      expect(
        verifySessionCredential(
          wire(old, { action, sessionId: deposit.hash, preimage: deposit.preimage }),
          { secret, now },
        ),
      ).toMatchObject({ ok: true, value: { action, sessionId: deposit.hash } });
      expect(
        verifySessionCredential(
          wire(old, { action, sessionId: deposit.hash, preimage: paid().preimage }),
          { secret, now },
        ),
      ).toMatchObject({ code: 'preimage_mismatch' });
    }
  });

  it('tops up with the preimage of the fresh challenge’s invoice', () => {
    const deposit = paid();
    const topUp = paid();
    const verified = verifySessionCredential(
      wire(challengeFor(topUp.hash), {
        action: 'topUp',
        sessionId: deposit.hash,
        topUpPreimage: topUp.preimage,
      }),
      { secret, now },
    );
    expect(verified).toMatchObject({
      ok: true,
      value: { action: 'topUp', sessionId: deposit.hash, paymentHash: topUp.hash },
    });
  });

  it('refuses a challenge someone else minted or edited (the id binds every parameter)', () => {
    const deposit = paid();
    const forged = { ...challengeFor(deposit.hash), realm: 'evil.example' };
    expect(
      verifySessionCredential(
        wire(forged, { action: 'open', preimage: deposit.preimage, returnInvoice: 'x' }),
        { secret, now },
      ),
    ).toMatchObject({ code: 'challenge_id_mismatch' });
    // An unknown action does not even parse.
    expect(() => wire(challengeFor(deposit.hash), { action: 'bogus' as 'open' })).toThrowError(
      expect.objectContaining({ code: 'invalid_credential' }),
    );
  });
});
