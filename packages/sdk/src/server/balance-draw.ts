/**
 * Further draws on a prepaid balance, for a paid connection that lives on after its request was
 * answered (a WebSocket priced per minute or per message). Each draw is a hold on the
 * credential's account in the store, like a request's reservation: atomic across instances,
 * renewed while it lives, settled at what was used (the rest goes back) or released.
 */
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes } from '../internal/crypto.js';
import type { PaywallContext } from './context.js';
import type { InflightRef } from './inflight.js';
import type { PaymentProof } from './offers.js';
import { retryCharge } from './retry-charge.js';
import type { BalanceDraw, BalanceHold } from './types.js';

/**
 * The draws of a balance credential; see the module comment.
 *
 * @example
 * ```ts
 * const draw = createBalanceDraw(context, proof, balanceMsat);
 * const held = await draw.hold(60_000n);
 * held?.settle(1_000n);
 * ```
 */
export function createBalanceDraw(
  context: PaywallContext,
  proof: PaymentProof,
  initialMsat: bigint,
): BalanceDraw {
  const { store, inflight, now } = context;
  const account = proof.account ?? proof.tokenId;
  return {
    initialMsat,
    async hold(amountMsat) {
      await context.leases?.giveBack(account);
      const id = bytesToHex(randomBytes(16));
      const at = now();
      const held = await store.hold(
        {
          id,
          tokenId: account,
          balance: { amountMsat, initialMsat },
          expiresAt: at + inflight.ttlMs,
        },
        at,
      );
      if (!held.ok) return undefined;
      const ref: InflightRef = { kind: 'hold', id };
      inflight.track(ref);
      return createBalanceHold(context, ref, amountMsat, initialMsat - held.spentMsat);
    },
  };
}

function createBalanceHold(
  context: PaywallContext,
  ref: Extract<InflightRef, { kind: 'hold' }>,
  amountMsat: bigint,
  remainingMsat: bigint,
): BalanceHold {
  const { store, inflight, recorder } = context;
  let done = false;
  const finish = (task: () => Promise<unknown>, what: string): Promise<void> => {
    done = true;
    return new Promise((resolve) => {
      recorder.run(async () => {
        try {
          await task();
        } finally {
          inflight.untrack(ref);
          resolve();
        }
      }, what);
    });
  };
  return {
    amountMsat,
    remainingMsat,
    settle(chargedMsat = amountMsat) {
      if (done) return Promise.resolve();
      const charged = chargedMsat < amountMsat ? chargedMsat : amountMsat;
      return finish(async () => {
        const charge = { uses: 0, amountMsat: charged };
        if (!(await retryCharge(() => store.settleHold(ref.id, charge), inflight.ttlMs))) {
          context.logger.warn({ hold: ref.id }, 'a draw expired before it was charged');
        }
      }, 'charging a draw');
    },
    release() {
      if (done) return Promise.resolve();
      return finish(() => store.releaseHold(ref.id), 'releasing a draw');
    },
  };
}
