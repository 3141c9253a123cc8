/**
 * The tools of `tollway mcp`: `fetch` (pays a 402 within budget), `quote` (the price, without
 * paying), `discover` (the priced endpoints an API publishes), `budget` (what is left) and
 * `payments` (the ledger). Descriptions are written for a
 * model; amounts go out as text with their unit (`'10 sat'`, `'2.5 sat'`), never as bare numbers.
 */

import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { formatMsat, isTollwayError } from '@tollway/sdk';
import {
  discover,
  getPayment,
  type LedgerQuery,
  type Offer,
  type PayingRequestInit,
  type PaymentInfo,
  type Quote,
} from '@tollway/sdk/client';
import { z } from 'zod';
import { parseGrouping, type SpendRow, spendRow } from '../ledger-spend.js';
import type { Agent } from './agent.js';
import { readBoundedBody } from './body.js';
import { toolError } from './tool-errors.js';

/** Most bytes of a text body returned, and largest binary body returned as base64. */
const BODY_LIMITS = { text: 64 * 1024, binary: 48 * 1024 } as const;

/** Response headers worth a model's attention; others are left out. */
const HEADERS = [
  'content-type',
  'content-length',
  'content-language',
  'content-disposition',
  'cache-control',
  'etag',
  'last-modified',
  'expires',
  'location',
  'retry-after',
  'link',
  'payment-receipt',
  'payment-response',
];
const MAX_HEADER_CHARS = 512;
const DEFAULT_PAYMENTS_LIMIT = 20;
const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Reads `since`: a duration back from `now` (`30m`, `24h`, `7d`) or an ISO 8601 date or time. */
function parseSince(text: string, now: number): number | undefined {
  const relative = /^(\d+)\s*([smhd])$/.exec(text.trim());
  if (relative !== null) return now - Number(relative[1]) * (UNIT_MS[relative[2] ?? ''] ?? 0);
  const time = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(time) ? undefined : time;
}

/** `https://api.example.com`, from an origin or any URL of it; other text as given. */
function normaliseOrigin(text: string): string {
  try {
    return new URL(text).origin;
  } catch {
    return text;
  }
}

function pickHeaders(headers: Headers): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const name of HEADERS) {
    const value = headers.get(name);
    if (value !== null) picked[name] = value.slice(0, MAX_HEADER_CHARS);
  }
  return picked;
}

function describeOffer(offer: Offer): Record<string, string> {
  if (offer.protocol === 'x402') {
    return {
      protocol: 'x402',
      amount: `${offer.amount} base units of ${offer.asset}`,
      network: offer.network,
    };
  }
  return {
    protocol: offer.protocol,
    amount: formatMsat(offer.amountMsat),
    network: offer.invoice.network,
    expires_at: new Date(offer.invoice.expiresAt).toISOString(),
    ...(offer.invoice.description !== undefined
      ? { description: offer.invoice.description.slice(0, 200) }
      : {}),
  };
}

/** What `fetch` would do with a 402, from a quote (ignoring a cached credential). */
function payVerdict(quote: Quote, agent: Agent, capMsat: bigint | undefined): string {
  const { choice } = quote;
  if (choice === undefined)
    return 'payment asked, but no offer this wallet can pay (see not_payable)';
  const price = formatMsat(choice.amountMsat);
  if (quote.budget !== undefined && !quote.budget.ok) {
    const cap = capMsat ?? agent.config.maxCostMsat;
    return quote.budget.code === 'over_price'
      ? `fetch would refuse: over_price, ${price} is above the cap of ${formatMsat(cap)}`
      : `fetch would refuse to pay ${price}: ${quote.budget.code}: ${quote.budget.message}`;
  }
  return `fetch would pay ${price} (plus up to ${formatMsat(agent.config.maxFeeMsat)} routing fee) by ${choice.protocol}`;
}

/** One sentence on what `fetch` would do, from a quote. */
function verdict(quote: Quote, agent: Agent, capMsat: bigint | undefined): string {
  if (quote.status !== 402) return `no payment asked: the server answered ${quote.status}`;
  const pay = payVerdict(quote, agent, capMsat);
  return quote.cached
    ? `fetch first sends a credential bought earlier on this origin, which the server may accept; if it does not, ${pay}`
    : pay;
}

/** A result with its structured content, and that content as JSON text for the model. */
function result(structured: Record<string, unknown>, more: string[] = []): CallToolResult {
  return {
    content: [
      { type: 'text', text: JSON.stringify(structured, null, 2) },
      ...more.map((text) => ({ type: 'text' as const, text })),
    ],
    structuredContent: structured,
  };
}

/** What the fetch tool says of the call's payment, in one line. */
function paymentNote(
  paid: PaymentInfo | undefined,
  call: { reused: boolean; channelId?: string },
): string {
  if (paid !== undefined) {
    const cached = paid.protocol === 'l402' ? '; the credential is cached for later requests' : '';
    return `paid ${formatMsat(paid.amountMsat)} + ${formatMsat(paid.feeMsat)} routing fee by ${paid.protocol}${cached}`;
  }
  if (call.channelId !== undefined) {
    return `no new payment: drawn from x402 channel ${call.channelId}, deposited into earlier (the payment-response header says what this request was charged)`;
  }
  if (call.reused) return 'no payment: a credential bought earlier was reused';
  return 'no payment was needed';
}

/** A spend row as the payments tool shows it: amounts in sat. */
function spendInSat(row: SpendRow) {
  return {
    key: row.key === '' ? '(none)' : row.key,
    purchases: row.purchases,
    paid: formatMsat(row.paidMsat),
    fees: formatMsat(row.feeMsat),
    refunded: formatMsat(row.refundedMsat),
    net: formatMsat(row.netMsat),
    requests_charged: row.calls,
    charged: formatMsat(row.chargedMsat),
    unsettled_at_most: formatMsat(row.unsettledMsat),
    released: row.released,
  };
}

function satsToMsat(sats: number | undefined): bigint | undefined {
  return sats === undefined ? undefined : BigInt(sats) * 1000n;
}

/**
 * Registers `fetch`, `quote`, `budget` and `payments` on `server`, over `agent`.
 *
 * @example
 * ```ts
 * const server = new McpServer({ name: 'tollway', version });
 * registerTools(server, await openAgent(config));
 * ```
 */
export function registerTools(server: McpServer, agent: Agent): void {
  const { config } = agent;
  const cap = formatMsat(config.maxCostMsat);
  const request = {
    url: z.url({ protocol: /^https?$/ }).describe('The http:// or https:// URL to request.'),
    method: z
      .enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'])
      .optional()
      .describe('HTTP method; default GET.'),
    headers: z
      .record(z.string(), z.string())
      .optional()
      .describe('Request headers, e.g. {"content-type": "application/json"}.'),
    body: z.string().optional().describe('Request body as text (not with GET or HEAD).'),
    agent: z
      .string()
      .max(100)
      .optional()
      .describe('Who makes this request (your name or role), recorded in the ledger for reports.'),
    task: z
      .string()
      .max(100)
      .optional()
      .describe('The task this request serves, recorded in the ledger for reports.'),
    max_cost: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe(
        `The most you accept to pay for this request, in sat (whole satoshis). Lowers the user's cap of ${cap} for this call; a higher value does not raise it. 0 means pay nothing.`,
      ),
  };
  const init = (args: {
    method?: string | undefined;
    headers?: Record<string, string> | undefined;
    body?: string | undefined;
    agent?: string | undefined;
    task?: string | undefined;
  }): PayingRequestInit => ({
    ...(args.method !== undefined ? { method: args.method } : {}),
    ...(args.headers !== undefined ? { headers: args.headers } : {}),
    ...(args.body !== undefined ? { body: args.body } : {}),
    tags: {
      ...(args.agent !== undefined ? { agent: args.agent } : {}),
      ...(args.task !== undefined ? { task: args.task } : {}),
    },
  });
  const signal = (cancel: AbortSignal) =>
    AbortSignal.any([cancel, AbortSignal.timeout(config.timeoutMs)]);

  server.registerTool(
    'fetch',
    {
      title: 'Fetch a URL, paying if asked',
      description: [
        "Request an http(s) URL and return its response. If the server answers 402 Payment Required (L402 or MPP over Lightning, or x402 stablecoins when the user gave an EVM key), pay from the user's wallet within the budget and retry, all in this one call. Free URLs cost nothing.",
        `Amounts are in sat (satoshis; 1 sat = 1000 msat). Before paying, the price is checked against the user's per-request cap (${cap}), your max_cost if lower, and the budget windows (see the budget tool). A credential bought once is cached and reused for later requests to the same service, so repeating a request does not pay again.`,
        'Call quote first when you only want the price. Returns status, selected headers, the payment made (protocol, amount, fee, proof = the preimage) or why none was needed, then the body as a second text block (text up to 64 KiB, cut with a note; a binary body up to 48 KiB as base64, larger ones left out).',
        'If the request cannot be paid or sent, the result is an error whose text starts with a code (over_price, budget_exceeded, origin_denied, no_payable_offer, payment_failed, payment_timeout, fetch_failed, …) and says what to do; nothing was paid unless it says so.',
      ].join('\n\n'),
      inputSchema: request,
      annotations: { readOnlyHint: false, destructiveHint: false, openWorldHint: true },
    },
    async (args, extra) => {
      try {
        return await agent.call(satsToMsat(args.max_cost), async (call) => {
          const response = await agent.fetch(args.url, {
            ...init(args),
            signal: signal(extra.signal),
          });
          const paid = getPayment(response);
          const body = await readBoundedBody(response, BODY_LIMITS);
          const payment =
            paid === undefined
              ? null
              : {
                  protocol: paid.protocol,
                  amount: formatMsat(paid.amountMsat),
                  fee: formatMsat(paid.feeMsat),
                  proof: paid.proof,
                  payment_hash: paid.paymentHash,
                };
          const note = paymentNote(paid, call);
          return result(
            {
              url: response.url || args.url,
              status: response.status,
              status_text: response.statusText,
              headers: pickHeaders(response.headers),
              payment,
              payment_note: note,
              body_bytes: body.bytes,
              body_truncated: body.truncated,
              ...(body.note !== undefined ? { body_note: body.note } : {}),
              ...(body.base64 !== undefined ? { body_base64: body.base64 } : {}),
            },
            body.text !== undefined && body.text !== '' ? [body.text] : [],
          );
        });
      } catch (error) {
        return toolError(error, config);
      }
    },
  );

  server.registerTool(
    'quote',
    {
      title: 'Price of a URL, without paying',
      description: [
        'Find out whether a URL asks for payment, what it costs and by which protocols, without paying. The request is sent once, without any credential, and the 402 offers are read; nothing is spent. Use the same method, headers and body as the fetch you plan: a server may price by request.',
        `Returns the status, each offer (protocol, amount in sat, network), offers this wallet cannot pay with the reason, the offer fetch would pay, and the budget's verdict (would fetch pay it now, or which code would refuse it). The user's per-request cap is ${cap}; pass max_cost to check against a lower one.`,
      ].join('\n\n'),
      inputSchema: request,
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args, extra) => {
      try {
        const capMsat = satsToMsat(args.max_cost);
        return await agent.call(capMsat, async (call) => {
          const quote = await agent.fetch.quote(args.url, {
            ...init(args),
            signal: signal(extra.signal),
          });
          return result({
            url: quote.url,
            status: quote.status,
            payment_required: quote.status === 402,
            cached_credential: quote.cached,
            offers: quote.offers.map(describeOffer),
            not_payable: quote.rejected.map((r) => ({
              kind: r.kind,
              code: r.code,
              reason: r.reason,
            })),
            would_pay:
              quote.choice === undefined
                ? null
                : { protocol: quote.choice.protocol, amount: formatMsat(quote.choice.amountMsat) },
            budget: quote.budget ?? null,
            verdict: verdict(quote, agent, call.capMsat),
          });
        });
      } catch (error) {
        return toolError(error, config);
      }
    },
  );

  server.registerTool(
    'discover',
    {
      title: 'Find the paid endpoints of an API',
      description:
        "List the priced endpoints an API publishes, without paying or sending any credential: its L402 manifest (/.well-known/l402.json), x402 manifest (/.well-known/x402.json) and OpenAPI document with x-payment-info (/openapi.json), read into one list. Each endpoint: method, URL, description, and prices by protocol (l402 in msat, mpp in sat, x402 in the token's base units; no amount = priced per request). Also which documents were found. Discovery is advisory: the 402 of an endpoint says what it costs; use quote for that.",
      inputSchema: {
        url: z.url({ protocol: /^https?$/ }).describe('The API, e.g. https://api.example.com.'),
      },
      annotations: { readOnlyHint: true, openWorldHint: true },
    },
    async (args) => {
      try {
        const found = await discover(args.url, { timeoutMs: config.timeoutMs });
        return result({
          origin: found.origin,
          endpoints: found.endpoints,
          documents: found.documents,
        });
      } catch (error) {
        return toolError(error, config);
      }
    },
  );

  server.registerTool(
    'budget',
    {
      title: 'Remaining budget',
      description:
        "Show how much you may still spend: the per-request cap, the routing-fee allowance, and each budget window the user set (hour, day, month = rolling last 60 min / 24 h / 30 days; total = ever) with its limit, spent, held (payments in flight: price plus fee allowance) and remaining, in sat; and the wallet's balance. Call it before a series of paid requests, or after a budget_exceeded error.",
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async () => {
      try {
        const windows = (await agent.budget.status())
          .filter((w) => w.window !== 'request')
          .map((w) => ({
            window: w.window,
            ...(w.origin !== undefined ? { origin: w.origin } : {}),
            limit: formatMsat(w.limitMsat),
            spent: formatMsat(w.spentMsat),
            held: formatMsat(w.heldMsat),
            remaining: formatMsat(w.remainingMsat),
          }));
        const balance =
          agent.lightning === undefined
            ? 'no Lightning wallet'
            : await agent.lightning.wallet.getBalance().then(
                (b) => formatMsat(b.msat),
                (error: unknown) => {
                  if (isTollwayError(error)) return `unknown (${error.code})`;
                  throw error;
                },
              );
        const disabled =
          (await agent.store.isPaused()) ||
          (await agent.store.disabledBudgets()).includes(agent.budget.path);
        return result({
          per_request_cap: cap,
          max_fee: formatMsat(config.maxFeeMsat),
          windows,
          ...(windows.length === 0
            ? {
                note: 'no hour, day, month or total limit is set: only the per-request cap applies',
              }
            : {}),
          ...(config.allowOrigins !== undefined ? { allowed_origins: config.allowOrigins } : {}),
          payments_disabled: disabled,
          wallet_balance: balance,
        });
      } catch (error) {
        return toolError(error, config);
      }
    },
  );

  server.registerTool(
    'payments',
    {
      title: 'Payments made',
      description:
        "List the agent's ledger, newest first, with totals per origin of the succeeded payments that match. Each entry: time, kind (purchase = a payment; draw = what one request was charged out of something bought before, as the server's receipt said; release = a request charged nothing; refund = money paid back), URL, origin, protocol, amount and fee in sat, status (succeeded; failed = not paid; pending = outcome not known yet, settled automatically before that origin is paid again; a pending draw = a metered request whose receipt told only the most it could cost), tags (agent, task, model), payment hash and proof. With by, also the spend grouped by origin, agent, task or model: paid, fees, refunded, net, requests charged and what they were charged. Use it to report spending (what did this task or model cost) or to check what happened after an error.",
      inputSchema: {
        since: z
          .string()
          .refine((s) => parseSince(s, Date.now()) !== undefined, {
            message: 'a duration such as 30m, 24h or 7d, or an ISO 8601 date or time',
          })
          .optional()
          .describe(
            'Only payments since then: a duration back from now (30m, 24h, 7d) or an ISO 8601 date or time.',
          ),
        origin: z
          .string()
          .optional()
          .describe(
            'Only payments to this origin, e.g. https://api.example.com (a full URL works too).',
          ),
        status: z
          .enum(['pending', 'succeeded', 'failed'])
          .optional()
          .describe('Only entries with this status.'),
        by: z
          .enum(['origin', 'agent', 'task', 'model'])
          .optional()
          .describe('Also report the spend grouped by this (over every entry that matches).'),
        limit: z
          .number()
          .int()
          .min(1)
          .max(100)
          .optional()
          .describe(`At most this many entries (the newest); default ${DEFAULT_PAYMENTS_LIMIT}.`),
      },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    async (args) => {
      try {
        const query: LedgerQuery = {};
        const since = args.since === undefined ? undefined : parseSince(args.since, Date.now());
        if (since !== undefined) query.since = since;
        if (args.origin !== undefined) query.origin = normaliseOrigin(args.origin);
        if (args.status !== undefined) query.status = args.status;
        const entries = await agent.store.list({
          ...query,
          limit: args.limit ?? DEFAULT_PAYMENTS_LIMIT,
        });
        const totals = await agent.store.totals(query);
        const grouping = args.by === undefined ? undefined : parseGrouping(args.by);
        const spend =
          grouping === undefined
            ? undefined
            : (await agent.store.summary(query, grouping)).map(spendRow);
        return result({
          payments: entries.map((e) => ({
            time: new Date(e.time).toISOString(),
            kind: e.kind,
            url: e.url,
            origin: e.origin,
            protocol: e.protocol,
            amount: formatMsat(e.amountMsat),
            fee: formatMsat(e.feeMsat),
            status: e.status,
            tags: e.tags,
            payment_hash: e.reference,
            ...(e.proof !== undefined ? { proof: e.proof } : {}),
          })),
          totals: totals.map((t) => ({
            origin: t.origin,
            payments: t.count,
            amount: formatMsat(t.amountMsat),
            fee: formatMsat(t.feeMsat),
          })),
          ...(spend === undefined ? {} : { spend: spend.map(spendInSat) }),
        });
      } catch (error) {
        return toolError(error, config);
      }
    },
  );
}
