/**
 * An x402 facilitator checks payments and settles them on chain. {@link Facilitator} is the
 * interface the paywall engine uses; {@link createSelfHostedFacilitator} builds one in-process on
 * `@x402/core` and `@x402/evm` (on one EVM chain, gas paid by a key of your own: the `exact`
 * scheme with EIP-3009, `upto` with Permit2, and `batch-settlement` deposits, claims, sweeps and
 * refunds), and `createFacilitatorClient` talks to a remote one over HTTP.
 *
 * Verdicts are values, in x402's vocabulary (`invalidReason` / `errorReason` such as
 * `invalid_exact_evm_signature`, open-ended); only a facilitator that cannot do its job (RPC or
 * facilitator down) throws, with `facilitator_unavailable`.
 */
import { x402Facilitator } from '@x402/core/facilitator';
import { toFacilitatorEvmSigner } from '@x402/evm';
import { BatchSettlementEvmScheme } from '@x402/evm/batch-settlement/facilitator';
import { ExactEvmScheme } from '@x402/evm/exact/facilitator';
import { UptoEvmScheme } from '@x402/evm/upto/facilitator';
import {
  createPublicClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  publicActions,
  type ReadContractParameters,
  type WriteContractParameters,
} from 'viem';
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import { TollwayError } from '../errors.js';
import { memoizeCode } from './code-memo.js';
import { parseExactEvmPayload } from './exact-evm.js';
import { supportedResponseSchema, verifyResponseSchema } from './facilitator-wire.js';
import { settleResponseSchema } from './payment-response.js';
import { paymentPayloadToWire } from './payment-signature.js';
import { retryStaleNonce } from './stale-nonce.js';
import { withSyncSend } from './sync-send.js';
import type {
  X402Network,
  X402PaymentPayload,
  X402PaymentRequirements,
  X402SettleResponse,
  X402SupportedResponse,
  X402VerifyResponse,
} from './types.js';
import { parseWith, requirementsToWire } from './wire.js';

/**
 * Checks and settles x402 payments. `verify` and `settle` answer verdicts (never throw for a bad
 * payment); they throw `facilitator_unavailable` only when the facilitator cannot decide.
 *
 * @example
 * ```ts
 * const verdict = await facilitator.verify(payment, requirements);
 * if (verdict.isValid) {
 *   const receipt = await facilitator.settle(payment, requirements);
 * }
 * ```
 */
export interface Facilitator {
  /** Checks the payment against the requirements without moving money. */
  verify(
    payload: X402PaymentPayload,
    requirements: X402PaymentRequirements,
  ): Promise<X402VerifyResponse>;
  /** Moves the money on chain and waits for the receipt. */
  settle(
    payload: X402PaymentPayload,
    requirements: X402PaymentRequirements,
  ): Promise<X402SettleResponse>;
  /** What this facilitator can settle. */
  supported(): Promise<X402SupportedResponse>;
}

/** Options of {@link createSelfHostedFacilitator}. */
export interface SelfHostedFacilitatorOptions {
  /** JSON-RPC URL of the chain (http or https). */
  rpcUrl: string;
  /** Private key (32 bytes of hex, `0x` optional) of the account that pays gas for settlements. */
  privateKey: string;
  /** The network to serve; when given, it must match the RPC's chain id. Default: the RPC's. */
  network?: X402Network;
  /** How long `settle` waits for a receipt before answering `settlement_pending`. Default 60 s. */
  confirmationTimeoutMs?: number;
}

/** A {@link Facilitator} running in this process, with the chain and signer it uses. */
export interface SelfHostedFacilitator extends Facilitator {
  /** `eip155:<chain id>` of the RPC. */
  network: X402Network;
  /** The address that submits settlements and pays their gas. */
  address: `0x${string}`;
}

/** The schemes this facilitator settles. */
const SCHEMES = new Set(['exact', 'upto', 'batch-settlement']);

/** x402 reasons this facilitator gives itself (the others come from `@x402/evm`). */
const REASON = {
  version: 'invalid_x402_version',
  scheme: 'unsupported_scheme',
  network: 'invalid_network',
  payload: 'invalid_payload',
  nonceUsed: 'invalid_exact_evm_nonce_already_used',
  pending: 'settlement_pending',
} as const;

const PRUNE_INTERVAL_MS = 60_000;

/** How long a settlement's send waits for its receipt on the node before polling takes over. */
const SYNC_SEND_WAIT_MS = 2_000;

/**
 * What became of an authorization this facilitator was asked to settle: being settled now,
 * settled or broadcast for good (`final`), or ended with an unknown or pending outcome that a later
 * settle of the same payment may look into (`retryable`, one call at a time).
 */
type ClaimState = 'settling' | 'final' | 'retryable';

function toAccount(privateKey: string): PrivateKeyAccount {
  const hex = privateKey.startsWith('0x') ? privateKey : `0x${privateKey}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    throw new TollwayError('invalid_config', 'the facilitator key must be 32 bytes of hex');
  }
  try {
    return privateKeyToAccount(hex as Hex);
  } catch (error) {
    throw new TollwayError('invalid_config', 'the facilitator key is not a valid secp256k1 key', {
      cause: error,
    });
  }
}

/** `facilitator_unavailable`, without the RPC URL, which may hold an API key. */
function unavailable(what: string, error: unknown): TollwayError {
  const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
  return new TollwayError('facilitator_unavailable', `${what}: ${reason}`, { cause: error });
}

/**
 * Creates a facilitator on the EVM chain behind `rpcUrl`, built on `@x402/core`'s
 * `x402Facilitator` and `@x402/evm`'s schemes, settling with `privateKey`: `exact` (EIP-3009),
 * `upto` (Permit2 through the x402 upto proxy: its `/supported` names this key as the
 * `facilitatorAddress` payers bind their authorizations to) and `batch-settlement` (deposits,
 * claims, sweeps and refunds of payment channels; it advertises no receiver authorizer, so servers
 * sign claims and refunds with their own key). It simulates every settlement before broadcasting
 * it, and it never submits one `exact` authorization twice: a nonce that is being settled, or was
 * settled, by this facilitator is refused with `invalid_exact_evm_nonce_already_used` without
 * touching the chain, even for concurrent calls (the other schemes spend nonces on chain: a
 * second submission reverts in simulation).
 * Throws `invalid_config` for a bad key, URL or network, and `facilitator_unavailable` when the
 * RPC does not answer.
 *
 * @example
 * ```ts
 * const facilitator = await createSelfHostedFacilitator({
 *   rpcUrl: 'http://127.0.0.1:8545',
 *   privateKey: process.env.FACILITATOR_KEY ?? '',
 * });
 * const receipt = await facilitator.settle(payment, requirements);
 * ```
 */
export async function createSelfHostedFacilitator(
  options: SelfHostedFacilitatorOptions,
): Promise<SelfHostedFacilitator> {
  const account = toAccount(options.privateKey);
  if (!/^https?:\/\/\S+$/.test(options.rpcUrl)) {
    throw new TollwayError('invalid_config', 'the RPC URL must be an http or https URL');
  }
  const confirmationTimeoutMs = options.confirmationTimeoutMs ?? 60_000;
  // A settlement's send waits for its receipt on the node (./sync-send.ts), at most a couple of
  // seconds: past that, the scheme's own wait polls for it.
  const transport = withSyncSend(
    http(options.rpcUrl, { retryCount: 0, timeout: 30_000 }),
    Math.min(confirmationTimeoutMs, SYNC_SEND_WAIT_MS),
  );
  let chainId: number;
  try {
    chainId = await createPublicClient({ transport }).getChainId();
  } catch (error) {
    throw unavailable("cannot reach the chain's RPC", error);
  }
  const network: X402Network = `eip155:${chainId}`;
  if (options.network !== undefined && options.network !== network) {
    throw new TollwayError('invalid_config', `the RPC serves ${network}, not ${options.network}`);
  }
  const chain = defineChain({
    id: chainId,
    name: network,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [options.rpcUrl] } },
  });
  const client = createWalletClient({ account, chain, transport, pollingInterval: 250 }).extend(
    publicActions,
  );
  // x402's signer types are looser than viem's generic ones; each call passes its arguments on.
  const getCode = memoizeCode((args) => client.getCode(args));
  const signer = toFacilitatorEvmSigner(
    {
      address: account.address,
      readContract: (args) => client.readContract(args as ReadContractParameters),
      verifyTypedData: (args) =>
        client.verifyTypedData(args as Parameters<typeof client.verifyTypedData>[0]),
      writeContract: (args) =>
        retryStaleNonce(() => client.writeContract(args as WriteContractParameters)),
      sendTransaction: (args) => retryStaleNonce(() => client.sendTransaction(args)),
      waitForTransactionReceipt: (args) => client.waitForTransactionReceipt(args),
      getCode,
    },
    { confirmationTimeoutMs },
  );
  // Settle does not simulate the transfer again after verify did (x402's default): the
  // transaction's gas estimate fails for a transfer that would revert, so nothing is broadcast,
  // and a second simulation cost each payment a round trip to the chain.
  const inner = new x402Facilitator()
    .register(network, new ExactEvmScheme(signer))
    .register(network, new UptoEvmScheme(signer))
    .register(network, new BatchSettlementEvmScheme(signer));

  const claims = new Map<string, { state: ClaimState; forgetAt: number }>();
  let nextPrune = Date.now() + PRUNE_INTERVAL_MS;

  /** Forgets authorizations past their `validBefore`: those can no longer be settled by anyone. */
  function prune(): void {
    const now = Date.now();
    if (now < nextPrune) return;
    nextPrune = now + PRUNE_INTERVAL_MS;
    for (const [key, claim] of claims) if (claim.forgetAt <= now) claims.delete(key);
  }

  /**
   * What this facilitator will not check itself, as a reason; otherwise the claim key of the
   * authorization (network, token, payer, nonce) and the payer.
   */
  function precheck(
    payload: X402PaymentPayload,
    requirements: X402PaymentRequirements,
  ):
    | { ok: false; reason: string; message: string }
    | { ok: true; key: string; payer: string; forgetAt: number }
    | { ok: true; key: undefined } {
    if (payload.x402Version !== 2) {
      return { ok: false, reason: REASON.version, message: 'only x402 v2 payments are accepted' };
    }
    if (!SCHEMES.has(requirements.scheme) || payload.accepted.scheme !== requirements.scheme) {
      return {
        ok: false,
        reason: REASON.scheme,
        message: 'the schemes supported are exact, upto and batch-settlement',
      };
    }
    if (requirements.network !== network) {
      return { ok: false, reason: REASON.network, message: `this facilitator serves ${network}` };
    }
    if (requirements.scheme !== 'exact') return { ok: true, key: undefined };
    let authorization: ReturnType<typeof parseExactEvmPayload>['authorization'];
    try {
      authorization = parseExactEvmPayload(payload.payload).authorization;
    } catch (error) {
      return {
        ok: false,
        reason: REASON.payload,
        message: error instanceof Error ? error.message : 'not an EIP-3009 payload',
      };
    }
    const key = [network, requirements.asset, authorization.from, authorization.nonce]
      .join('/')
      .toLowerCase();
    const forgetAt = Number(authorization.validBefore) * 1000 + PRUNE_INTERVAL_MS;
    return { ok: true, key, payer: authorization.from, forgetAt };
  }

  /**
   * x402's EVM scheme reads an RPC failure as a bad payment (an unreadable payer reads as a bad
   * signature), so a refusal counts only while the RPC answers; otherwise the facilitator is down.
   */
  async function assertRpcAnswers(): Promise<void> {
    try {
      await client.getBlockNumber({ cacheTime: 0 });
    } catch (error) {
      throw unavailable("the chain's RPC does not answer", error);
    }
  }

  const wire = (payload: X402PaymentPayload, requirements: X402PaymentRequirements) => ({
    payload: paymentPayloadToWire(payload),
    requirements: requirementsToWire(requirements),
  });

  /** `inner.settle`, its answer checked; `facilitator_unavailable` when it throws. */
  async function settleInner(
    payload: X402PaymentPayload,
    requirements: X402PaymentRequirements,
  ): Promise<X402SettleResponse> {
    const w = wire(payload, requirements);
    try {
      return parseWith(
        settleResponseSchema,
        await inner.settle(w.payload, w.requirements),
        'facilitator settlement',
      );
    } catch (error) {
      throw unavailable('settlement failed', error);
    }
  }

  return {
    network,
    address: account.address,

    async verify(payload, requirements) {
      const check = precheck(payload, requirements);
      if (!check.ok) {
        return { isValid: false, invalidReason: check.reason, invalidMessage: check.message };
      }
      const claim = check.key === undefined ? undefined : claims.get(check.key);
      if (claim !== undefined && claim.state !== 'retryable') {
        return {
          isValid: false,
          invalidReason: REASON.nonceUsed,
          invalidMessage: 'this facilitator is settling or has settled this authorization',
          ...(check.key === undefined ? {} : { payer: check.payer }),
        };
      }
      const w = wire(payload, requirements);
      let verdict: X402VerifyResponse;
      try {
        verdict = parseWith(
          verifyResponseSchema,
          await inner.verify(w.payload, w.requirements),
          'facilitator verdict',
        );
      } catch (error) {
        throw unavailable('verification failed', error);
      }
      if (!verdict.isValid) await assertRpcAnswers();
      return verdict;
    },

    async settle(payload, requirements) {
      const check = precheck(payload, requirements);
      if (!check.ok) {
        return {
          success: false,
          errorReason: check.reason,
          errorMessage: check.message,
          transaction: '',
          network: requirements.network,
        };
      }
      if (check.key === undefined) {
        const outcome = await settleInner(payload, requirements);
        if (!outcome.success && outcome.transaction === '') await assertRpcAnswers();
        return outcome;
      }
      prune();
      const claim = claims.get(check.key);
      if (claim !== undefined && claim.state !== 'retryable') {
        return {
          success: false,
          errorReason: REASON.nonceUsed,
          errorMessage: 'this facilitator is settling or has settled this authorization',
          transaction: '',
          network,
          payer: check.payer,
        };
      }
      // Claimed before the first await: a concurrent settle of the same nonce sees it.
      claims.set(check.key, { state: 'settling', forgetAt: check.forgetAt });
      let outcome: X402SettleResponse;
      try {
        outcome = await settleInner(payload, requirements);
      } catch (error) {
        claims.set(check.key, { state: 'retryable', forgetAt: check.forgetAt });
        throw error;
      }
      if (outcome.errorReason === REASON.pending) {
        claims.set(check.key, { state: 'retryable', forgetAt: check.forgetAt });
      } else if (outcome.success || outcome.transaction !== '') {
        claims.set(check.key, { state: 'final', forgetAt: check.forgetAt });
      } else {
        try {
          await assertRpcAnswers();
        } catch (error) {
          claims.set(check.key, { state: 'retryable', forgetAt: check.forgetAt });
          throw error;
        }
        // Refused before anything was broadcast: nothing happened on chain.
        claims.delete(check.key);
      }
      return outcome;
    },

    async supported() {
      return parseWith(supportedResponseSchema, inner.getSupported(), 'facilitator kinds');
    },
  };
}
