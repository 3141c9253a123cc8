/**
 * The gateway's side of "a payment follows the outcome": when the upstream's status arrives, the
 * request's charge is committed with it before anything reaches the client. An answer that is
 * charged streams on with the receipt headers; one whose settlement failed (x402) is replaced by
 * the paywall's 402, and the upstream body is dropped. While an asynchronous commit runs, the
 * upstream body waits in a bounded buffer (back-pressure holds the rest upstream).
 */
import type { ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { writePaywallResponse } from '@tollway/sdk/node';
import type { HeaderReader, PaywallCharge, PaywallFinal } from '@tollway/sdk/server';

/** The response headers of the answer, with the commit's headers added. */
export type HeadersWith = (
  extra: ReadonlyArray<[string, string]>,
) => Record<string, string | string[]>;

/** Writes the head of an answer that passed, with the commit's `headers` added; gives where its body goes. */
export type OpenBody = (headers: ReadonlyArray<[string, string]>) => Writable;

/** Options of {@link openAnswer}. */
export interface OpenAnswerOptions {
  /** The answer's headers, for a meter to read. */
  answerHeaders?: HeaderReader;
  /** Opens the body of an answer that passed. Default: its head is written and the body goes to `res`. */
  openBody?: OpenBody;
}

/**
 * Where the upstream body goes once its `status` is known: `res` (its head written), or a sink
 * when the paywall's answer replaced it (`onReplaced` is called then, so the caller does not
 * treat the end as a failure); while an asynchronous commit is written, a promise of one of
 * those (the caller holds the body meanwhile: upstream-stream.ts).
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
  options: OpenAnswerOptions = {},
): Writable | Promise<Writable> {
  const openBody =
    options.openBody ??
    ((headers) => {
      res.writeHead(status, headersWith(headers));
      return res;
    });
  if (charge === undefined) return openBody([]);
  const final = charge.commit(status, options.answerHeaders);
  if (!('then' in final)) return answerAfter(res, final, openBody, onReplaced);
  return final.then(
    (settled) => answerAfter(res, settled, openBody, onReplaced),
    (error: unknown) => {
      onReplaced();
      const failure = error instanceof Error ? error : new Error(String(error));
      res.destroy(failure);
      throw failure;
    },
  );
}

function answerAfter(
  res: ServerResponse,
  final: PaywallFinal,
  openBody: OpenBody,
  onReplaced: () => void,
): Writable {
  if (final.kind === 'pass') return openBody(final.headers);
  onReplaced();
  writePaywallResponse(res, final.response);
  return new Writable({ write: (_chunk, _encoding, done) => done() });
}
