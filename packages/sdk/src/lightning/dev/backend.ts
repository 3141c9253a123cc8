/**
 * The `dev` Lightning backend: a client of the dev node's HTTP API (see `server.ts`), so a process can
 * pay or get paid through a dev node (a SANDBOX with play money) hosted by another process.
 */
import { z } from 'zod';
import { errorCodes, TollwayError, type TollwayErrorCode } from '../../errors.js';
import { createHttpClient, type HttpRequestOptions } from '../http.js';
import type { InvoiceStatus, LightningBackend } from '../types.js';

/** Options of {@link createDevBackend}: what a `dev+http://` connection string names. */
export interface DevBackendOptions {
  /** Base URL of the dev node's HTTP API, e.g. `http://127.0.0.1:4242`. */
  url: string;
  /** The wallet's name. */
  wallet: string;
  /** The wallet's bearer token, given when the wallet was created. */
  token: string;
  /** Per-request timeout; default 30 000 ms (long polls add their own wait). */
  timeoutMs?: number;
}

const POLL_MS = 25_000;

const msat = z
  .string()
  .regex(/^(0|[1-9][0-9]{0,18})$/)
  .transform((text) => BigInt(text));
const hex32 = z.string().regex(/^[0-9a-f]{64}$/);

const infoReply = z.object({
  pubkey: z.string().regex(/^0[23][0-9a-f]{64}$/),
  network: z.literal('regtest'),
  alias: z.string(),
});
const balanceReply = z.object({ balanceMsat: msat });
const createdReply = z.object({
  paymentRequest: z.string(),
  paymentHash: hex32,
  amountMsat: msat,
  expiresAt: z.number().int(),
});
const invoiceReply = z.object({
  paymentHash: hex32,
  state: z.enum(['open', 'settled', 'expired', 'canceled']),
  amountMsat: msat.exactOptional(),
  amountPaidMsat: msat.exactOptional(),
  preimage: hex32.exactOptional(),
  settledAt: z.number().int().exactOptional(),
});
const paidReply = z.object({
  paymentHash: hex32,
  preimage: hex32,
  amountMsat: msat,
  feeMsat: msat,
});
const paymentReply = z.object({
  paymentHash: hex32,
  state: z.enum(['pending', 'succeeded', 'failed']),
  preimage: hex32.exactOptional(),
  amountMsat: msat.exactOptional(),
  feeMsat: msat.exactOptional(),
  failureReason: z.string().exactOptional(),
});
const problemReply = z.object({ code: z.string(), detail: z.string() });

/**
 * Connects to one wallet of a dev node over HTTP. Returns the raw backend; `connectLightning` wraps
 * it in the shared safety layer.
 *
 * @example
 * ```ts
 * const ln = createDevBackend({ url: 'http://127.0.0.1:4242', wallet: 'agent', token });
 * const paid = await ln.payInvoice({ paymentRequest });
 * ```
 */
export function createDevBackend(options: DevBackendOptions): LightningBackend {
  const client = createHttpClient({
    baseUrl: options.url,
    headers: { authorization: `Bearer ${options.token}` },
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
  });
  const base = `/v1/wallets/${encodeURIComponent(options.wallet)}`;

  async function call<S extends z.ZodType>(
    schema: S,
    method: string,
    path: string,
    request: HttpRequestOptions = {},
  ): Promise<z.output<S>> {
    const response = await client.request(method, base + path, request);
    if (response.status < 200 || response.status >= 300) {
      throw problemError(response.status, response.body);
    }
    const parsed = schema.safeParse(response.body);
    if (!parsed.success) {
      throw new TollwayError('backend_error', `the dev node sent an unexpected ${path} answer`, {
        cause: parsed.error,
        details: { status: response.status },
      });
    }
    return parsed.data;
  }

  const hashPath = (hash: string): string => encodeURIComponent(hash);

  return {
    kind: 'dev',
    capabilities: { canReceive: true, canPay: true },
    async getInfo() {
      const info = await call(infoReply, 'GET', '/info');
      return { pubkey: info.pubkey, network: info.network, alias: info.alias };
    },
    createInvoice: (params) =>
      call(createdReply, 'POST', '/invoices', {
        json: {
          amountMsat: params.amountMsat,
          ...(params.memo !== undefined ? { memo: params.memo } : {}),
          ...(params.descriptionHash !== undefined
            ? { descriptionHash: params.descriptionHash }
            : {}),
          ...(params.expirySeconds !== undefined ? { expirySeconds: params.expirySeconds } : {}),
        },
      }),
    lookupInvoice: (hash) => call(invoiceReply, 'GET', `/invoices/${hashPath(hash)}`),
    async waitForSettlement(hash, waitOptions = {}) {
      const { signal } = waitOptions;
      const deadline = Date.now() + (waitOptions.timeoutMs ?? 60_000);
      for (;;) {
        const waitMs = Math.max(0, Math.min(deadline - Date.now(), POLL_MS));
        let status: InvoiceStatus;
        try {
          status = await call(invoiceReply, 'GET', `/invoices/${hashPath(hash)}/wait`, {
            query: { timeoutMs: String(waitMs) },
            timeoutMs: (options.timeoutMs ?? 30_000) + waitMs,
            ...(signal !== undefined ? { signal } : {}),
          });
        } catch (error) {
          if (signal?.aborted) {
            throw new TollwayError('payment_timeout', 'the wait was aborted', { cause: error });
          }
          throw error;
        }
        if (status.state !== 'open') return status;
        if (Date.now() >= deadline) {
          throw new TollwayError('payment_timeout', 'the invoice is still open', {
            details: { paymentHash: status.paymentHash },
          });
        }
      }
    },
    payInvoice: (params) =>
      call(paidReply, 'POST', '/payments', {
        json: {
          paymentRequest: params.paymentRequest,
          ...(params.amountMsat !== undefined ? { amountMsat: params.amountMsat } : {}),
          ...(params.maxFeeMsat !== undefined ? { maxFeeMsat: params.maxFeeMsat } : {}),
        },
        ...(params.timeoutMs !== undefined ? { timeoutMs: params.timeoutMs } : {}),
      }),
    lookupPayment: (hash) => call(paymentReply, 'GET', `/payments/${hashPath(hash)}`),
    async getBalance() {
      return { msat: (await call(balanceReply, 'GET', '/balance')).balanceMsat };
    },
    close: () => client.close(),
  };
}

/** Turns a problem body into the `TollwayError` the node raised; anything else is `backend_error`. */
function problemError(status: number, body: unknown): TollwayError {
  const problem = problemReply.safeParse(body);
  if (problem.success && Object.hasOwn(errorCodes, problem.data.code)) {
    return new TollwayError(problem.data.code as TollwayErrorCode, problem.data.detail, {
      details: { status },
    });
  }
  return new TollwayError('backend_error', `the dev node answered HTTP ${status}`, {
    details: { status },
  });
}

const walletReply = z.object({ name: z.string(), token: z.string(), balanceMsat: msat });

/** A dev wallet as created by {@link createDevWallet}. */
export interface CreatedDevWallet {
  name: string;
  token: string;
  balanceMsat: bigint;
  /** `dev+http://…?wallet=…&token=…`, ready for `connectLightning` or `--wallet`. */
  connectionString: string;
}

/**
 * Creates (or returns, unchanged, an existing) wallet on a dev node over HTTP, with the node's admin
 * token. New wallets are funded with play money.
 *
 * @example
 * ```ts
 * const { connectionString } = await createDevWallet({ url, adminToken, name: 'agent' });
 * ```
 */
export async function createDevWallet(params: {
  url: string;
  adminToken: string;
  name: string;
  balanceMsat?: bigint;
}): Promise<CreatedDevWallet> {
  const client = createHttpClient({
    baseUrl: params.url,
    headers: { authorization: `Bearer ${params.adminToken}` },
  });
  try {
    const response = await client.request('POST', '/v1/wallets', {
      json: {
        name: params.name,
        ...(params.balanceMsat !== undefined ? { balanceMsat: params.balanceMsat } : {}),
      },
    });
    if (response.status < 200 || response.status >= 300)
      throw problemError(response.status, response.body);
    const wallet = walletReply.safeParse(response.body);
    if (!wallet.success) {
      throw new TollwayError('backend_error', 'the dev node sent an unexpected wallet answer', {
        cause: wallet.error,
      });
    }
    const url = new URL(params.url);
    const query = new URLSearchParams({ wallet: wallet.data.name, token: wallet.data.token });
    return {
      ...wallet.data,
      connectionString: `dev+${url.protocol.replace(':', '')}://${url.host}${url.pathname.replace(/\/$/, '')}?${query}`,
    };
  } finally {
    await client.close();
  }
}
