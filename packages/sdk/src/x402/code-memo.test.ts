import { describe, expect, it } from 'vitest';
import { memoizeCode } from './code-memo.js';

const WALLET = '0x00000000000000000000000000000000000000aa';
const OTHER = '0x00000000000000000000000000000000000000bb';

/** A code reader that counts its reads and answers `code` (or fails when it is an Error). */
function reader(code: () => `0x${string}` | Error) {
  const reads: string[] = [];
  const read = async (args: { address: `0x${string}` }) => {
    reads.push(args.address);
    const answer = code();
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { read, reads };
}

describe('memoizeCode', () => {
  it('reads an address once within two seconds, case aside, and again after', async () => {
    let time = 0;
    const { read, reads } = reader(() => '0x');
    const getCode = memoizeCode(read, () => time);
    expect(await getCode({ address: WALLET })).toBe('0x');
    time = 1_999;
    expect(await getCode({ address: '0x00000000000000000000000000000000000000AA' })).toBe('0x');
    expect(reads).toEqual([WALLET]);
    time = 2_000;
    await getCode({ address: WALLET });
    expect(reads).toEqual([WALLET, WALLET]);
  });

  it('keeps one answer per address, and concurrent reads share one call', async () => {
    const { read, reads } = reader(() => '0x6000');
    const getCode = memoizeCode(read, () => 0);
    const answers = await Promise.all([
      getCode({ address: WALLET }),
      getCode({ address: WALLET }),
      getCode({ address: OTHER }),
    ]);
    expect(answers).toEqual(['0x6000', '0x6000', '0x6000']);
    expect(reads).toEqual([WALLET, OTHER]);
  });

  it('does not remember a failed read', async () => {
    let answer: `0x${string}` | Error = new Error('RPC down');
    const { read, reads } = reader(() => answer);
    const getCode = memoizeCode(read, () => 0);
    await expect(getCode({ address: WALLET })).rejects.toThrow('RPC down');
    answer = '0x6000';
    expect(await getCode({ address: WALLET })).toBe('0x6000');
    expect(reads).toEqual([WALLET, WALLET]);
  });

  it('forgets expired addresses as time goes on', async () => {
    let time = 0;
    const { read, reads } = reader(() => '0x');
    const getCode = memoizeCode(read, () => time);
    await getCode({ address: WALLET });
    time = 1_000;
    await getCode({ address: OTHER });
    time = 2_500;
    await getCode({ address: OTHER });
    await getCode({ address: WALLET });
    expect(reads).toEqual([WALLET, OTHER, WALLET]);
  });
});
