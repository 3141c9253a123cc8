/**
 * One proxied request sent with undici's `dispatch` and a handler of the gateway's own, its
 * answer written to the Writable the caller opens once the status arrives, with back-pressure:
 * undici stops reading the upstream while that Writable is full and resumes on its 'drain'.
 * Hand-written rather than undici's `pool.stream`, whose handler adds an async resource, a signal
 * listener and a `finished` watcher to every request the gateway forwards.
 *
 * The pieces of body undici hands over in one read of the upstream socket (one per chunk of a
 * chunked answer: an LLM's event stream is dozens of small ones) are written to the Writable as
 * one buffer, in the microtask after that read: its stream machinery, a meter's reader and the
 * response's chunk framing then run once per read instead of once per piece. Nothing waits for
 * more bytes than the read brought, so a stream still passes through as it arrives.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Writable } from 'node:stream';
import { type Dispatcher, errors, util } from 'undici';

/**
 * Opens where the body of an answer with this status and these headers goes: a Writable, or a
 * promise of one (while the charge's commit is written). Meanwhile the body read is held here,
 * at most {@link HELD_LIMIT} bytes before undici stops reading the upstream.
 */
export type OpenUpstreamBody = (
  statusCode: number,
  headers: IncomingHttpHeaders,
) => Writable | Promise<Writable>;

/**
 * Schedules `work` as a microtask. Not `queueMicrotask`: on Node 20 that makes an `AsyncResource`
 * and a bound function per call.
 */
const RESOLVED = Promise.resolve();
function inMicrotask(work: () => void): void {
  void RESOLVED.then(work);
}

/** The body held while the Writable it goes to is not open yet, bytes, before reading pauses. */
const HELD_LIMIT = 64 * 1024;

/** A request under way: `cancel` aborts it (the client went away). */
export interface UpstreamStream {
  cancel(): void;
}

/**
 * Sends `options` through `dispatcher`; `open` is called once with the final status, and `done`
 * once with `null` when the body was written whole and its Writable finished, else the error.
 *
 * @example
 * ```ts
 * const sent = streamUpstream(pool, { path: '/', method: 'GET' }, (status, headers) => res, done);
 * ```
 */
export function streamUpstream(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  open: OpenUpstreamBody,
  done: (error: Error | null) => void,
): UpstreamStream {
  let abort: ((reason?: Error) => void) | undefined;
  let cancelled = false;
  let target: Writable | undefined;
  let reported = false;
  /** The pieces of body read and not yet written, and whether the Writable asked to wait. */
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let blocked = false;
  /** Set once the upstream's body ended, or broke off, before the Writable was open. */
  let complete = false;
  let failed: Error | undefined;
  let resumeReading: () => void = () => {};
  const flush = (): void => {
    if (pending.length === 0 || target === undefined) return;
    const chunk = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    blocked = !target.write(chunk);
  };
  const report = (error: Error | null): void => {
    if (reported) return;
    reported = true;
    done(error);
  };
  const fail = (body: Writable, error: Error): void => {
    body.destroy(error);
    abort?.();
    report(error);
  };
  // Three listeners rather than `finished()` (end-of-stream), which checks and listens for every
  // kind of stream: ~0.55 µs more per forwarded request, measured in one process.
  const attach = (body: Writable): void => {
    target = body;
    body.on('drain', () => {
      blocked = false;
      resumeReading();
    });
    body.on('finish', () => report(null));
    body.on('error', (error) => fail(body, error));
    body.on('close', () => {
      if (!body.writableFinished) fail(body, body.errored ?? new Error('the answer closed early'));
    });
  };
  const handler: Dispatcher.DispatchHandlers = {
    onConnect(abortRequest) {
      if (cancelled) abortRequest(new errors.RequestAbortedError());
      else abort = abortRequest;
    },
    onHeaders(statusCode, rawHeaders, resume) {
      if (statusCode < 200) return true;
      resumeReading = resume;
      const opened = open(statusCode, util.parseHeaders(rawHeaders) as IncomingHttpHeaders);
      if (!('then' in opened)) {
        attach(opened);
        return opened.writableNeedDrain !== true;
      }
      // Held until the commit is written; then what was read goes at once, with its end.
      blocked = true;
      opened.then(
        (body) => {
          attach(body);
          if (failed !== undefined) {
            body.destroy(failed);
            return;
          }
          blocked = false;
          flush();
          if (complete) body.end();
          else if (!blocked) resume();
        },
        (error: unknown) => {
          abort?.();
          report(error instanceof Error ? error : new Error(String(error)));
        },
      );
      return true;
    },
    onData(chunk) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (target === undefined) return pendingBytes < HELD_LIMIT;
      if (pending.length === 1) inMicrotask(flush);
      return !blocked;
    },
    onComplete() {
      if (target === undefined) {
        complete = true;
        return;
      }
      flush();
      target.end();
    },
    onError(error) {
      if (target !== undefined) target.destroy(error);
      else {
        failed = error;
        inMicrotask(() => report(error));
      }
    },
  };
  dispatcher.dispatch(options, handler);
  return {
    cancel() {
      cancelled = true;
      abort?.(new errors.RequestAbortedError());
    },
  };
}
