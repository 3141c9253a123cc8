/**
 * What a paid answer says it cost, as Tollway servers tell it: the `Tollway-Charged`,
 * `Tollway-Remaining` and `Tollway-Reserved` headers, and — on a metered event stream, whose cost
 * is known only once it ends — SSE comment lines at the end (`: tollway-charged 2100 msat`,
 * `: tollway-remaining 97900 msat`, and how an x402 `upto` payment settled after the body:
 * `: payment-response eyJ…`), which event-stream parsers skip.
 *
 * @internal
 */

/** An amount of a receipt: `5000 msat`, `1 uses`, `10000 eip155:8453/erc20:0x…`. */
export interface ReceiptAmount {
  amount: bigint;
  /** `msat`, `uses`, an x402 token unit; `''` for the bare `0` of "nothing charged". */
  unit: string;
}

/** What the headers of an answer say it cost. */
export interface Receipt {
  /** What the call was charged; `amount` 0 when nothing (the reservation was released). */
  charged?: ReceiptAmount;
  /** What the credential has left. */
  remaining?: ReceiptAmount;
  /** On a metered answer: what is held for it, msat (its cost comes at its end). */
  reservedMsat?: bigint;
  /** At a metered event stream's end: the x402 `PAYMENT-RESPONSE` of a payment settled after it. */
  paymentResponse?: string;
}

const AMOUNT = /^\s*(0|[1-9][0-9]{0,30})(?:\s+(\S+))?\s*$/;

/**
 * The amount of a receipt header. A payment that bought a balance lists two, its purchase then
 * this call's draw on what it bought (`50000 eip155:…/erc20:0x…, 360 msat`): the call was
 * charged the last.
 */
function parseCharged(value: string | null): ReceiptAmount | undefined {
  if (value === null) return undefined;
  const amounts = value.split(',').map(parseAmount);
  if (amounts.length > 2 || amounts.some((amount) => amount === undefined)) return undefined;
  return amounts[amounts.length - 1];
}

function parseAmount(value: string | null): ReceiptAmount | undefined {
  if (value === null) return undefined;
  const match = AMOUNT.exec(value);
  if (match === null) return undefined;
  const unit = match[2] ?? '';
  if (unit === '' && match[1] !== '0') return undefined;
  return { amount: BigInt(match[1] ?? '0'), unit };
}

/**
 * The receipt the headers of an answer carry, or undefined when they carry none (a free answer,
 * a time-bound token, a server that does not tell). Malformed values are ignored.
 *
 * @internal
 * @example
 * ```ts
 * readReceipt(response.headers); // { charged: { amount: 2100n, unit: 'msat' }, remaining: … }
 * ```
 */
export function readReceipt(headers: Headers): Receipt | undefined {
  const charged = parseCharged(headers.get('tollway-charged'));
  const remaining = parseAmount(headers.get('tollway-remaining'));
  const reserved = parseAmount(headers.get('tollway-reserved'));
  if (charged === undefined && reserved === undefined) return undefined;
  const receipt: Receipt = {};
  if (charged !== undefined) receipt.charged = charged;
  if (remaining !== undefined) receipt.remaining = remaining;
  if (reserved?.unit === 'msat') receipt.reservedMsat = reserved.amount;
  return receipt;
}

const STREAM_RECEIPT_LINE = /^: ?tollway-(charged|remaining|reserved) (.{1,80})$/;
const STREAM_SETTLEMENT_LINE = /^: ?payment-response ([A-Za-z0-9+/]{1,2000}={0,2})$/;

/**
 * The part of a receipt one comment line of a metered event stream carries
 * (`: tollway-charged 2100 msat`, `: tollway-remaining 97900 msat`, `: payment-response eyJ…`;
 * line break excluded), or undefined for any other line.
 *
 * @internal
 * @example
 * ```ts
 * parseStreamReceipt(': tollway-charged 2100 msat'); // { charged: { amount: 2100n, unit: 'msat' } }
 * ```
 */
export function parseStreamReceipt(line: string): Receipt | undefined {
  const settlement = STREAM_SETTLEMENT_LINE.exec(line)?.[1];
  if (settlement !== undefined) return { paymentResponse: settlement };
  const match = STREAM_RECEIPT_LINE.exec(line);
  if (match === null) return undefined;
  const amount = parseAmount(match[2] ?? '');
  if (amount === undefined) return undefined;
  if (match[1] === 'charged') return { charged: amount };
  if (match[1] === 'remaining') return { remaining: amount };
  return amount.unit === 'msat' ? { reservedMsat: amount.amount } : undefined;
}

/** The longest comment line read for a receipt (a `payment-response`); longer ones are not receipts. */
const MAX_RECEIPT_LINE = 2048;
const LF = 0x0a;
const COLON = 0x3a;

/** Finds the receipt comments of an event stream in its bytes as they pass; see {@link createStreamReceiptReader}. */
export interface StreamReceiptReader {
  /** Reads the next bytes of the stream (they are not changed). */
  write(chunk: Uint8Array): void;
  /** What the receipt comments read so far say (the last value of each). */
  receipt(): Receipt | undefined;
}

/**
 * A reader of the receipt comments of a metered event stream. It looks only at lines that start
 * with `:` (comments), jumping from line break to line break, so the body costs one `indexOf`
 * per line.
 *
 * @internal
 * @example
 * ```ts
 * const reader = createStreamReceiptReader();
 * for await (const chunk of body) reader.write(chunk);
 * reader.receipt()?.charged; // { amount: 2100n, unit: 'msat' }
 * ```
 */
export function createStreamReceiptReader(): StreamReceiptReader {
  let atLineStart = true;
  /** The bytes of the comment line being read, or undefined when not in one. */
  let comment: number[] | undefined;
  let found: Receipt | undefined;
  const endComment = (): void => {
    const bytes = comment ?? [];
    comment = undefined;
    if (bytes.length > MAX_RECEIPT_LINE) return;
    const line = String.fromCharCode(...bytes).replace(/\r$/, '');
    const part = parseStreamReceipt(line);
    if (part !== undefined) found = { ...found, ...part };
  };
  return {
    write(chunk) {
      let at = 0;
      while (at < chunk.length) {
        if (comment === undefined && atLineStart && chunk[at] === COLON) comment = [];
        const end = chunk.indexOf(LF, at);
        const stop = end < 0 ? chunk.length : end;
        if (comment !== undefined) {
          for (let i = at; i < stop && comment.length <= MAX_RECEIPT_LINE; i++) {
            comment.push(chunk[i] as number);
          }
          if (end >= 0) endComment();
        }
        atLineStart = end >= 0;
        at = stop + 1;
      }
    },
    receipt: () => found,
  };
}
