/**
 * The x402 offer: the `exact` scheme on one EVM network, paid with an EIP-3009 authorization and
 * settled through a facilitator. It adds the v2 `PAYMENT-REQUIRED` header to the shared 402 (and,
 * with `v1: true`, makes the JSON body a valid v1 `{x402Version: 1, error, accepts}` as well), and
 * reads v2 `PAYMENT-SIGNATURE` and v1 `X-PAYMENT` credentials.
 *
 * A credential is checked by the facilitator, then its nonce is claimed once in the paywall's store
 * (so a payment submitted twice, even concurrently, lets one request through). By default it is
 * settled once the handler commits to a status below 400, before its body leaves (when the caller
 * reports the outcome, as every adapter and the gateway do); with `settle: 'upfront'` it is
 * settled before the handler runs. A payment may also arrive decoded (`PaywallRequest.payment`,
 * kind `x402`: x402 over MCP carries it in the JSON-RPC body). The answer carries `PAYMENT-RESPONSE` (`X-PAYMENT-RESPONSE` for v1), on
 * success and when settlement fails (a 402 that replaces the handler's answer).
 *
 * Prices: the token amount is the offer's `price` when given, else the route's dollar price at one
 * dollar per token (the asset is a USD stablecoin); for a route priced by a function, the dollar
 * price of the request at hand (so a payment is checked against the price of the request it comes
 * with). Requests priced in satoshis or at zero, and routes that sell uses, get no x402 offer
 * unless `price` is set; a route that sells a balance is offered `exact` for its balance.
 *
 * With `upto`, a metered route is also offered the `upto` scheme (listed first): the payer signs a
 * Permit2 authorisation for the request's price, the most it may cost, and it is settled once,
 * after the answer, at what the answer cost (what the handler reported with `setCost`, else what
 * the route's meter read; possibly 0).
 *
 * With `batch`, routes priced per request are also offered `batch-settlement` (listed before
 * `exact`): a deposit into a payment channel once, then a voucher per request, checked without a
 * chain round trip and redeemed in batches with `redeemBatch()` (see ./x402-batch.ts).
 */
import { TollwayError } from '../errors.js';
import { type Amount, parseAmount } from '../money.js';
import { parseExactEvmPayload } from '../x402/exact-evm.js';
import type { Facilitator } from '../x402/facilitator.js';
import { X402_HEADERS } from '../x402/headers.js';
import { formatPaymentRequiredHeader } from '../x402/payment-required.js';
import { formatPaymentResponseHeader } from '../x402/payment-response.js';
import { parsePaymentSignatureHeader, paymentPayloadSchema } from '../x402/payment-signature.js';
import type {
  X402Network,
  X402PaymentPayload,
  X402PaymentRequired,
  X402PaymentRequirements,
  X402ResourceInfo,
  X402SettleResponse,
} from '../x402/types.js';
import { parseUptoEvmPayload } from '../x402/upto-evm.js';
import { formatXPaymentResponseHeader, parseXPaymentHeader } from '../x402/v1.js';
import { networkToV1 } from '../x402/v1-networks.js';
import { formatAmount, isX402Network, parseWith } from '../x402/wire.js';
import type {
  CredentialCheck,
  CredentialVerdict,
  OfferKind,
  PresentedCredential,
  SettleOutcome,
} from './offers.js';
import type { Route } from './route.js';
import { type BatchRedemption, createBatchSide, type X402BatchOptions } from './x402-batch.js';
import { createBazaarExtension } from './x402-bazaar.js';

/** The token an x402 offer is paid in: an EIP-3009 contract and its EIP-712 domain. */
export interface X402Asset {
  /** The token contract. */
  address: `0x${string}`;
  /** Decimals of the token (6 for USDC). */
  decimals: number;
  /** The token's EIP-712 domain name (`'USD Coin'` for USDC on Base). */
  name: string;
  /** The token's EIP-712 domain version (`'2'` for USDC). */
  version: string;
}

/** Options of {@link createX402Offer}. */
export interface X402OfferOptions {
  /** Checks and settles payments: `createSelfHostedFacilitator` or `createFacilitatorClient`. */
  facilitator: Facilitator;
  /** The address that receives the payments. */
  payTo: `0x${string}`;
  asset: X402Asset;
  /** CAIP-2 id of the chain, e.g. `eip155:8453` (Base). */
  network: X402Network;
  /**
   * The price of every route with this offer: token base units (bigint) or dollars (`'$0.01'`, one
   * dollar per token). Default: each route's dollar price.
   */
  price?: bigint | string;
  /** How long a payment may take to settle, seconds. Default 60. */
  maxTimeoutSeconds?: number;
  /** Also offer x402 v1 (the 402 body); the network must have a v1 name. Default false. */
  v1?: boolean;
  /**
   * `'after'` (default): settle once the handler answered below 400, where the adapter supports
   * it; `'upfront'`: settle before the handler runs (streaming routes).
   */
  settle?: 'after' | 'upfront';
  /**
   * Add the x402 Bazaar discovery extension to the 402 (`extensions.bazaar`: how the resource is
   * called), which a paying client echoes so that a facilitator can list it. Default false.
   */
  bazaar?: boolean;
  /**
   * Also offer the `upto` scheme on metered routes (see the module comment). `facilitatorAddress`
   * is the account that settles them, which payers bind their authorisation to: the
   * `facilitatorAddress` in the facilitator's `/supported` answer for `upto`
   * (`SelfHostedFacilitator.address` for a self-hosted one).
   */
  upto?: { facilitatorAddress: `0x${string}` };
  /** Also offer `batch-settlement` (see the module comment); its channels live in `store`. */
  batch?: X402BatchOptions;
}

/** The x402 offer kind, and the redemption of its batch-settlement channels. */
export interface X402OfferKind extends OfferKind {
  /**
   * Claims what each batch-settlement channel drew, with its highest voucher, in one
   * transaction, and sweeps it to `payTo`; at most `maxClaims` channels (default 100). Throws
   * `invalid_config` when the offer has no `batch`, `x402_settlement_failed` when the claim fails,
   * `facilitator_unavailable` when the facilitator does not answer.
   */
  redeemBatch(options?: { maxClaims?: number }): Promise<BatchRedemption>;
}

/** How long a claimed nonce is remembered after its authorization expired (clock skew). */
const CLAIM_GRACE_MS = 60_000;
const MICRO_USD_PER_USD = 1_000_000n;

function assertAddress(value: string, what: string): void {
  if (!/^0x[0-9a-fA-F]{40}$/.test(value)) {
    throw new TollwayError('invalid_config', `${what} must be a 20-byte hex address`);
  }
}

/** Token base units worth `microUsd` at one dollar per token, rounded up. */
function usdToToken(microUsd: bigint, decimals: number): bigint {
  const scaled = microUsd * 10n ** BigInt(decimals);
  return (scaled + MICRO_USD_PER_USD - 1n) / MICRO_USD_PER_USD;
}

/** The offer's fixed price in base units, or undefined when routes set it. */
function fixedPrice(price: bigint | string | undefined, decimals: number): bigint | undefined {
  if (price === undefined) return undefined;
  if (typeof price === 'bigint') {
    if (price <= 0n) throw new TollwayError('invalid_price', 'an x402 price must be positive');
    return price;
  }
  const amount = parseAmount(price);
  if (amount.unit !== 'usd' || amount.microUsd <= 0n) {
    throw new TollwayError('invalid_price', 'an x402 price must be token base units or dollars');
  }
  return usdToToken(amount.microUsd, decimals);
}

/** Dollars worth `amount` base units at one dollar per token, rounded down. */
function tokenToUsd(amount: bigint, decimals: number): Amount {
  return { unit: 'usd', microUsd: (amount * MICRO_USD_PER_USD) / 10n ** BigInt(decimals) };
}

/** What a 402 of the route at `path` offers a payment for. */
function resourceOf(path: string, route: Route): X402ResourceInfo {
  return { url: path, description: route.description, mimeType: '' };
}

function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/**
 * Creates the x402 offer kind for `createPaywall({ offers: [...] })`. Throws `invalid_config` for
 * a malformed address, network, decimals or timeout, or v1 on a network v1 cannot name, and
 * `invalid_price` for a malformed price.
 *
 * @example
 * ```ts
 * const paywall = createPaywall({
 *   lightning, store, secrets,
 *   offers: [createX402Offer({
 *     facilitator: createFacilitatorClient({ url: 'https://x402.org/facilitator' }),
 *     payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
 *     network: 'eip155:84532',
 *     asset: { address: '0x036CbD53842c5426634e7929541eC2318f3dCF7e', decimals: 6, name: 'USDC', version: '2' },
 *   })],
 * });
 * ```
 */
export function createX402Offer(options: X402OfferOptions): X402OfferKind {
  const { facilitator, payTo, asset, network } = options;
  assertAddress(payTo, 'payTo');
  assertAddress(asset.address, 'the asset address');
  if (!isX402Network(network)) {
    throw new TollwayError('invalid_config', `not a CAIP-2 network: ${String(network)}`);
  }
  if (!Number.isInteger(asset.decimals) || asset.decimals < 0 || asset.decimals > 36) {
    throw new TollwayError('invalid_config', 'the asset decimals must be an integer from 0 to 36');
  }
  const maxTimeoutSeconds = options.maxTimeoutSeconds ?? 60;
  if (!Number.isInteger(maxTimeoutSeconds) || maxTimeoutSeconds <= 0) {
    throw new TollwayError('invalid_config', 'maxTimeoutSeconds must be a positive integer');
  }
  if (options.upto !== undefined)
    assertAddress(options.upto.facilitatorAddress, 'the upto facilitator');
  const v1Network = options.v1 === true ? networkToV1(network) : undefined;
  const price = fixedPrice(options.price, asset.decimals);
  const unit = `${network}/erc20:${asset.address.toLowerCase()}`;
  const batch =
    options.batch === undefined
      ? undefined
      : createBatchSide(options.batch, { facilitator, network, asset: asset.address, payTo, unit });

  /**
   * The token amount of `usd` (the offer's price when it has one); undefined unless a positive
   * dollar amount.
   */
  function tokenAmount(usd: Amount | undefined): bigint | undefined {
    if (price !== undefined) return price;
    if (usd === undefined || usd.unit !== 'usd' || usd.microUsd <= 0n) return undefined;
    return usdToToken(usd.microUsd, asset.decimals);
  }

  /**
   * What this offer accepts for a request of `route` (`listed`: the price of this request, for a
   * route priced by a function; `microUsd`: its price in micro-dollars, when known): `upto` for
   * the request's price on a metered route, when configured — a price in sats at the paywall's
   * rate — then `exact` for the route's balance or the request's price.
   */
  function acceptsFor(route: Route, listed?: Amount, microUsd?: bigint): X402PaymentRequirements[] {
    if (route.uses !== undefined) return [];
    const requestPrice = typeof route.price === 'function' ? listed : route.price;
    const accepts: X402PaymentRequirements[] = [];
    const base = { network, asset: asset.address, payTo, maxTimeoutSeconds };
    const upto =
      options.upto === undefined
        ? undefined
        : (tokenAmount(requestPrice) ??
          (microUsd === undefined ? undefined : tokenAmount({ unit: 'usd', microUsd })));
    if (upto !== undefined && route.meter !== undefined) {
      accepts.push({
        ...base,
        scheme: 'upto',
        amount: upto,
        extra: {
          name: asset.name,
          version: asset.version,
          assetTransferMethod: 'permit2',
          facilitatorAddress: options.upto?.facilitatorAddress,
        },
      });
    }
    const perRequest = route.balance === undefined ? tokenAmount(requestPrice) : undefined;
    if (batch !== undefined && perRequest !== undefined) {
      accepts.push({
        ...base,
        scheme: 'batch-settlement',
        amount: perRequest,
        extra: { name: asset.name, version: asset.version, ...batch.extra },
      });
    }
    // A route that sells a balance is paid its balance; any other, the request's price.
    const exact = tokenAmount(route.balance ?? requestPrice);
    if (exact !== undefined) {
      accepts.push({
        ...base,
        scheme: 'exact',
        amount: exact,
        extra: { name: asset.name, version: asset.version },
      });
    }
    return accepts;
  }

  /** The `exact` requirements among `accepts`. */
  function exactOf(accepts: X402PaymentRequirements[]): X402PaymentRequirements | undefined {
    return accepts.find((requirements) => requirements.scheme === 'exact');
  }

  /** The settlement outcome as the client's protocol version reads it. */
  function responseHeader(version: 1 | 2, response: X402SettleResponse): [string, string] {
    if (version === 2) return [X402_HEADERS.paymentResponse, formatPaymentResponseHeader(response)];
    const {
      amount: _amount,
      extensions: _ext,
      extensionResponses: _res,
      extra: _extra,
      ...v1
    } = response;
    return [X402_HEADERS.paymentResponseV1, formatXPaymentResponseHeader(v1)];
  }

  async function settle(
    version: 1 | 2,
    payment: X402PaymentPayload,
    requirements: X402PaymentRequirements,
    reference: string,
  ): Promise<SettleOutcome> {
    let response: X402SettleResponse;
    try {
      response = await facilitator.settle(payment, requirements);
    } catch (error) {
      response = {
        success: false,
        errorReason: 'unexpected_settle_error',
        errorMessage: error instanceof Error ? error.message : String(error),
        transaction: '',
        network,
      };
    }
    const headers = [responseHeader(version, response)];
    if (!response.success) {
      return {
        ok: false,
        code: 'x402_settlement_failed',
        message: `The payment could not be settled: ${response.errorReason ?? 'unknown reason'}.`,
        headers,
        data: response,
      };
    }
    return {
      ok: true,
      headers,
      // An `upto` payment settled at 0 moves nothing: no transaction to name it.
      settlement: {
        reference: response.transaction || reference,
        amount: requirements.amount,
        unit,
      },
      data: response,
    };
  }

  /** What the request being paid accepts: its own price when a function sets it. */
  async function acceptsOf(request: CredentialCheck): Promise<X402PaymentRequirements[]> {
    const { route } = request;
    // A metered route's upto is for the request's price, converted when it is in sats.
    const quoted =
      typeof route.price === 'function' ||
      (options.upto !== undefined && route.meter !== undefined);
    if (price !== undefined || !quoted) return acceptsFor(route);
    const quote = await request.quote?.();
    return quote === undefined ? [] : acceptsFor(route, quote.amount, quote.microUsd);
  }

  /** The token amount an `upto` payment of at most `max` settles for an answer that cost `cost`. */
  function uptoAmount(max: bigint, cost: Amount | undefined): bigint {
    if (cost === undefined || cost.unit !== 'usd') return max;
    const amount = usdToToken(cost.microUsd, asset.decimals);
    return amount < max ? amount : max;
  }

  /** What a payment's payload says about it: who pays, its one-time nonce, until when. */
  type Signed = { from: string; nonce: string; expiresAt: number };

  /** The payer, nonce and deadline of `payment` in its scheme; a refusal when it is not one. */
  function readSigned(payment: X402PaymentPayload): Signed | CredentialVerdict {
    try {
      if (payment.accepted.scheme === 'upto') {
        const authorization = parseUptoEvmPayload(payment.payload).permit2Authorization;
        return {
          from: authorization.from.toLowerCase(),
          nonce: `permit2:${authorization.nonce}`,
          expiresAt: Number(authorization.deadline) * 1000,
        };
      }
      const { authorization } = parseExactEvmPayload(payment.payload);
      return {
        from: authorization.from.toLowerCase(),
        nonce: authorization.nonce.toLowerCase(),
        expiresAt: Number(authorization.validBefore) * 1000,
      };
    } catch (error) {
      const message = error instanceof Error ? error.message : 'not an x402 EVM payload';
      return { ok: false, code: 'invalid_x402_payload', message, status: 402 };
    }
  }

  async function check(
    version: 1 | 2,
    payment: X402PaymentPayload,
    accepts: X402PaymentRequirements[],
    request: CredentialCheck,
  ): Promise<CredentialVerdict> {
    const { route } = request;
    if (accepts.length === 0) {
      return {
        ok: false,
        code: 'x402_payment_invalid',
        message: 'This request takes no x402 payment.',
        status: 402,
      };
    }
    const accepted = payment.accepted;
    const requirements = accepts.find((offered) => offered.scheme === accepted.scheme);
    if (
      requirements === undefined ||
      accepted.network !== requirements.network ||
      accepted.amount !== requirements.amount ||
      !sameAddress(accepted.asset, requirements.asset) ||
      !sameAddress(accepted.payTo, requirements.payTo)
    ) {
      return {
        ok: false,
        code: 'x402_payment_invalid',
        message: 'The payment accepted other requirements than this route offers.',
        status: 402,
      };
    }
    if (requirements.scheme === 'batch-settlement' && batch !== undefined) {
      return batch.check(payment, requirements, {
        resource: resourceOf(request.path, route),
        accepts,
      });
    }
    const signed = readSigned(payment);
    if ('ok' in signed) return signed;
    const checked = { ...payment, accepted: requirements };
    let verdict: Awaited<ReturnType<Facilitator['verify']>>;
    try {
      verdict = await facilitator.verify(checked, requirements);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return { ok: false, code: 'facilitator_unavailable', message, status: 503 };
    }
    if (!verdict.isValid) {
      const reason = verdict.invalidReason ?? 'invalid_payload';
      return {
        ok: false,
        code: 'x402_payment_invalid',
        message: `The facilitator refused the payment: ${reason}.`,
        status: 402,
      };
    }
    const { from, nonce } = signed;
    const key = `x402:${network}:${asset.address.toLowerCase()}:${from}:${nonce}`;
    const proof = {
      protocol: 'x402' as const,
      tokenId: `${from}/${nonce}`,
      paymentHash: nonce,
      singleUse: { key, expiresAt: signed.expiresAt + CLAIM_GRACE_MS },
      headers: [],
    };
    if (requirements.scheme === 'upto') {
      return {
        ok: true,
        proof: {
          ...proof,
          settle: (cost?: Amount) =>
            settle(
              version,
              checked,
              { ...requirements, amount: uptoAmount(requirements.amount, cost) },
              key,
            ),
          settleAfter: true,
          settlesCost: true,
        },
      };
    }
    return {
      ok: true,
      proof: {
        ...proof,
        settle: () => settle(version, checked, requirements, key),
        settleAfter: options.settle !== 'upfront',
        ...(route.balance === undefined
          ? {}
          : { buysBalance: { amount: tokenToUsd(requirements.amount, asset.decimals) } }),
      },
    };
  }

  /** A v2 payment's credential, checked against each request's requirements. */
  function presentV2(payment: X402PaymentPayload): PresentedCredential {
    return {
      kind: 'x402',
      verify: async (request) => check(2, payment, await acceptsOf(request), request),
    };
  }

  return {
    async redeemBatch(redeemOptions) {
      if (batch === undefined) {
        throw new TollwayError('invalid_config', 'this x402 offer has no batch-settlement');
      }
      return batch.redeemer.redeem(redeemOptions);
    },
    name: 'x402',
    invoice: false,
    headers: [X402_HEADERS.paymentSignature.toLowerCase(), X402_HEADERS.paymentV1.toLowerCase()],
    offer(parts) {
      const accepts = acceptsFor(parts.route, parts.price, parts.priceMicroUsd);
      const [requirements] = accepts;
      if (requirements === undefined) return undefined;
      const exact = exactOf(accepts);
      const error = 'Payment required';
      const resource = resourceOf(parts.path, parts.route);
      const required: X402PaymentRequired = {
        x402Version: 2,
        error,
        resource,
        accepts,
        ...(options.bazaar === true
          ? { extensions: { bazaar: createBazaarExtension(parts.method) } }
          : {}),
      };
      const header = formatPaymentRequiredHeader(required);
      return {
        data: required,
        challenges: [],
        headers: [[X402_HEADERS.paymentRequired, header]],
        entry: {
          protocol: 'x402',
          scheme: requirements.scheme,
          network,
          asset: asset.address,
          amount: formatAmount(requirements.amount),
          decimals: asset.decimals,
          payTo,
          maxTimeoutSeconds,
          credential: `${X402_HEADERS.paymentSignature}: <base64 JSON x402 v2 payment>`,
        },
        ...(v1Network === undefined || exact === undefined
          ? {}
          : {
              body: {
                x402Version: 1,
                error,
                accepts: [
                  {
                    scheme: 'exact',
                    network: v1Network,
                    maxAmountRequired: formatAmount(exact.amount),
                    resource: parts.path,
                    description: parts.route.description,
                    mimeType: '',
                    payTo,
                    maxTimeoutSeconds,
                    asset: asset.address,
                    extra: exact.extra,
                  },
                ],
              },
            }),
      };
    },
    read(source) {
      const v2 = source.headers.get(X402_HEADERS.paymentSignature);
      const v1 = source.headers.get(X402_HEADERS.paymentV1);
      const decoded = source.payment?.kind === 'x402' ? source.payment.payload : undefined;
      if ([v2, v1, decoded].filter((value) => value != null).length > 1) {
        throw new TollwayError(
          'conflicting_credentials',
          'the request carries more than one x402 payment (PAYMENT-SIGNATURE, X-PAYMENT, a decoded one)',
        );
      }
      if (decoded !== undefined) {
        return presentV2(parseWith(paymentPayloadSchema, decoded, 'the x402 payment'));
      }
      if (v2 !== null) return presentV2(parsePaymentSignatureHeader(v2));
      if (v1 === null || v1Network === undefined) return undefined;
      const legacy = parseXPaymentHeader(v1);
      return {
        kind: 'x402',
        async verify(request) {
          const requirements = exactOf(await acceptsOf(request));
          if (
            requirements === undefined ||
            legacy.scheme !== 'exact' ||
            legacy.network !== network
          ) {
            return {
              ok: false,
              code: 'x402_payment_invalid',
              message: 'The payment names another scheme or network than this route offers.',
              status: 402,
            };
          }
          // The facilitator checks v1 payloads in the v2 form: the same authorization, accepted as offered.
          const payment = { x402Version: 2, accepted: requirements, payload: legacy.payload };
          return check(1, payment, [requirements], request);
        },
      };
    },
  };
}
