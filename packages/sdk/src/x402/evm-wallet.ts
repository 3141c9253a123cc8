/**
 * An EVM wallet for x402: it signs EIP-3009 `TransferWithAuthorization` messages for `exact` offers
 * (v2 `PAYMENT-SIGNATURE`, v1 `X-PAYMENT`) and Permit2 authorisations for v2 `upto` offers (see
 * ./upto-sign.ts; the most the server may settle counts as spent) with a local key, and pays only assets and networks it
 * was told to: there is no default list, so every token (a local test token too) is allowed
 * explicitly. Signing moves no money; the server's facilitator settles, paying the gas. Given an
 * RPC URL, it pays `batch-settlement` channels too (./batch-payer.ts).
 */
import { type Hex, toHex } from 'viem';
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import type { X402Offer } from '../client/offers.js';
import { TollwayError } from '../errors.js';
import { type BatchPayer, createBatchPayer } from './batch-payer.js';
import { X402_HEADERS } from './headers.js';
import type { X402Network } from './types.js';
import { signUpto } from './upto-sign.js';
import { formatXPaymentHeader } from './v1.js';
import { networkFromV1 } from './v1-networks.js';
import { encodeBase64Json } from './wire.js';

/** Options of {@link createEvmWallet}. */
export interface EvmWalletOptions {
  /** 32 bytes of hex, `0x` optional. */
  privateKey: string;
  /** The tokens this wallet pays, by CAIP-2 network and contract address. */
  allowedAssets: ReadonlyArray<{ network: X402Network; address: string }>;
  /** The networks this wallet pays on. Default: the networks of `allowedAssets`. */
  allowedNetworks?: readonly X402Network[];
  /**
   * A JSON-RPC URL of the chain the wallet pays on. With it, the wallet pays `batch-settlement`
   * offers too (./batch-payer.ts): it reads the channel contract to rebuild its record of a
   * channel it has no record of, and to check what a server says its channel drew.
   */
  rpcUrl?: string;
}

/** A signed x402 payment: the header to retry the request with, and what it pays. */
export interface SignedX402Payment {
  header: { name: string; value: string };
  /** The EIP-3009 nonce, or the Permit2 one of `upto` (32 bytes of hex): the payment's reference. */
  nonce: Hex;
  /** Token base units. */
  amount: bigint;
  /** `<network>/erc20:<address>`. */
  unit: string;
  /** Unix seconds after which the authorization can no longer be settled. */
  validBefore: bigint;
}

/** An x402 wallet; see {@link createEvmWallet}. */
export interface EvmWallet {
  /** The payer address. */
  readonly address: `0x${string}`;
  /** Why this wallet will not pay `offer`, or undefined when it will. */
  refusal(offer: X402Offer): string | undefined;
  /** Pays `batch-settlement` offers; set when the wallet was given an `rpcUrl`. */
  readonly batch?: BatchPayer;
  /**
   * Signs a payment of `offer`. Throws `capability_unsupported` for an offer {@link refusal}
   * refuses, `invalid_x402_payload` for one without the token's EIP-712 `name` and `version`.
   */
  sign(offer: X402Offer, now?: number): Promise<SignedX402Payment>;
}

const transferTypes = {
  TransferWithAuthorization: [
    { name: 'from', type: 'address' },
    { name: 'to', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'validAfter', type: 'uint256' },
    { name: 'validBefore', type: 'uint256' },
    { name: 'nonce', type: 'bytes32' },
  ],
} as const;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
/** The schemes a wallet pays on x402 v2 besides `exact` (v1 knows only `exact`). */
const V2_SCHEMES: readonly string[] = ['exact', 'upto'];
const DEFAULT_TIMEOUT_SECONDS = 60;

function toAccount(privateKey: string): PrivateKeyAccount {
  const hex = privateKey.startsWith('0x') ? privateKey : `0x${privateKey}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) {
    throw new TollwayError('invalid_config', 'an EVM private key must be 32 bytes of hex');
  }
  try {
    return privateKeyToAccount(hex as Hex);
  } catch (cause) {
    throw new TollwayError('invalid_config', 'not a valid secp256k1 private key', { cause });
  }
}

/** Why a `batch-settlement` offer cannot make a channel: it names no receiver authorizer. */
function batchRefusal(offer: X402Offer): string | undefined {
  const extra = offer.requirement.extra;
  const authorizer =
    typeof extra === 'object' && extra !== null ? Reflect.get(extra, 'receiverAuthorizer') : '';
  if (typeof authorizer !== 'string' || !ADDRESS.test(authorizer) || /^0x0{40}$/.test(authorizer)) {
    return 'the batch-settlement offer names no receiver authorizer address';
  }
  return undefined;
}

/** The CAIP-2 network of an offer (v1 offers name theirs), or undefined when unknown. */
function networkOf(offer: X402Offer): X402Network | undefined {
  if (offer.x402Version === 2) return offer.network as X402Network;
  try {
    return networkFromV1(offer.network);
  } catch {
    return undefined;
  }
}

/**
 * Creates an EVM wallet that pays x402 `exact` offers with EIP-3009 authorizations, `upto` offers
 * with Permit2, and — given `rpcUrl` — `batch-settlement` offers through its `batch`. Throws
 * `invalid_config` for a malformed key, address or network.
 *
 * @example
 * ```ts
 * const wallet = createEvmWallet({
 *   privateKey: process.env.EVM_KEY ?? '',
 *   allowedAssets: [{ network: 'eip155:8453', address: '0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913' }],
 * });
 * const { header } = await wallet.sign(offer);
 * await fetch(url, { headers: { [header.name]: header.value } });
 * ```
 */
export function createEvmWallet(options: EvmWalletOptions): EvmWallet {
  const account = toAccount(options.privateKey);
  for (const asset of options.allowedAssets) {
    if (!ADDRESS.test(asset.address) || !/^eip155:[0-9]{1,20}$/.test(asset.network)) {
      throw new TollwayError(
        'invalid_config',
        `not an EVM asset: ${asset.network} ${asset.address}`,
      );
    }
  }
  const assets = new Set(
    options.allowedAssets.map((asset) => `${asset.network}/${asset.address.toLowerCase()}`),
  );
  const networks = new Set<string>(
    options.allowedNetworks ?? options.allowedAssets.map((asset) => asset.network),
  );

  const batch =
    options.rpcUrl === undefined ? undefined : createBatchPayer(account, options.rpcUrl);

  function refusal(offer: X402Offer): string | undefined {
    if (offer.scheme === 'batch-settlement' && batch === undefined) {
      return 'the batch-settlement scheme needs the wallet to have an rpcUrl';
    }
    const schemes = batch === undefined ? V2_SCHEMES : [...V2_SCHEMES, 'batch-settlement'];
    if (offer.scheme !== 'exact' && (!schemes.includes(offer.scheme) || offer.x402Version !== 2)) {
      return `the ${offer.scheme} scheme is not supported`;
    }
    const network = networkOf(offer);
    if (network === undefined || !network.startsWith('eip155:')) {
      return `${offer.network} is not an EVM network this wallet knows`;
    }
    if (!networks.has(network)) return `${network} is not an allowed network`;
    if (!assets.has(`${network}/${offer.asset.toLowerCase()}`)) {
      return `${offer.asset} on ${network} is not an allowed asset`;
    }
    if (!ADDRESS.test(offer.payTo)) return `payTo ${offer.payTo.slice(0, 60)} is not an address`;
    if (offer.scheme === 'batch-settlement') return batchRefusal(offer);
    return undefined;
  }

  return {
    address: account.address,
    refusal,
    ...(batch === undefined ? {} : { batch }),
    async sign(offer, now = Date.now()) {
      const refused = refusal(offer);
      if (refused !== undefined) throw new TollwayError('capability_unsupported', refused);
      if (offer.scheme === 'batch-settlement') {
        throw new TollwayError(
          'capability_unsupported',
          'batch-settlement is paid through `batch`',
        );
      }
      const network = networkOf(offer) as X402Network;
      const extra = offer.requirement.extra;
      const name =
        typeof extra === 'object' && extra !== null ? Reflect.get(extra, 'name') : undefined;
      const version =
        typeof extra === 'object' && extra !== null ? Reflect.get(extra, 'version') : undefined;
      if (typeof name !== 'string' || typeof version !== 'string') {
        throw new TollwayError(
          'invalid_x402_payload',
          'the offer lacks the token EIP-712 domain (extra.name, extra.version)',
        );
      }
      const validBefore =
        BigInt(Math.floor(now / 1000)) + BigInt(offer.maxTimeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);
      const unit = `${network}/erc20:${offer.asset.toLowerCase()}`;
      const chainId = Number(network.slice('eip155:'.length));
      if (offer.scheme === 'upto') {
        const upto = await signUpto(account, {
          chainId,
          token: offer.asset as `0x${string}`,
          amount: offer.amount,
          payTo: offer.payTo as `0x${string}`,
          facilitator: Reflect.get(extra as object, 'facilitatorAddress'),
          deadline: validBefore,
        });
        const value = encodeBase64Json(
          { x402Version: 2, accepted: offer.requirement, payload: upto.payload },
          X402_HEADERS.paymentSignature,
        );
        return {
          header: { name: X402_HEADERS.paymentSignature, value },
          nonce: toHex(upto.nonce, { size: 32 }),
          amount: offer.amount,
          unit,
          validBefore,
        };
      }
      const nonce = toHex(crypto.getRandomValues(new Uint8Array(32)));
      const authorization = {
        from: account.address,
        to: offer.payTo as `0x${string}`,
        value: offer.amount,
        validAfter: 0n,
        validBefore,
        nonce,
      };
      const signature = await account.signTypedData({
        domain: {
          name,
          version,
          chainId,
          verifyingContract: offer.asset as `0x${string}`,
        },
        types: transferTypes,
        primaryType: 'TransferWithAuthorization',
        message: authorization,
      });
      const payload = {
        signature,
        authorization: {
          ...authorization,
          value: offer.amount.toString(),
          validAfter: '0',
          validBefore: validBefore.toString(),
        },
      };
      const header =
        offer.x402Version === 2
          ? {
              name: X402_HEADERS.paymentSignature,
              // The requirement is echoed exactly as received: servers compare it field by field.
              value: encodeBase64Json(
                { x402Version: 2, accepted: offer.requirement, payload },
                X402_HEADERS.paymentSignature,
              ),
            }
          : {
              name: X402_HEADERS.paymentV1,
              value: formatXPaymentHeader({ x402Version: 1, scheme: 'exact', network, payload }),
            };
      return { header, nonce, amount: offer.amount, unit, validBefore };
    },
  };
}
