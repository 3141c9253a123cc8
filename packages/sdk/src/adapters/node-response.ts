/**
 * Writing the engine's answers to a Node `ServerResponse`, and reporting the outcome of a paid
 * request answered through one. Internal to the adapters (node, Express, Fastify) and the gateway.
 */
import type { ServerResponse } from 'node:http';
import { isPromiseLike } from '../internal/promise.js';
import { formatReceiptComment, isEventStream, streamTail } from '../server/stream-receipt.js';
import type {
  ChargeMeter,
  HeaderReader,
  PaywallCharge,
  PaywallFinal,
  PaywallResponse,
} from '../server/types.js';

/**
 * Writes a paywall answer (a 402, 401, 403, 429, 400, 503 or 500) as it is.
 *
 * @example
 * ```ts
 * if (decision.kind === 'respond') return writePaywallResponse(res, decision.response);
 * ```
 */
export function writePaywallResponse(res: ServerResponse, response: PaywallResponse): void {
  res.statusCode = response.status;
  for (const [name, value] of response.headers) res.appendHeader(name, value);
  res.end(response.body);
}

/** A call of the handler's, held while the commit runs: replayed, or dropped (its callback run). */
interface Held {
  method: 'writeHead' | 'write' | 'end' | 'flushHeaders';
  args: unknown[];
}

/** The headers set on `res` so far, as the engine reads headers. */
function responseHeaders(res: ServerResponse): HeaderReader {
  const get = (name: string): string | null => {
    const value = res.getHeader(name);
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : String(value);
  };
  return { get, has: (name) => res.hasHeader(name) };
}

/** The bytes a `write` / `end` call sends, if it sends any. */
function bytesOf(chunk: unknown, encoding: unknown): Uint8Array | undefined {
  if (typeof chunk === 'string') {
    return Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  }
  return chunk instanceof Uint8Array ? chunk : undefined;
}

/** The `Content-Type` among `writeHead`'s arguments (an object, or a flat list of names and values). */
function typeInHead(args: readonly unknown[]): string | undefined {
  const headers = args.find((arg) => typeof arg === 'object' && arg !== null);
  const pairs = Array.isArray(headers)
    ? headers.flatMap((name, i) => (i % 2 === 0 ? [[name, headers[i + 1]]] : []))
    : Object.entries(headers ?? {});
  const found = pairs.find(([name]) => String(name).toLowerCase() === 'content-type');
  return found === undefined ? undefined : String(found[1]);
}

/**
 * Feeds the body `res` sends to `meter`, and ends it when the response finishes (complete) or
 * closes before that (the client went away); an event stream is ended by the adapter once the
 * meter has ended, with its receipt as comment lines (stream-receipt.ts). A chunk the meter makes
 * wait (a session that needs a top-up) is held with every call after it, `write` answering false
 * until they went out (then `drain`); when the meter ends the answer instead, the response ends
 * there and the handler's later calls do nothing (`write` answers true, so that it finishes).
 */
function meterBody(res: ServerResponse, meter: ChargeMeter, onError: (error: unknown) => void) {
  const original = { write: res.write, end: res.end, writeHead: res.writeHead };
  // `writeHead`'s headers are not kept where `getHeader` reads: the type is noted as it passes.
  let headType: string | undefined;
  res.writeHead = ((...args: Parameters<ServerResponse['writeHead']>) => {
    headType = typeInHead(args);
    return original.writeHead.apply(res, args);
  }) as typeof res.writeHead;
  /** The last bytes sent, to tell whether the stream ended an event. */
  let tail: Uint8Array = new Uint8Array(0);
  const noteSent = (bytes: Uint8Array | undefined): void => {
    if (bytes !== undefined && bytes.length > 0) tail = streamTail(tail, bytes);
  };
  const bytesIn = (args: unknown[]) =>
    typeof args[0] === 'function' ? undefined : bytesOf(args[0], args[1]);
  const endWithReceipt = (args: unknown[]): void => {
    const bytes = bytesIn(args);
    if (bytes !== undefined && bytes.length > 0) send('write', [bytes]);
    const done = callbackOf(args);
    const finish = (comment: string | undefined): void => {
      const rest = comment === undefined ? [] : [comment];
      (original.end as (...args: unknown[]) => unknown).apply(res, done ? [...rest, done] : rest);
    };
    meter.end(true).then(
      (receipt) => finish(formatReceiptComment(receipt, tail)),
      (error: unknown) => {
        onError(error);
        finish(undefined);
      },
    );
  };
  const eventStream = (): boolean => {
    const type = res.getHeader('content-type');
    return isEventStream(type === undefined ? headType : String(type));
  };
  /** Every write and end of the body goes out here: an event stream's bytes are noted on the way. */
  const send = (method: 'write' | 'end', args: unknown[]): unknown => {
    if (eventStream()) {
      if (method === 'end') {
        endWithReceipt(args);
        return res;
      }
      noteSent(bytesIn(args));
    }
    return (original[method] as (...args: unknown[]) => unknown).apply(res, args);
  };
  const say = (bytes: Uint8Array): void => {
    send('write', [bytes]);
  };
  /** The handler's calls held while a chunk waits; undefined while the body flows. */
  let waiting: Array<{ method: 'write' | 'end'; args: unknown[] }> | undefined;
  let stopped = false;
  const heldAnswer = (method: 'write' | 'end'): unknown => (method === 'write' ? false : res);

  function pass(method: 'write' | 'end', args: unknown[]): unknown {
    if (stopped) {
      callbackOf(args)?.();
      return method === 'write' ? true : res;
    }
    if (waiting !== undefined) {
      waiting.push({ method, args });
      return heldAnswer(method);
    }
    const bytes = bytesIn(args);
    const wait = bytes !== undefined && bytes.length > 0 ? meter.write(bytes, say) : undefined;
    if (wait === undefined) return send(method, args);
    waiting = [];
    wait.then(
      (go) => resume(go, method, args),
      (error: unknown) => {
        onError(error);
        resume(false, method, args);
      },
    );
    return heldAnswer(method);
  }

  function resume(go: boolean, method: 'write' | 'end', args: unknown[]): void {
    const held = waiting ?? [];
    waiting = undefined;
    if (!go) {
      stopped = true;
      for (const call of held) callbackOf(call.args)?.();
      callbackOf(args)?.();
      send('end', []);
      // A handler waiting to write on goes on, and its calls do nothing.
      res.emit('drain');
      return;
    }
    send(method, args);
    for (const call of held) pass(call.method, call.args);
    if (waiting === undefined && !stopped) res.emit('drain');
  }

  res.write = ((...args: Parameters<ServerResponse['write']>) =>
    pass('write', args)) as typeof res.write;
  res.end = ((...args: Parameters<ServerResponse['end']>) => pass('end', args)) as typeof res.end;
  const ended = (complete: boolean) => meter.end(complete).catch(onError);
  res.once('finish', () => void ended(true));
  res.once('close', () => {
    if (!res.writableFinished) void ended(false);
  });
}

/** The callback among the trailing arguments of `write` / `end`, if any. */
function callbackOf(args: readonly unknown[]): (() => void) | undefined {
  const found = args.find((arg) => typeof arg === 'function');
  return found as (() => void) | undefined;
}

/**
 * Reports the outcome of a paid request answered through `res`: when the answer's headers are
 * about to leave (the first `writeHead`, `write`, `end` or `flushHeaders`), commits `charge` with
 * the status and adds the headers it gives; when the commit answers instead (a settlement failed),
 * sends that answer and drops the handler's. While an asynchronous commit (an x402 settlement)
 * runs, the handler's calls wait and are replayed in order, so a streamed answer is held only for
 * the settlement, never for its body. A response closed before its headers left releases the
 * charge. `onError` hears of a commit that threw (the response is then destroyed).
 *
 * @example
 * ```ts
 * if (decision.charge) reportOutcome(res, decision.charge, console.error);
 * handler(req, res);
 * ```
 */
export function reportOutcome(
  res: ServerResponse,
  charge: PaywallCharge,
  onError: (error: unknown) => void,
): void {
  const original = {
    writeHead: res.writeHead,
    write: res.write,
    end: res.end,
    flushHeaders: res.flushHeaders,
  };
  let committed = false;
  const held: Held[] = [];
  const onClose = (): void => {
    if (!committed) charge.release();
  };
  res.once('close', onClose);

  function restore(): void {
    res.writeHead = original.writeHead;
    res.write = original.write;
    res.end = original.end;
    res.flushHeaders = original.flushHeaders;
  }

  function apply(final: PaywallFinal): void {
    restore();
    if (final.kind === 'respond') {
      for (const name of res.getHeaderNames()) res.removeHeader(name);
      writePaywallResponse(res, final.response);
      // The handler goes on writing its dropped answer: its calls end here.
      res.write = ((...args: unknown[]) => {
        callbackOf(args)?.();
        return true;
      }) as typeof res.write;
      res.end = ((...args: unknown[]) => {
        callbackOf(args)?.();
        return res;
      }) as typeof res.end;
      for (const call of held) callbackOf(call.args)?.();
      return;
    }
    for (const [name, value] of final.headers) res.appendHeader(name, value);
    if (charge.meter !== undefined) meterBody(res, charge.meter, onError);
    for (const call of held) (res[call.method] as (...args: unknown[]) => unknown)(...call.args);
  }

  /** Commits with `status` on the handler's first call, then runs `call` (now or once settled). */
  function first(status: number, call: Held): void {
    committed = true;
    res.off('close', onClose);
    held.push(call);
    let final: ReturnType<PaywallCharge['commit']>;
    try {
      final = charge.commit(status, responseHeaders(res));
    } catch (error) {
      restore();
      onError(error);
      res.destroy();
      return;
    }
    if (!isPromiseLike(final)) {
      apply(final);
      return;
    }
    Promise.resolve(final).then(apply, (error: unknown) => {
      restore();
      onError(error);
      res.destroy();
    });
  }

  const statusOf = (): number => res.statusCode;

  function intercept(call: Held, status: () => number): void {
    if (committed) held.push(call);
    else first(status(), call);
  }

  res.writeHead = ((...args: Parameters<ServerResponse['writeHead']>) => {
    intercept({ method: 'writeHead', args }, () => args[0]);
    return res;
  }) as typeof res.writeHead;
  res.write = ((...args: Parameters<ServerResponse['write']>) => {
    intercept({ method: 'write', args }, statusOf);
    return true;
  }) as typeof res.write;
  res.end = ((...args: Parameters<ServerResponse['end']>) => {
    intercept({ method: 'end', args }, statusOf);
    return res;
  }) as typeof res.end;
  res.flushHeaders = () => {
    intercept({ method: 'flushHeaders', args: [] }, statusOf);
  };
}
