import { BaseError, NonceTooLowError, TransactionExecutionError } from 'viem';
import { describe, expect, it } from 'vitest';
import { retryStaleNonce } from './stale-nonce.js';

/** A send refused by the node as viem reports it: the node's words in the cause's details. */
function refused(nodeMessage: string): BaseError {
  const cause = new NonceTooLowError({
    cause: new BaseError('RPC Request failed.', { details: nodeMessage }),
  });
  return new TransactionExecutionError(cause, { account: null, chain: undefined } as never);
}

/** A send failing `failures` times with `error`, then answering 'sent'; counts its calls. */
function sendFailing(failures: number, error: Error) {
  const send = async () => {
    send.calls++;
    if (send.calls <= failures) throw error;
    return 'sent';
  };
  send.calls = 0;
  return send;
}

describe('retryStaleNonce', () => {
  it('sends again a send the node refused for a stale nonce', async () => {
    const send = sendFailing(2, refused('nonce too low'));
    expect(await retryStaleNonce(send)).toBe('sent');
    expect(send.calls).toBe(3);
  });

  it('does not send again what the node already has, nor after other failures', async () => {
    const known = sendFailing(1, refused('already known'));
    await expect(retryStaleNonce(known)).rejects.toThrow();
    expect(known.calls).toBe(1);
    const reverted = sendFailing(1, new BaseError('execution reverted'));
    await expect(retryStaleNonce(reverted)).rejects.toThrow('execution reverted');
    expect(reverted.calls).toBe(1);
  });

  it('gives up after a few stale nonces in a row', async () => {
    const send = sendFailing(100, refused('nonce too low'));
    await expect(retryStaleNonce(send)).rejects.toThrow();
    expect(send.calls).toBe(6);
  });
});
