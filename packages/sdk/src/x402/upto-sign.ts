/**
 * Signing an x402 `upto` payment: a Permit2 `PermitWitnessTransferFrom` for the offer's amount (the
 * most the server may settle), with the x402 upto proxy as spender and a witness naming the
 * recipient and the facilitator the offer names, which alone may settle it, once. The payer must
 * have approved Permit2 for the token on chain beforehand (once per token).
 */
import { hexToBigInt, toHex } from 'viem';
import type { PrivateKeyAccount } from 'viem/accounts';
import { TollwayError } from '../errors.js';
import { X402_CONTRACTS } from './evm-contracts.js';
import type { UptoEvmPayload } from './upto-evm.js';

const permitWitnessTypes = {
  PermitWitnessTransferFrom: [
    { name: 'permitted', type: 'TokenPermissions' },
    { name: 'spender', type: 'address' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
    { name: 'witness', type: 'Witness' },
  ],
  TokenPermissions: [
    { name: 'token', type: 'address' },
    { name: 'amount', type: 'uint256' },
  ],
  Witness: [
    { name: 'to', type: 'address' },
    { name: 'facilitator', type: 'address' },
    { name: 'validAfter', type: 'uint256' },
  ],
} as const;

/** What an `upto` payment authorises: of `token` on `chainId`, at most `amount` to `payTo`. */
export interface UptoTerms {
  chainId: number;
  token: `0x${string}`;
  amount: bigint;
  payTo: `0x${string}`;
  /** The offer's `extra.facilitatorAddress`. */
  facilitator: unknown;
  /** Unix seconds before which it must be settled. */
  deadline: bigint;
}

/**
 * Signs an `upto` payment with `account`: the payload (wire form: decimal strings) and Permit2's
 * random 256-bit nonce. Throws `invalid_x402_payload` when the offer names no facilitator.
 */
export async function signUpto(
  account: PrivateKeyAccount,
  terms: UptoTerms,
): Promise<{ payload: Record<string, unknown>; nonce: bigint }> {
  const { facilitator } = terms;
  if (typeof facilitator !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(facilitator)) {
    throw new TollwayError(
      'invalid_x402_payload',
      'the upto offer names no facilitator (extra.facilitatorAddress)',
    );
  }
  const nonce = hexToBigInt(toHex(crypto.getRandomValues(new Uint8Array(32))));
  const authorization: UptoEvmPayload['permit2Authorization'] = {
    from: account.address,
    permitted: { token: terms.token, amount: terms.amount },
    spender: X402_CONTRACTS.uptoProxy,
    nonce,
    deadline: terms.deadline,
    witness: { to: terms.payTo, facilitator: facilitator as `0x${string}`, validAfter: 0n },
  };
  const signature = await account.signTypedData({
    domain: { name: 'Permit2', chainId: terms.chainId, verifyingContract: X402_CONTRACTS.permit2 },
    types: permitWitnessTypes,
    primaryType: 'PermitWitnessTransferFrom',
    message: authorization,
  });
  return {
    nonce,
    payload: {
      signature,
      permit2Authorization: {
        ...authorization,
        permitted: { token: terms.token, amount: terms.amount.toString() },
        nonce: nonce.toString(),
        deadline: terms.deadline.toString(),
        witness: { ...authorization.witness, validAfter: '0' },
      },
    },
  };
}
