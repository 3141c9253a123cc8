/**
 * x402 v1 names its networks (`base`, `base-sepolia`, …) from a closed list; v2 uses CAIP-2 ids.
 * Tollway holds CAIP-2 ids only and translates at the v1 wire. v1 has no name for a local chain,
 * so `eip155:31337` cannot be offered or paid in v1.
 */
import { TollwayError } from '../errors.js';
import type { X402Network } from './types.js';

/** EVM chain ids of the v1 network names, as the x402 v1 SDKs define them. */
const EVM_CHAIN_IDS: Readonly<Record<string, number>> = {
  ethereum: 1,
  sepolia: 11155111,
  base: 8453,
  'base-sepolia': 84532,
  abstract: 2741,
  'abstract-testnet': 11124,
  avalanche: 43114,
  'avalanche-fuji': 43113,
  iotex: 4689,
  sei: 1329,
  'sei-testnet': 1328,
  polygon: 137,
  'polygon-amoy': 80002,
  peaq: 3338,
  story: 1514,
  educhain: 41923,
  'skale-base-sepolia': 324705682,
  megaeth: 4326,
  monad: 143,
  stable: 988,
  'stable-testnet': 2201,
  celo: 42220,
  flare: 14,
};

const V1_TO_CAIP2: ReadonlyMap<string, X402Network> = new Map([
  ...Object.entries(EVM_CHAIN_IDS).map(([name, id]): [string, X402Network] => [
    name,
    `eip155:${id}`,
  ]),
  ['solana', 'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp'],
  ['solana-devnet', 'solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1'],
]);

const CAIP2_TO_V1: ReadonlyMap<string, string> = new Map(
  [...V1_TO_CAIP2].map(([name, network]) => [network, name]),
);

/**
 * The CAIP-2 id of an x402 v1 network name. Throws `unsupported_network` for a name not in the v1
 * list.
 *
 * @example
 * ```ts
 * networkFromV1('base-sepolia'); // 'eip155:84532'
 * ```
 */
export function networkFromV1(name: string): X402Network {
  const network = V1_TO_CAIP2.get(name);
  if (network === undefined) {
    throw new TollwayError('unsupported_network', `unknown x402 v1 network "${name.slice(0, 40)}"`);
  }
  return network;
}

/**
 * The x402 v1 name of a CAIP-2 network. Throws `unsupported_network` when v1 has no name for it
 * (a local chain, for one).
 *
 * @example
 * ```ts
 * networkToV1('eip155:8453'); // 'base'
 * ```
 */
export function networkToV1(network: X402Network): string {
  const name = CAIP2_TO_V1.get(network);
  if (name === undefined) {
    throw new TollwayError('unsupported_network', `x402 v1 has no name for network ${network}`);
  }
  return name;
}
