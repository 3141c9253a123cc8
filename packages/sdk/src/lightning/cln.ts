/**
 * Core Lightning over its built-in REST plugin, clnrest (v23.08+, default `https://<host>:3010`):
 * every RPC is `POST /v1/<method>` with a JSON object of parameters and the `Rune` header.
 *
 * What the wire looks like, and what bites:
 *
 * - success is HTTP 201; an RPC error is HTTP 500 with the JSON-RPC error `{code, message, data}`
 *   (so a 500 is not necessarily an outage: the code tells), an unknown method is 404 with code
 *   -32601, and a missing or refused rune is 403 or 401;
 * - amounts are integer millisatoshis (`*_msat`), sent here as `"<n>msat"` strings so that no
 *   amount passes through a float; times are unix seconds;
 * - `invoice` needs a unique `label` (generated here) and defaults to a one-week expiry (so an
 *   expiry is always sent);
 * - `xpay` (v24.11+) is preferred; on nodes without it, `pay` is used, which answers an already
 *   paid invoice with the earlier result instead of an error.
 */
import { z } from 'zod';
import { isTollwayError, TollwayError, type TollwayErrorCode } from '../errors.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '../internal/bytes.js';
import { randomBytes, sha256 } from '../internal/crypto.js';
import { decodeInvoice } from './bolt11.js';
import { decodeCreatedInvoice } from './created-invoice.js';
import { paymentTimeout, SOCKET_GRACE_MS, withDeadline } from './deadline.js';
import {
  createBodyParser,
  createNodeRestClient,
  type HttpResponse,
  type NodeRestOptions,
} from './http.js';
import type { InvoiceStatus, LightningBackend, LightningNetwork, PaymentStatus } from './types.js';

/** Options of {@link createClnBackend}: `url` is the clnrest endpoint, `certPem` its certificate. */
export interface ClnOptions extends NodeRestOptions {
  /** A rune allowing the methods used: `getinfo`, `invoice`, `listinvoices`, `waitinvoice` to receive; `xpay` (or `pay`), `listpays`, `listfunds` to pay. */
  rune: string;
}

const DEFAULT_EXPIRY_SECONDS = 3600;
const DEFAULT_WAIT_MS = 60_000;

const msat = z
  .int()
  .nonnegative()
  .transform((n) => BigInt(n));
const hex32 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/)
  .transform((text) => text.toLowerCase());

const invoiceBase = {
  label: z.string(),
  payment_hash: hex32,
  amount_msat: msat.optional(),
  expires_at: z.int(),
};
const invoiceShape = z.discriminatedUnion('status', [
  z.object({
    ...invoiceBase,
    status: z.literal('paid'),
    amount_received_msat: msat,
    paid_at: z.int(),
    payment_preimage: hex32,
  }),
  z.object({ ...invoiceBase, status: z.enum(['unpaid', 'expired']) }),
]);

const createdShape = z.object({ payment_hash: hex32, bolt11: z.string() });
const sentShape = z.object({ payment_preimage: hex32, amount_msat: msat, amount_sent_msat: msat });
const payShape = sentShape.extend({ status: z.enum(['complete', 'pending', 'failed']) });
const paysShape = z.object({
  pays: z.array(
    z.object({
      payment_hash: hex32,
      status: z.enum(['pending', 'failed', 'complete']),
      preimage: hex32.optional(),
      amount_msat: msat.optional(),
      amount_sent_msat: msat.optional(),
    }),
  ),
});
const infoShape = z.object({
  id: z.string().regex(/^0[23][0-9a-f]{64}$/),
  alias: z.string().optional(),
  network: z.string(),
});
const fundsShape = z.object({
  channels: z.array(z.object({ state: z.string(), our_amount_msat: msat })),
});
/** The JSON-RPC error of an error answer; clnrest leaves out the code when lightningd is unreachable. */
const rpcErrorShape = z.object({ code: z.int().nullish(), message: z.string() });

type ClnInvoice = z.output<typeof invoiceShape>;

const parse = createBodyParser('Core Lightning');

const NETWORKS: Record<string, LightningNetwork> = {
  bitcoin: 'mainnet',
  testnet: 'testnet',
  testnet4: 'testnet',
  signet: 'signet',
  regtest: 'regtest',
};

/** Core Lightning's JSON-RPC error codes (common/jsonrpc_errors.h) as Tollway codes. */
const CLN_CODES: Record<number, TollwayErrorCode> = {
  [-32601]: 'capability_unsupported', // unknown command
  200: 'payment_timeout', // PAY_IN_PROGRESS
  201: 'already_paid', // PAY_RHASH_ALREADY_USED
  203: 'payment_failed', // PAY_DESTINATION_PERM_FAIL
  205: 'no_route', // PAY_ROUTE_NOT_FOUND
  206: 'no_route', // PAY_ROUTE_TOO_EXPENSIVE (over maxfee)
  207: 'invoice_expired', // PAY_INVOICE_EXPIRED
  209: 'payment_failed', // PAY_UNSPECIFIED_ERROR
  210: 'payment_failed', // PAY_STOPPED_RETRYING
  219: 'already_paid', // xpay: invoice already paid
  903: 'invoice_expired', // INVOICE_EXPIRED_DURING_WAIT
};

/** A "no route" that really means "our channels cannot carry this much". */
const LOW_BALANCE = /insufficient|not enough|exceeds .*spendable/i;

function errorCode(status: number, code: number | undefined, message: string): TollwayErrorCode {
  // No code: clnrest could not reach lightningd (or a proxy answered).
  if (code === undefined) return status >= 500 ? 'backend_unavailable' : 'backend_error';
  if ((code === 205 || code === 209) && LOW_BALANCE.test(message)) return 'insufficient_balance';
  return CLN_CODES[code] ?? 'backend_error';
}

/** Maps a clnrest error answer: a JSON-RPC error, or a page that is not one (a proxy's). */
function clnError(response: HttpResponse): TollwayError {
  const rpc = rpcErrorShape.safeParse(response.body);
  const code = rpc.success ? (rpc.data.code ?? undefined) : undefined;
  const message = rpc.success ? rpc.data.message : response.text.slice(0, 200);
  return new TollwayError(errorCode(response.status, code, message), `Core Lightning: ${message}`, {
    details: { status: response.status, clnCode: code, message },
  });
}

function isUnknownCommand(error: unknown): boolean {
  return isTollwayError(error, 'capability_unsupported') && error.details?.clnCode === -32601;
}

function invoiceStatus(invoice: ClnInvoice, now: number): InvoiceStatus {
  const status: InvoiceStatus = { paymentHash: invoice.payment_hash, state: 'open' };
  if (invoice.amount_msat !== undefined) status.amountMsat = invoice.amount_msat;
  if (invoice.status === 'paid') {
    status.state = 'settled';
    status.amountPaidMsat = invoice.amount_received_msat;
    status.preimage = invoice.payment_preimage;
    status.settledAt = invoice.paid_at * 1000;
  } else if (invoice.status === 'expired' || now >= invoice.expires_at * 1000) {
    status.state = 'expired';
  }
  return status;
}

/**
 * Creates a raw Core Lightning (clnrest) backend. Wrap it with `wrapBackend` (as `connectLightning`
 * does) before paying: the wrapper adds invoice checks, idempotency and preimage verification.
 *
 * Core Lightning hashes the description it is given, so a `descriptionHash` invoice needs the
 * description itself as `memo` (with `sha256(memo) == descriptionHash`); otherwise it fails with
 * `capability_unsupported`. An amount of 0 creates an amountless invoice.
 *
 * @example
 * ```ts
 * const cln = createClnBackend({ url: 'https://127.0.0.1:3010', rune, certPem });
 * const invoice = await cln.createInvoice({ amountMsat: 21_000n, memo: 'forecast' });
 * ```
 */
export function createClnBackend(options: ClnOptions): LightningBackend {
  const client = createNodeRestClient(options, { Rune: options.rune });
  let hasXpay = true;

  async function rpc(
    method: string,
    params: Record<string, unknown>,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<unknown> {
    // clnrest answers every RPC error with 500: its body, not the status, tells an outage.
    const response = await client.request('POST', `/v1/${method}`, {
      json: params,
      acceptStatuses: [500],
      ...opts,
    });
    if (response.status >= 300) throw clnError(response);
    return response.body;
  }

  async function findInvoice(paymentHash: string): Promise<ClnInvoice> {
    const hash = bytesToHex(hexToBytes(paymentHash, 32));
    const listed = parse(
      z.object({ invoices: z.array(z.unknown()) }),
      await rpc('listinvoices', { payment_hash: hash }),
      'invoice list',
    );
    if (listed.invoices[0] === undefined) {
      throw new TollwayError(
        'invoice_not_found',
        'Core Lightning knows no invoice with that hash',
        {
          details: { paymentHash: hash },
        },
      );
    }
    return parse(invoiceShape, listed.invoices[0], 'invoice');
  }

  return {
    kind: 'cln',
    capabilities: { canReceive: true, canPay: true },

    async getInfo() {
      const info = parse(infoShape, await rpc('getinfo', {}), 'node info');
      const network = NETWORKS[info.network];
      if (network === undefined) {
        throw new TollwayError(
          'unsupported_network',
          `Core Lightning runs on ${info.network}, which Tollway does not know`,
        );
      }
      return {
        pubkey: info.id,
        network,
        ...(info.alias === undefined ? {} : { alias: info.alias }),
      };
    },

    async createInvoice(params) {
      const request: Record<string, unknown> = {
        amount_msat: params.amountMsat === 0n ? 'any' : `${params.amountMsat}msat`,
        label: `tollway-${bytesToHex(randomBytes(16))}`,
        description: params.memo ?? '',
        expiry: params.expirySeconds ?? DEFAULT_EXPIRY_SECONDS,
      };
      if (params.descriptionHash !== undefined) {
        const memoHash =
          params.memo === undefined ? undefined : bytesToHex(sha256(utf8ToBytes(params.memo)));
        if (memoHash !== params.descriptionHash.toLowerCase()) {
          throw new TollwayError(
            'capability_unsupported',
            'Core Lightning hashes the description itself: pass the description as memo along with its hash',
          );
        }
        request.deschashonly = true;
      }
      const created = parse(createdShape, await rpc('invoice', request), 'invoice');
      return decodeCreatedInvoice(
        'Core Lightning',
        { paymentRequest: created.bolt11, paymentHash: created.payment_hash },
        params.amountMsat,
      );
    },

    async lookupInvoice(paymentHash) {
      return invoiceStatus(await findInvoice(paymentHash), Date.now());
    },

    async waitForSettlement(paymentHash, waitOptions = {}) {
      const invoice = await findInvoice(paymentHash);
      const current = invoiceStatus(invoice, Date.now());
      if (current.state !== 'open') return current;
      const timeoutMs = waitOptions.timeoutMs ?? DEFAULT_WAIT_MS;
      try {
        const waited = await withDeadline(
          timeoutMs,
          () =>
            new TollwayError('payment_timeout', `invoice not settled within ${timeoutMs} ms`, {
              details: { paymentHash: invoice.payment_hash },
            }),
          (signal) =>
            rpc(
              'waitinvoice',
              { label: invoice.label },
              { signal, timeoutMs: timeoutMs + SOCKET_GRACE_MS },
            ),
          waitOptions.signal,
        );
        return invoiceStatus(parse(invoiceShape, waited, 'invoice'), Date.now());
      } catch (error) {
        // waitinvoice fails with 903 once the invoice expires.
        if (isTollwayError(error, 'invoice_expired'))
          return invoiceStatus(await findInvoice(paymentHash), Date.now());
        throw error;
      }
    },

    async payInvoice(params) {
      const invoice = decodeInvoice(params.paymentRequest);
      const amountMsat = invoice.amountMsat ?? params.amountMsat;
      if (amountMsat === undefined)
        throw new TollwayError('amount_required', 'invoice has no amount; pass amountMsat');
      const timeoutMs = params.timeoutMs ?? DEFAULT_WAIT_MS;
      const common: Record<string, unknown> = {
        maxfee: `${params.maxFeeMsat ?? amountMsat / 100n + 10_000n}msat`,
        retry_for: Math.max(1, Math.ceil(timeoutMs / 1000)),
      };
      if (invoice.amountMsat === undefined) common.amount_msat = `${amountMsat}msat`;
      const paymentHash = invoice.paymentHash;
      const sent = await withDeadline(
        timeoutMs,
        () => paymentTimeout(paymentHash, timeoutMs),
        async (signal) => {
          const opts = { signal, timeoutMs: timeoutMs + SOCKET_GRACE_MS };
          if (hasXpay) {
            try {
              return parse(
                sentShape,
                await rpc('xpay', { invstring: invoice.paymentRequest, ...common }, opts),
                'xpay result',
              );
            } catch (error) {
              if (!isUnknownCommand(error)) throw error;
              hasXpay = false;
            }
          }
          const paid = parse(
            payShape,
            await rpc('pay', { bolt11: invoice.paymentRequest, ...common }, opts),
            'pay result',
          );
          if (paid.status !== 'complete') {
            throw new TollwayError(
              paid.status === 'pending' ? 'payment_timeout' : 'payment_failed',
              `Core Lightning: payment ${paid.status}`,
              { details: { paymentHash } },
            );
          }
          return paid;
        },
      );
      return {
        paymentHash,
        preimage: sent.payment_preimage,
        amountMsat: sent.amount_msat,
        feeMsat: sent.amount_sent_msat - sent.amount_msat,
      };
    },

    async lookupPayment(paymentHash) {
      const hash = bytesToHex(hexToBytes(paymentHash, 32));
      const { pays } = parse(
        paysShape,
        await rpc('listpays', { payment_hash: hash }),
        'payment list',
      );
      // One hash can have several attempts: a completed one wins, then a pending one.
      const pay =
        pays.find((p) => p.status === 'complete') ??
        pays.find((p) => p.status === 'pending') ??
        pays[0];
      if (pay === undefined) {
        throw new TollwayError(
          'invoice_not_found',
          'Core Lightning knows no payment with that hash',
          {
            details: { paymentHash: hash },
          },
        );
      }
      const status: PaymentStatus = { paymentHash: hash, state: 'pending' };
      if (pay.amount_msat !== undefined) status.amountMsat = pay.amount_msat;
      if (pay.status === 'failed') {
        status.state = 'failed';
        status.failureReason = 'Core Lightning reports the payment failed';
      } else if (pay.status === 'complete') {
        if (pay.preimage === undefined) {
          throw new TollwayError(
            'backend_error',
            'Core Lightning reports a completed payment without a preimage',
          );
        }
        status.state = 'succeeded';
        status.preimage = pay.preimage;
        if (pay.amount_msat !== undefined && pay.amount_sent_msat !== undefined) {
          status.feeMsat = pay.amount_sent_msat - pay.amount_msat;
        }
      }
      return status;
    },

    async getBalance() {
      const funds = parse(fundsShape, await rpc('listfunds', {}), 'fund list');
      const usable = funds.channels.filter((channel) => channel.state === 'CHANNELD_NORMAL');
      return { msat: usable.reduce((sum, channel) => sum + channel.our_amount_msat, 0n) };
    },

    close: () => client.close(),
  };
}
