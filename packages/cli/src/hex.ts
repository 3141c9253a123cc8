import { createHash } from 'node:crypto';
import { TollwayError } from '@tollway/sdk';

/** Lower-case hex of `bytes`. */
export const bytesToHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

/** Decodes a hex command-line argument; throws `invalid_hex` naming the problem. */
export function hexToBytes(hex: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex))
    throw new TollwayError('invalid_hex', `not hex: ${hex.slice(0, 16)}…`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** SHA-256 of `bytes`, as hex. */
export const sha256Hex = (bytes: Uint8Array): string =>
  createHash('sha256').update(bytes).digest('hex');
