/**
 * The engine's background records: challenges issued (batched), and the settlement and token the
 * first time this instance sees a token paid. The paid path never waits on them; failures are
 * logged (a token's records are tried again on its next request), and `drain` waits for what is
 * under way.
 */
import { isTollwayError } from '../errors.js';
import type { InvoiceBook } from './invoices.js';
import { createLru } from './lru.js';
import type { PaymentProof } from './offers.js';
import type { Route } from './route.js';
import type { IssuedChallenge, Settlement, Store } from './store.js';

/** Where the engine reports what it cannot answer with (store and backend failures). pino fits. */
export interface PaywallLogger {
  warn(context: Record<string, unknown>, message: string): void;
  error(context: Record<string, unknown>, message: string): void;
}

/** See {@link createRecorder}. */
export interface Recorder {
  /** Runs `task` in the background, logging its failure as `what failed`. */
  run(task: () => Promise<void>, what: string): void;
  /** Queues a challenge record; queued records are written within a second. */
  challenge(challenge: IssuedChallenge): void;
  /** Records a settlement in the background. */
  settlement(settlement: Settlement): void;
  /** Records the settlement and the token the first time this instance sees a token. */
  firstSight(proof: PaymentProof, route: Route): void;
  /** Writes the queued challenges and waits for every background task. */
  drain(): Promise<void>;
}

/** What the recorder works with. */
export interface RecorderParts {
  store: Store;
  invoices: InvoiceBook;
  logger: PaywallLogger;
  now: () => number;
}

const MAX_REMEMBERED = 100_000;
const MAX_PENDING_CHALLENGES = 10_000;
const CHALLENGE_FLUSH_MS = 1000;

function errorCode(error: unknown): string | undefined {
  return isTollwayError(error) ? error.code : undefined;
}

/**
 * Creates a recorder.
 *
 * @example
 * ```ts
 * const recorder = createRecorder({ store, invoices, logger, now: Date.now });
 * recorder.firstSight(proof, route);
 * await recorder.drain();
 * ```
 */
export function createRecorder(parts: RecorderParts): Recorder {
  const { store, invoices, logger, now } = parts;
  const background = new Set<Promise<void>>();
  const seenTokens = createLru<string, true>(MAX_REMEMBERED);
  let issued: IssuedChallenge[] = [];
  let dropped = 0;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;

  function run(task: () => Promise<void>, what: string): void {
    const promise = task().catch((error: unknown) => {
      logger.warn({ err: error, code: errorCode(error) }, `${what} failed`);
    });
    background.add(promise);
    void promise.finally(() => background.delete(promise));
  }

  function flush(): void {
    if (flushTimer !== undefined) clearTimeout(flushTimer);
    flushTimer = undefined;
    const batch = issued;
    issued = [];
    if (dropped > 0) {
      logger.warn({ dropped }, 'challenge records dropped: the store is behind');
      dropped = 0;
    }
    if (batch.length > 0) {
      run(async () => {
        await store.recordChallenges(batch);
        // Records of invoices that can no longer be paid go as new ones come: the table holds
        // at most what the challenge limits let through in one `challengeExpiry`.
        await store.pruneExpired(now());
      }, 'recording challenges');
    }
  }

  /** The amount a proof paid, msat: as it says, as this instance knows, or as the backend says. */
  async function amountPaid(proof: PaymentProof): Promise<bigint | undefined> {
    const known = proof.amountMsat ?? invoices.amountOf(proof.paymentHash);
    if (known !== undefined) return known;
    try {
      const status = await invoices.lookup(proof.paymentHash);
      if (status.state === 'settled') invoices.noteSettled(status);
    } catch (error) {
      logger.warn({ err: error, code: errorCode(error) }, 'no amount for a settlement');
    }
    return invoices.amountOf(proof.paymentHash);
  }

  async function recordFirstSight(proof: PaymentProof, route: Route, seenAt: number) {
    // A token another protocol bought had its settlement recorded when it was bought.
    const amount = proof.boughtWith === undefined ? await amountPaid(proof) : undefined;
    if (amount !== undefined) {
      await store.recordSettlement({
        reference: proof.paymentHash,
        tokenId: proof.tokenId,
        service: route.service,
        protocol: proof.protocol,
        amount,
        unit: 'msat',
        settledAt: seenAt,
      });
    }
    if (proof.protocol !== 'l402') return;
    await store.saveToken({
      tokenId: proof.tokenId,
      paymentHash: proof.paymentHash,
      service: route.service,
      tier: proof.tier ?? route.tier,
      createdAt: seenAt,
      ...(proof.expiresAt === undefined ? {} : { expiresAt: proof.expiresAt }),
      ...(proof.maxUses === undefined ? {} : { maxUses: proof.maxUses }),
      ...(proof.balanceMsat === undefined ? {} : { initialBalanceMsat: proof.balanceMsat }),
    });
  }

  return {
    run,
    challenge(challenge) {
      if (issued.length >= MAX_PENDING_CHALLENGES) {
        dropped += 1;
        return;
      }
      issued.push(challenge);
      flushTimer ??= setTimeout(flush, CHALLENGE_FLUSH_MS);
    },
    settlement(settlement) {
      run(async () => {
        await store.recordSettlement(settlement);
      }, 'recording a settlement');
    },
    firstSight(proof, route) {
      if (seenTokens.get(proof.tokenId) !== undefined) return;
      seenTokens.set(proof.tokenId, true);
      const seenAt = now();
      run(async () => {
        try {
          await recordFirstSight(proof, route, seenAt);
        } catch (error) {
          // Not recorded (the store is down): the token's next request tries again.
          seenTokens.delete(proof.tokenId);
          throw error;
        }
      }, 'recording a settlement');
    },
    async drain() {
      flush();
      while (background.size > 0) await Promise.allSettled([...background]);
    },
  };
}
