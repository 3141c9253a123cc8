/**
 * The self-hosted facilitator's transactions sent with `eth_sendRawTransactionSync` (EIP-7966),
 * which answers with the receipt once the transaction is in a block. x402's scheme sends a
 * settlement, then waits for its receipt: a send and at least one `eth_getTransactionReceipt`,
 * and on a chain with blocks, a poll every `pollingInterval` until one is found. Here the send
 * waits on the node, and the receipt it brings back answers the scheme's first receipt request:
 * one round trip, and no polling delay on top of the block time.
 *
 * It sits in the transport, under viem's `writeContract` (which still prepares, estimates gas,
 * signs and decodes errors as before), so what it changes is only how the signed bytes travel:
 * - the node took the transaction but stopped waiting (EIP-7966's error code 4), or no answer
 *   came within `waitMs`: the transaction's hash is answered as a plain send would, and the
 *   scheme polls for the receipt as before;
 * - the RPC does not know the method (JSON-RPC -32601 or -32004, an error naming the method as
 *   unknown or unsupported, or an HTTP error without a JSON-RPC answer): the same bytes go out
 *   with `eth_sendRawTransaction`, whose answer stands, and this transport sends plainly from
 *   then on;
 * - any other answer (a rejected transaction) or no answer (a network failure): thrown, as a plain
 *   send's would be.
 */
import {
  BaseError,
  HttpRequestError,
  isHash,
  keccak256,
  RpcRequestError,
  type Transport,
} from 'viem';

/** EIP-7966: the transaction was accepted but its receipt did not come in time. */
const RECEIPT_TIMEOUT_CODE = 4;

/** JSON-RPC's "method not found" and EIP-1474's "method not supported". */
const UNKNOWN_METHOD_CODES = new Set([-32601, -32004]);
const UNKNOWN_METHOD_MESSAGE = /method|not supported|unsupported|not available|does not exist/i;

/** Receipts waiting for the scheme to ask for them; a few, since it asks right away. */
const MAX_KEPT_RECEIPTS = 64;

type RawReceipt = { transactionHash: `0x${string}` };

/** The RPC's own answer under `error` (viem wraps it in an error class per code), if any. */
function answerOf(error: unknown): RpcRequestError | HttpRequestError | undefined {
  if (!(error instanceof BaseError)) return undefined;
  const answer = error.walk((e) => e instanceof RpcRequestError || e instanceof HttpRequestError);
  return answer instanceof RpcRequestError || answer instanceof HttpRequestError
    ? answer
    : undefined;
}

/** Whether the RPC's answer says that it cannot do `eth_sendRawTransactionSync` at all. */
function isUnknownMethod(answer: RpcRequestError | HttpRequestError): boolean {
  if (answer instanceof RpcRequestError) {
    return UNKNOWN_METHOD_CODES.has(answer.code) || UNKNOWN_METHOD_MESSAGE.test(answer.details);
  }
  return answer.status !== undefined;
}

/**
 * `transport`, with `eth_sendRawTransaction` sent as `eth_sendRawTransactionSync` (waiting at
 * most `waitMs` for its answer) and the receipt it brings back kept for the next
 * `eth_getTransactionReceipt` of its transaction.
 */
export function withSyncSend(transport: Transport, waitMs: number): Transport {
  return (options) => {
    const inner = transport(options);
    const receipts = new Map<string, RawReceipt>();
    let sync = true;

    function keep(receipt: RawReceipt): void {
      const oldest = receipts.keys().next();
      if (receipts.size >= MAX_KEPT_RECEIPTS && oldest.done !== true) receipts.delete(oldest.value);
      receipts.set(receipt.transactionHash.toLowerCase(), receipt);
    }

    async function send(serialized: `0x${string}`): Promise<`0x${string}`> {
      const hash = keccak256(serialized);
      const answer: Promise<RawReceipt> = inner.request({
        method: 'eth_sendRawTransactionSync',
        params: [serialized],
      });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), waitMs);
      });
      try {
        const receipt = await Promise.race([answer, late]);
        if (receipt === undefined) {
          answer.catch(() => {});
          return hash;
        }
        keep(receipt);
        return receipt.transactionHash;
      } catch (error) {
        const rpc = answerOf(error);
        if (rpc instanceof RpcRequestError && rpc.code === RECEIPT_TIMEOUT_CODE) {
          return typeof rpc.data === 'string' && isHash(rpc.data) ? rpc.data : hash;
        }
        if (rpc === undefined || !isUnknownMethod(rpc)) throw error;
        const sent: `0x${string}` = await inner.request({
          method: 'eth_sendRawTransaction',
          params: [serialized],
        });
        sync = false;
        return sent;
      } finally {
        clearTimeout(timer);
      }
    }

    async function request(
      args: { method: string; params?: unknown },
      requestOptions?: Parameters<typeof inner.request>[1],
    ): Promise<unknown> {
      const params = Array.isArray(args.params) ? args.params : [];
      if (args.method === 'eth_sendRawTransaction' && sync) {
        return send(params[0] as `0x${string}`);
      }
      if (args.method === 'eth_getTransactionReceipt' && receipts.size > 0) {
        const key = String(params[0]).toLowerCase();
        const receipt = receipts.get(key);
        if (receipt !== undefined) {
          receipts.delete(key);
          return receipt;
        }
      }
      return inner.request(args as Parameters<typeof inner.request>[0], requestOptions);
    }
    // The request function keeps viem's signature; its typing is generic over RPC schemas.
    return { ...inner, request: request as typeof inner.request };
  };
}
