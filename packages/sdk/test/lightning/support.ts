/**
 * Helpers the Lightning backend tests share: reading an outcome as an error code, the slow payment
 * every backend must time out on without paying twice, and a wallet's own fee limit.
 */
import { expect, vi } from 'vitest';
import { isTollwayError, type TollwayErrorCode } from '../../src/errors.js';
import { wrapBackend } from '../../src/lightning/safe-backend.js';
import type { LightningBackend, PaymentResult, PaymentStatus } from '../../src/lightning/types.js';
import { type FakeNode, fakeFee } from '../doubles/fake-node.js';
import type { BackendHarness } from './backend-suite.js';

/**
 * The code of the `TollwayError` a promise rejects with, `resolved` when it does not reject, or
 * `not_tollway` for any other error.
 *
 * @example
 * ```ts
 * expect(await codeOf(ln.lookupInvoice(hash))).toBe('invoice_not_found');
 * ```
 */
export async function codeOf(
  promise: Promise<unknown>,
): Promise<TollwayErrorCode | 'resolved' | 'not_tollway'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isTollwayError(error) ? error.code : 'not_tollway';
  }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * For a raw backend on a fake node (LND, Core Lightning): a payment that takes 2 s fails with
 * `payment_timeout` at its 300 ms deadline while the node carries on, and `lookupPayment` finds it
 * pending, then succeeded, paid once.
 *
 * @example
 * ```ts
 * it('times out…', () => expectTimeoutThenLateSuccess(lnd, double.node));
 * ```
 */
export async function expectTimeoutThenLateSuccess(
  backend: LightningBackend,
  node: FakeNode,
): Promise<void> {
  node.balanceMsat = 10_000_000n;
  node.settleDelayMs = 2_000;
  try {
    const ext = node.createExternalInvoice({ amountMsat: 9_000n });
    expect(
      await codeOf(backend.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 300 })),
    ).toBe('payment_timeout');
    // Still in flight: payInvoice gave up at its deadline instead of waiting for the outcome.
    expect((await backend.lookupPayment(ext.paymentHash)).state).toBe('pending');
    await sleep(2_000);
    expect(await backend.lookupPayment(ext.paymentHash)).toEqual({
      paymentHash: ext.paymentHash,
      state: 'succeeded',
      preimage: ext.preimage,
      amountMsat: 9_000n,
      feeMsat: fakeFee(9_000n),
    });
    expect(node.timesPaid(ext.paymentHash)).toBe(1);
  } finally {
    node.settleDelayMs = 60;
  }
}

/**
 * For a wallet double (LNbits, phoenixd) and its raw backend, wrapped: a payment that takes 3 s
 * fails with `payment_timeout` at its 300 ms deadline, is pending, then succeeded (matching `late`
 * too), and paying again returns it without paying twice. Closes the backend. The payment takes
 * ten times the deadline so that a loaded machine (a CI run stalled this for 1.7 s) still sees
 * the deadline first.
 *
 * @example
 * ```ts
 * it('times out…', () => expectSlowPaymentPaidOnce(backendFor(double), double));
 * ```
 */
export async function expectSlowPaymentPaidOnce(
  raw: LightningBackend,
  double: Pick<BackendHarness, 'createExternalInvoice' | 'timesPaid'> & {
    setPaymentDelay(ms: number): void;
  },
  late: Partial<PaymentStatus> = {},
): Promise<void> {
  const ln = wrapBackend(raw, { pollIntervalMs: 50 });
  double.setPaymentDelay(3_000);
  try {
    const ext = await double.createExternalInvoice({ amountMsat: 30_000n });
    expect(
      await codeOf(ln.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 300 })),
    ).toBe('payment_timeout');
    // Answered at the deadline, before the payment completed: it is still pending.
    expect((await ln.lookupPayment(ext.paymentHash)).state).toBe('pending');
    await vi.waitFor(
      async () =>
        expect(await ln.lookupPayment(ext.paymentHash)).toMatchObject({
          state: 'succeeded',
          preimage: ext.preimage,
          ...late,
        }),
      { timeout: 15_000, interval: 100 },
    );
    const again = await ln.payInvoice({ paymentRequest: ext.paymentRequest });
    expect(again.preimage).toBe(ext.preimage);
    expect(await double.timesPaid(ext.paymentHash)).toBe(1);
  } finally {
    double.setPaymentDelay(0);
    await ln.close();
  }
}

/**
 * For a wallet double (LNbits, phoenixd) and its raw backend: paying an invoice for `amountMsat`
 * with a fee limit 1 msat below `feeMsat`, what the wallet may charge, fails with `no_route` before
 * anything is paid; with `feeMsat` it pays. Returns the payment; closes the backend.
 *
 * @example
 * ```ts
 * expect((await expectFeeLimit(backendFor(double), double, 100_000n, 4_400n)).feeMsat).toBe(4_400n);
 * ```
 */
export async function expectFeeLimit(
  raw: LightningBackend,
  double: Pick<BackendHarness, 'createExternalInvoice' | 'timesPaid'>,
  amountMsat: bigint,
  feeMsat: bigint,
): Promise<PaymentResult> {
  try {
    const ext = await double.createExternalInvoice({ amountMsat });
    const pay = (maxFeeMsat: bigint) =>
      raw.payInvoice({ paymentRequest: ext.paymentRequest, maxFeeMsat });
    expect(await codeOf(pay(feeMsat - 1n))).toBe('no_route');
    expect(await double.timesPaid(ext.paymentHash)).toBe(0);
    const paid = await pay(feeMsat);
    expect(paid.preimage).toBe(ext.preimage);
    return paid;
  } finally {
    await raw.close();
  }
}
