/**
 * The body of a metered answer (an LLM call drawing on a prepaid balance): every chunk the
 * upstream sends is fed to the charge's meter as it passes, and the meter is ended once the answer
 * is over — complete when the upstream finished it, not complete when the upstream broke off a
 * body under way or the client went away from one (the engine then charges the usage seen, else
 * what was held). Where the receipt goes:
 *
 * - A JSON answer (`application/json`) of up to {@link METERED_JSON_LIMIT} is held until it ended,
 *   so that its head carries the exact `Tollway-Charged` and `Tollway-Remaining`. If it never
 *   reaches the client (the upstream broke off, the client went away), nothing is charged: the
 *   proxy releases the charge, as for any answer whose head was not sent.
 * - A larger answer, or one of another type, streams at once with `Tollway-Reserved` only.
 * - An event stream (`text/event-stream`) streams at once and ends with the receipt as SSE comment
 *   lines (`: tollway-charged 2100 msat`), which event-stream parsers skip; the usage-only chunk
 *   the gateway asked for on the client's behalf is dropped on the way (usage-chunk-filter.ts).
 *   The bytes written in the tick the upstream's body ended wait in the socket for the receipt,
 *   and both leave in one write.
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import {
  type ChargeMeter,
  formatReceiptComment,
  type HeaderReader,
  type PaywallCharge,
  streamTail,
} from '@tollway/sdk/server';
import { type HeadersWith, openAnswer } from './outcome.js';
import { createUsageChunkFilter } from './usage-chunk-filter.js';

/** The largest JSON answer held back so that its head can carry the exact charge: 1 MiB. */
const METERED_JSON_LIMIT = 1024 * 1024;

/** How the answer to one metered call is read; see {@link openMeteredAnswer}. */
export interface MeteredCall {
  /** The gateway asked for stream usage itself: the usage-only chunk is not passed on. */
  dropsUsageChunk: boolean;
  /** Told what the call was charged, msat, once it was. */
  onCharged(chargedMsat: bigint): void;
  /** Told of a meter that failed to end (the charge then stays held until it expires). */
  onError(error: unknown): void;
}

/** One metered answer arriving from upstream. */
export interface MeteredAnswer {
  res: ServerResponse;
  /** The request's charge, with its meter. */
  charge: PaywallCharge & { meter: ChargeMeter };
  status: number;
  /** The upstream's response headers. */
  headers: IncomingHttpHeaders;
  headersWith: HeadersWith;
  onReplaced: () => void;
  /** Answers with a status below this are charged, so metered (the route's `chargeBelow`). */
  chargeBelow: number;
  call: MeteredCall;
}

const RECEIPT_CHARGED = 'tollway-charged';

function headerReader(headers: IncomingHttpHeaders): HeaderReader {
  const get = (name: string): string | null => {
    const value = headers[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  };
  return { get, has: (name) => get(name) !== null };
}

/** The msat a receipt says were charged (`Tollway-Charged: 2100 msat`), or 0. */
function chargedOf(receipt: ReadonlyArray<[string, string]>): bigint {
  const value = receipt.find(([name]) => name.toLowerCase() === RECEIPT_CHARGED)?.[1];
  const match = /^(\d+) msat$/.exec(value ?? '');
  return match === null ? 0n : BigInt(match[1] ?? '0');
}

/**
 * Opens the answer to a metered call: commits the charge with the upstream's status (as
 * {@link openAnswer}) and gives where the upstream body goes.
 *
 * @example
 * ```ts
 * return openMeteredAnswer({ res, charge, status, headers, headersWith, onReplaced, chargeBelow: 400, call });
 * ```
 */
export function openMeteredAnswer(answer: MeteredAnswer) {
  const { res, status } = answer;
  return openAnswer(res, answer.charge, status, answer.headersWith, answer.onReplaced, {
    answerHeaders: headerReader(answer.headers),
    openBody: (extra) => {
      if (status < answer.chargeBelow) return meteredBody(answer, extra);
      res.writeHead(status, answer.headersWith(extra));
      return res;
    },
  });
}

/** The body of a charged answer: see the module comment. */
function meteredBody(answer: MeteredAnswer, commitHeaders: ReadonlyArray<[string, string]>) {
  const { res, status, headersWith, call } = answer;
  const { meter } = answer.charge;
  const type = String(answer.headers['content-type'] ?? '').toLowerCase();
  const stream = type.startsWith('text/event-stream');
  const length = Number(answer.headers['content-length'] ?? Number.NaN);
  let holding = type.startsWith('application/json') && !(length > METERED_JSON_LIMIT);
  const filter = stream && call.dropsUsageChunk ? createUsageChunkFilter() : undefined;
  const held: Buffer[] = [];
  let heldBytes = 0;
  /** The last bytes written, enough to see whether the stream ended at an event's end. */
  let tail: Uint8Array = new Uint8Array(0);
  let ended = false;

  const charged = (receipt: Array<[string, string]>) => {
    call.onCharged(chargedOf(receipt));
    return receipt;
  };
  const send = (chunk: Buffer, done: (error?: Error | null) => void): void => {
    if (chunk.length === 0) {
      done();
      return;
    }
    if (stream) tail = streamTail(tail, chunk);
    if (res.write(chunk)) done();
    else res.once('drain', () => done());
  };
  const release = (): void => {
    holding = false;
    res.writeHead(status, headersWith(commitHeaders));
    for (const chunk of held.splice(0)) res.write(chunk);
  };
  if (!holding) res.writeHead(status, headersWith(commitHeaders));

  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      meter.write(chunk);
      if (holding) {
        held.push(chunk);
        heldBytes += chunk.length;
        if (heldBytes <= METERED_JSON_LIMIT) return done();
        release();
        return done();
      }
      send(filter === undefined ? chunk : filter.write(chunk), done);
    },
    final(done) {
      ended = true;
      // The answer's last bytes wait in the socket until the receipt follows them: both leave in
      // one write (`res.end` uncorks), not two.
      res.cork();
      const rest = filter?.end();
      if (rest !== undefined && rest.length > 0) send(rest, () => {});
      meter.end(true).then(
        (receipt) => {
          charged(receipt);
          if (holding) {
            const body = Buffer.concat(held, heldBytes);
            const head = headersWith([...commitHeaders, ...receipt]);
            head['content-length'] = String(body.length);
            res.writeHead(status, head);
            res.end(body);
          } else {
            res.end(stream ? formatReceiptComment(receipt, tail) : undefined);
          }
          done();
        },
        (error: unknown) => {
          res.uncork();
          call.onError(error);
          done(error instanceof Error ? error : new Error(String(error)));
        },
      );
    },
    destroy(error, done) {
      // An answer whose head was never sent is released by the proxy; one under way is charged.
      if (!ended && res.headersSent) {
        ended = true;
        meter.end(false).then(charged, call.onError);
      }
      done(error);
    },
  });
}
