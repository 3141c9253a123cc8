/**
 * The gateway's side of "a payment follows the outcome": when the upstream's status arrives, the
 * request's charge is committed with it before anything reaches the client. An answer that is
 * charged streams on with the receipt headers; one whose settlement failed (x402) is replaced by
 * the paywall's 402, and the upstream body is dropped. While an asynchronous commit runs, the
 * upstream body waits in a bounded buffer (back-pressure holds the rest upstream).
 */
import type { ServerResponse } from 'node:http';
import { PassThrough, Writable } from 'node:stream';
import { writePaywallResponse } from '@tollway/sdk/node';
import type { PaywallCharge, PaywallFinal } from '@tollway/sdk/server';

/** The response headers of the answer, with the commit's headers added. */
export type HeadersWith = (
  extra: ReadonlyArray<[string, string]>,
) => Record<string, string | string[]>;

/**
 * Where the upstream body goes once its `status` is known: `res` (its head written), a buffer
 * that feeds `res` once an asynchronous commit passes, or a sink when the paywall's answer
 * replaced it (`onReplaced` is called then, so the caller does not treat the end as a failure).
 *
 * @example
 * ```ts
 * return openAnswer(res, charge, statusCode, (extra) => downstreamHeaders(headers, extra), () => {
 *   replaced = true;
 * });
 * ```
 */
export function openAnswer(
  res: ServerResponse,
  charge: PaywallCharge | undefined,
  status: number,
  headersWith: HeadersWith,
  onReplaced: () => void,
): Writable {
  if (charge === undefined) {
    res.writeHead(status, headersWith([]));
    return res;
  }
  const final = charge.commit(status);
  if (!('then' in final)) return answerAfter(res, final, status, headersWith, onReplaced);
  const held = new PassThrough();
  final.then(
    (settled) => {
      const target = answerAfter(res, settled, status, headersWith, onReplaced);
      if (target === res) held.pipe(res);
      else held.destroy();
    },
    (error: unknown) => {
      onReplaced();
      held.destroy();
      res.destroy(error instanceof Error ? error : new Error(String(error)));
    },
  );
  return held;
}

function answerAfter(
  res: ServerResponse,
  final: PaywallFinal,
  status: number,
  headersWith: HeadersWith,
  onReplaced: () => void,
): Writable {
  if (final.kind === 'pass') {
    res.writeHead(status, headersWith(final.headers));
    return res;
  }
  onReplaced();
  writePaywallResponse(res, final.response);
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}
