/**
 * What NIP-47 replies mean in Tollway's terms: the reply envelope, the result of each method, the
 * transaction object, and the wallet's error codes. Every reading validates the shape first, so a
 * wallet's garbage becomes `backend_error`, never a TypeError. Internal: not exported from the package.
 */
import { z } from 'zod';
import { TollwayError, type TollwayErrorCode } from '../errors.js';
import { decodeInvoice } from './bolt11.js';
import type { InvoiceStatus, LightningNetwork, NodeInfo, PaymentStatus } from './types.js';

/** Event kinds of NIP-47. */
export const NWC_KINDS = {
  info: 13194,
  request: 23194,
  response: 23195,
  notificationNip04: 23196,
  notification: 23197,
} as const;

/** A wallet's error code → ours. Unknown codes are `backend_error`. */
const WALLET_ERRORS: Record<string, TollwayErrorCode> = {
  RATE_LIMITED: 'backend_unavailable',
  NOT_IMPLEMENTED: 'capability_unsupported',
  INSUFFICIENT_BALANCE: 'insufficient_balance',
  QUOTA_EXCEEDED: 'quota_exceeded',
  RESTRICTED: 'unauthorized',
  UNAUTHORIZED: 'unauthorized',
  INTERNAL: 'backend_unavailable',
  OTHER: 'backend_error',
  PAYMENT_FAILED: 'payment_failed',
  NOT_FOUND: 'invoice_not_found',
  UNSUPPORTED_ENCRYPTION: 'capability_unsupported',
};

/** Turns a NIP-47 error `{code, message}` into a `TollwayError`; the wallet's code is in `details`. */
function walletError(method: string, code: string, message: string): TollwayError {
  const ours = Object.hasOwn(WALLET_ERRORS, code) ? WALLET_ERRORS[code] : undefined;
  return new TollwayError(ours ?? 'backend_error', `NWC ${method}: ${code}: ${message}`, {
    details: { method, walletCode: code },
  });
}

/** A wallet reply that does not have the documented shape. */
export function malformed(method: string, problem: string, cause?: unknown): TollwayError {
  return new TollwayError('backend_error', `NWC ${method}: ${problem}`, {
    details: { method },
    ...(cause === undefined ? {} : { cause }),
  });
}

const replySchema = z.object({
  result_type: z.string(),
  error: z.object({ code: z.string(), message: z.string().optional() }).nullish(),
  result: z.unknown().optional(),
});

/** Unwraps a decrypted reply to `method`: its `result`, or the wallet's error thrown as ours. */
export function readReply(method: string, plaintext: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(plaintext);
  } catch (error) {
    throw malformed(method, 'reply is not JSON', error);
  }
  const reply = replySchema.safeParse(json);
  if (!reply.success) throw malformed(method, 'reply has the wrong shape', reply.error);
  const { error, result, result_type } = reply.data;
  if (error) throw walletError(method, error.code, error.message ?? '');
  if (result_type !== method) throw malformed(method, `reply is for ${result_type}`);
  if (result === null || result === undefined) throw malformed(method, 'reply has no result');
  return result;
}

function parse<T>(schema: z.ZodType<T>, method: string, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw malformed(method, 'result has the wrong shape', parsed.error);
  return parsed.data;
}

const msat = z.number().int().nonnegative();
const hex32 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/)
  .transform((hex) => hex.toLowerCase());
/** Wallets send `""` or `null` for "no preimage". */
const optionalPreimage = z
  .union([z.literal(''), hex32])
  .nullish()
  .transform((hex) => (hex ? hex : undefined));
const seconds = z.number().int().nonnegative().nullish();

const transactionSchema = z.object({
  type: z.enum(['incoming', 'outgoing']),
  state: z.enum(['pending', 'settled', 'accepted', 'expired', 'failed']).optional(),
  invoice: z.string().nullish(),
  preimage: optionalPreimage,
  payment_hash: hex32,
  amount: msat,
  fees_paid: msat.nullish(),
  expires_at: seconds,
  settled_at: seconds,
});

/** A NIP-47 transaction object, validated. */
export type NwcTransaction = z.infer<typeof transactionSchema>;

/** Reads the transaction of a `make_invoice` or `lookup_invoice` result. */
export function readTransaction(method: string, result: unknown): NwcTransaction {
  return parse(transactionSchema, method, result);
}

/** The invoice amount of an incoming transaction: from its BOLT11 when readable, else `amount`. */
function invoiceAmount(tx: NwcTransaction): bigint | undefined {
  if (tx.invoice) {
    try {
      return decodeInvoice(tx.invoice).amountMsat;
    } catch {
      // Fall back to the wallet's own figure below.
    }
  }
  return tx.amount > 0 ? BigInt(tx.amount) : undefined;
}

/** An incoming transaction as an {@link InvoiceStatus}. Pending past its expiry reads as expired. */
export function toInvoiceStatus(tx: NwcTransaction, nowMs: number): InvoiceStatus {
  const settled = tx.state === 'settled' || (tx.state === undefined && tx.settled_at != null);
  let state: InvoiceStatus['state'] = 'open';
  if (settled) state = 'settled';
  else if (tx.state === 'failed') state = 'canceled';
  else if (tx.state === 'expired' || (tx.expires_at != null && tx.expires_at * 1000 <= nowMs)) {
    state = 'expired';
  }
  const status: InvoiceStatus = { paymentHash: tx.payment_hash, state };
  const amountMsat = invoiceAmount(tx);
  if (amountMsat !== undefined) status.amountMsat = amountMsat;
  if (tx.preimage !== undefined) status.preimage = tx.preimage;
  if (settled) {
    status.amountPaidMsat = BigInt(tx.amount);
    if (tx.settled_at != null) status.settledAt = tx.settled_at * 1000;
  }
  return status;
}

/** An outgoing transaction as a {@link PaymentStatus}. */
export function toPaymentStatus(tx: NwcTransaction): PaymentStatus {
  const succeeded =
    tx.state === 'settled' ||
    (tx.state === undefined && (tx.settled_at != null || tx.preimage !== undefined));
  const failed = tx.state === 'failed' || tx.state === 'expired';
  const status: PaymentStatus = {
    paymentHash: tx.payment_hash,
    state: succeeded ? 'succeeded' : failed ? 'failed' : 'pending',
    amountMsat: BigInt(tx.amount),
  };
  if (tx.preimage !== undefined) status.preimage = tx.preimage;
  if (tx.fees_paid != null) status.feeMsat = BigInt(tx.fees_paid);
  if (failed) status.failureReason = `wallet reports the payment ${tx.state}`;
  return status;
}

const payResultSchema = z.object({ preimage: optionalPreimage, fees_paid: msat.nullish() });

/** Reads a `pay_invoice` result: the preimage (absent if the wallet left it out) and the fee. */
export function readPayResult(result: unknown): { preimage?: string; feeMsat: bigint } {
  const { preimage, fees_paid } = parse(payResultSchema, 'pay_invoice', result);
  const feeMsat = BigInt(fees_paid ?? 0);
  return preimage === undefined ? { feeMsat } : { preimage, feeMsat };
}

const NETWORKS: Record<string, LightningNetwork> = {
  mainnet: 'mainnet',
  bitcoin: 'mainnet',
  testnet: 'testnet',
  testnet4: 'testnet',
  signet: 'signet',
  regtest: 'regtest',
};

const infoSchema = z.object({
  alias: z.string().nullish(),
  pubkey: z.string().nullish(),
  network: z.string().nullish(),
  methods: z.array(z.string()).nullish(),
});

/**
 * Reads a `get_info` result. A wallet that does not name its network is taken to be on mainnet
 * (the only network most NWC wallets serve); one that names an unknown network is refused.
 */
export function readInfo(result: unknown): { info: NodeInfo; methods?: string[] } {
  const raw = parse(infoSchema, 'get_info', result);
  const networkName = raw.network ?? 'mainnet';
  const network = Object.hasOwn(NETWORKS, networkName) ? NETWORKS[networkName] : undefined;
  if (network === undefined) {
    throw new TollwayError('unsupported_network', `NWC wallet is on network ${networkName}`, {
      details: { network: networkName },
    });
  }
  const info: NodeInfo = { network };
  const pubkey = raw.pubkey?.toLowerCase();
  if (pubkey !== undefined && /^0[23][0-9a-f]{64}$/.test(pubkey)) info.pubkey = pubkey;
  if (raw.alias) info.alias = raw.alias;
  return raw.methods ? { info, methods: raw.methods } : { info };
}

/** Reads a `get_balance` result. */
export function readBalance(result: unknown): { msat: bigint } {
  return { msat: BigInt(parse(z.object({ balance: msat }), 'get_balance', result).balance) };
}

/** A wallet connection's spending budget (`get_budget`), amounts in msat. */
export interface NwcBudget {
  usedMsat: bigint;
  totalMsat: bigint;
  /** Unix ms of the next reset, when the budget renews. */
  renewsAt?: number;
  /** `daily`, `weekly`, `monthly`, `yearly` or `never`. */
  renewalPeriod: string;
}

const budgetSchema = z.object({
  used_budget: msat.optional(),
  total_budget: msat.optional(),
  renews_at: seconds,
  renewal_period: z.string().optional(),
});

/** Reads a `get_budget` result; `null` when the connection has no budget (`{}`). */
export function readBudget(result: unknown): NwcBudget | null {
  const raw = parse(budgetSchema, 'get_budget', result);
  if (raw.total_budget === undefined) return null;
  const budget: NwcBudget = {
    usedMsat: BigInt(raw.used_budget ?? 0),
    totalMsat: BigInt(raw.total_budget),
    renewalPeriod: raw.renewal_period ?? 'never',
  };
  if (raw.renews_at != null) budget.renewsAt = raw.renews_at * 1000;
  return budget;
}

const notificationSchema = z.object({
  notification_type: z.string(),
  notification: z.unknown(),
});

/** Reads a decrypted notification; `undefined` for anything that is not one. */
export function readNotification(
  plaintext: string,
): { type: string; payload: unknown } | undefined {
  try {
    const parsed = notificationSchema.safeParse(JSON.parse(plaintext));
    return parsed.success
      ? { type: parsed.data.notification_type, payload: parsed.data.notification }
      : undefined;
  } catch {
    return undefined;
  }
}
