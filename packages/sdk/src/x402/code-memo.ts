/**
 * The self-hosted facilitator's `eth_getCode`, remembered for a moment. x402's EVM schemes read the
 * payer's code to tell a smart wallet from a plain key twice per check (classifying an ERC-6492
 * signature, then choosing ECDSA or ERC-1271), and settle checks the payment again: four round
 * trips to the chain for one paid request, each with the same answer. The memo makes them one.
 *
 * The chain stays the authority: what the code decides is only which off-chain signature check
 * runs first. The transfer itself is simulated in verify and gas-estimated before it is
 * broadcast, both on the chain's current state, so a code that changed within the memo's life
 * (a wallet deployed, an EIP-7702 delegation) can make a check refuse a payment, never move money
 * the chain would not.
 */

/** How long a read code is reused: about one block of a fast L2. */
const CODE_TTL_MS = 2_000;

/** Reads the code at an address in the latest block (`client.getCode`); `undefined` for none. */
type ReadCode = (args: { address: `0x${string}` }) => Promise<`0x${string}` | undefined>;

/**
 * `read`, its answers remembered per address for {@link CODE_TTL_MS} (concurrent reads of one
 * address share a call). A failed read is not remembered.
 */
export function memoizeCode(read: ReadCode, now: () => number = Date.now): ReadCode {
  // Insertion order is expiry order (one TTL for all), so the expired entries are at the front.
  const memo = new Map<string, { code: Promise<`0x${string}` | undefined>; expiresAt: number }>();
  return (args) => {
    const time = now();
    for (const [key, entry] of memo) {
      if (entry.expiresAt > time) break;
      memo.delete(key);
    }
    const key = args.address.toLowerCase();
    const known = memo.get(key);
    if (known !== undefined) return known.code;
    const code = read({ address: args.address });
    memo.set(key, { code, expiresAt: time + CODE_TTL_MS });
    code.catch(() => {
      if (memo.get(key)?.code === code) memo.delete(key);
    });
    return code;
  };
}
