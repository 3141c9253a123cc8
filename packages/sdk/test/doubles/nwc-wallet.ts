/**
 * A NIP-47 wallet service double: a real wallet service over a real relay, written independently of
 * the SDK's NWC client (raw `ws` + `nostr-tools`), so a shared mistake cannot hide.
 *
 * It publishes its info event (kind 13194: methods, `encryption`, `notifications`), answers kind
 * 23194 requests with kind 23195 replies (`p` and `e` tags) in the encryption the request used,
 * honours `expiration`, keeps a balance and an optional budget, issues real signed regtest BOLT11
 * invoices with real preimages, and sends `payment_received` notifications. Outgoing payments go to
 * invoices made by `createExternalInvoice` (anything else has no route); the payee is lenient and
 * counts every payment, so a double payment shows in `timesPaid`.
 */
import { randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import {
  finalizeEvent,
  generateSecretKey,
  getPublicKey,
  type NostrEvent,
  verifyEvent,
} from 'nostr-tools/pure';
import WebSocket from 'ws';
import { createPreimage, decodeInvoice, encodeInvoice } from '../../src/lightning/bolt11.js';
import { formatNwcUri, type NwcConnection } from '../../src/lightning/nwc-uri.js';

/** Every method the double implements. */
const ALL_METHODS = [
  'pay_invoice',
  'make_invoice',
  'lookup_invoice',
  'get_balance',
  'get_info',
  'get_budget',
] as const;

/** Ways the double misbehaves, for every request until cleared. */
type WalletFault =
  | { errorCode: string }
  | 'garbage'
  | 'wrong_shape'
  | 'silent'
  | 'wrong_preimage'
  | 'no_preimage';

/** Options of {@link startNwcWallet}. */
export interface NwcWalletOptions {
  relayUrl: string;
  /** Advertised and served; default {@link ALL_METHODS}. */
  methods?: readonly string[];
  /** Encryption schemes supported and advertised; default `['nip44_v2', 'nip04']`. */
  encryption?: ReadonlyArray<'nip44_v2' | 'nip04'>;
  /** Publish no info event at all (an old wallet: NIP-04 only). */
  noInfoEvent?: boolean;
  /** Routing fee charged per payment; default 1 000 msat. */
  feeMsat?: bigint;
}

interface Incoming {
  invoice: string;
  paymentHash: string;
  preimage: string;
  amountMsat: bigint;
  description: string | undefined;
  descriptionHash: string | undefined;
  createdAt: number;
  expiresAt: number;
  settledAt?: number;
  paidMsat?: bigint;
}

interface Outgoing {
  invoice: string;
  paymentHash: string;
  preimage: string;
  amountMsat: bigint;
  feeMsat: bigint;
  createdAt: number;
  settledAt?: number;
}

/** A running wallet service double. */
export interface NwcWalletDouble {
  /** The client side of the connection (what `parseNwcUri` would give). */
  readonly connection: NwcConnection;
  readonly uri: string;
  readonly walletPubkey: string;
  /** Every request received, decrypted, in order. */
  readonly requests: ReadonlyArray<{ method: string; params: Record<string, unknown> }>;
  payIncoming(paymentRequest: string, amountMsat?: bigint): Promise<void>;
  createExternalInvoice(p: { amountMsat?: bigint; expirySeconds?: number }): Promise<{
    paymentRequest: string;
    paymentHash: string;
    preimage: string;
  }>;
  timesPaid(paymentHash: string): number;
  setBalance(msat: bigint): void;
  balance(): bigint;
  /** A connection budget (`QUOTA_EXCEEDED` beyond it); `undefined` removes it. */
  setBudget(totalMsat: bigint | undefined): void;
  /** Payments stay pending for `settleMs`; their reply comes `replyMs` after they settle. */
  setPayDelays(delays: { settleMs?: number; replyMs?: number }): void;
  fault(mode?: WalletFault): void;
  /** How many times the double has subscribed on the relay (1, plus one per reconnect). */
  subscriptions(): number;
  close(): Promise<void>;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const nowS = (): number => Math.floor(Date.now() / 1000);

/**
 * Starts a wallet service double on `relayUrl`, with a fresh wallet key and a fresh client key.
 *
 * @example
 * ```ts
 * const relay = await startNostrRelay();
 * const wallet = await startNwcWallet({ relayUrl: relay.url });
 * const backend = createNwcBackend(wallet.connection);
 * ```
 */
export async function startNwcWallet(options: NwcWalletOptions): Promise<NwcWalletDouble> {
  const walletKey = generateSecretKey();
  const walletPubkey = getPublicKey(walletKey);
  const clientKey = generateSecretKey();
  const clientPubkey = getPublicKey(clientKey);
  const nodeKey = hex(randomBytes(32));
  const externalKey = hex(randomBytes(32));
  const methods = options.methods ?? ALL_METHODS;
  const encryption = options.encryption ?? ['nip44_v2', 'nip04'];
  const feeMsat = options.feeMsat ?? 1_000n;
  const incoming = new Map<string, Incoming>();
  const outgoing = new Map<string, Outgoing>();
  const external = new Map<string, { preimage: string; paid: number }>();
  const requests: Array<{ method: string; params: Record<string, unknown> }> = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let balanceMsat = 0n;
  let budget: { total: bigint; used: bigint } | undefined;
  let delays = { settleMs: 0, replyMs: 0 };
  let fault: WalletFault | undefined;
  let socket: WebSocket | undefined;
  let closed = false;
  let subscribed = 0;

  const infoEvent = finalizeEvent(
    {
      kind: 13194,
      created_at: nowS(),
      tags: [
        ['encryption', encryption.join(' ')],
        ['notifications', 'payment_received payment_sent'],
      ],
      content: methods.join(' '),
    },
    walletKey,
  );

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }

  function send(event: NostrEvent): void {
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify(['EVENT', event]));
  }

  function encrypt(scheme: 'nip44_v2' | 'nip04', to: string, text: string): string {
    return scheme === 'nip44_v2'
      ? nip44.encrypt(text, nip44.getConversationKey(walletKey, to))
      : nip04.encrypt(walletKey, to, text);
  }

  function decrypt(scheme: 'nip44_v2' | 'nip04', from: string, content: string): string {
    return scheme === 'nip44_v2'
      ? nip44.decrypt(content, nip44.getConversationKey(walletKey, from))
      : nip04.decrypt(walletKey, from, content);
  }

  function reply(request: NostrEvent, scheme: 'nip44_v2' | 'nip04', body: unknown): void {
    let content = encrypt(scheme, request.pubkey, JSON.stringify(body));
    if (fault === 'garbage') content = Buffer.from(randomBytes(80)).toString('base64');
    const tags = [
      ['p', request.pubkey],
      ['e', request.id],
    ];
    send(finalizeEvent({ kind: 23195, created_at: nowS(), tags, content }, walletKey));
  }

  function incomingTx(inv: Incoming): Record<string, unknown> {
    const settled = inv.settledAt !== undefined;
    return {
      type: 'incoming',
      state: settled ? 'settled' : inv.expiresAt <= nowS() ? 'expired' : 'pending',
      invoice: inv.invoice,
      description: inv.description ?? '',
      description_hash: inv.descriptionHash ?? '',
      preimage: inv.preimage,
      payment_hash: inv.paymentHash,
      amount: Number(settled ? inv.paidMsat : inv.amountMsat),
      fees_paid: 0,
      created_at: inv.createdAt,
      expires_at: inv.expiresAt,
      settled_at: inv.settledAt ?? null,
      metadata: {},
    };
  }

  function outgoingTx(pay: Outgoing): Record<string, unknown> {
    const settled = pay.settledAt !== undefined;
    return {
      type: 'outgoing',
      state: settled ? 'settled' : 'pending',
      invoice: pay.invoice,
      preimage: settled ? pay.preimage : '',
      payment_hash: pay.paymentHash,
      amount: Number(pay.amountMsat),
      fees_paid: Number(settled ? pay.feeMsat : 0n),
      created_at: pay.createdAt,
      settled_at: pay.settledAt ?? null,
    };
  }

  type Answer = { result: unknown } | { error: { code: string; message: string } };
  const fail = (code: string, message: string): Answer => ({ error: { code, message } });

  function makeInvoice(params: Record<string, unknown>): Answer {
    const amount = params.amount;
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount <= 0) {
      return fail('OTHER', 'amount must be a positive integer (msat)');
    }
    const { preimage, paymentHash } = createPreimage();
    const descriptionHash =
      typeof params.description_hash === 'string' && params.description_hash !== ''
        ? params.description_hash
        : undefined;
    const description = typeof params.description === 'string' ? params.description : undefined;
    const expirySeconds = typeof params.expiry === 'number' ? params.expiry : 86_400;
    const createdAt = nowS();
    const invoice = encodeInvoice({
      network: 'regtest',
      amountMsat: BigInt(amount),
      paymentHash,
      paymentSecret: hex(randomBytes(32)),
      ...(descriptionHash ? { descriptionHash } : { description: description ?? '' }),
      expirySeconds,
      timestamp: createdAt,
      privateKey: nodeKey,
    });
    const inv: Incoming = {
      invoice,
      paymentHash,
      preimage,
      amountMsat: BigInt(amount),
      description,
      descriptionHash,
      createdAt,
      expiresAt: createdAt + expirySeconds,
    };
    incoming.set(paymentHash, inv);
    return { result: incomingTx(inv) };
  }

  function lookupInvoice(params: Record<string, unknown>): Answer {
    let hash = typeof params.payment_hash === 'string' ? params.payment_hash : undefined;
    if (hash === undefined && typeof params.invoice === 'string') {
      try {
        hash = decodeInvoice(params.invoice).paymentHash;
      } catch {
        return fail('OTHER', 'invalid invoice');
      }
    }
    const inv = hash === undefined ? undefined : incoming.get(hash);
    if (inv !== undefined) return { result: incomingTx(inv) };
    const pay = hash === undefined ? undefined : outgoing.get(hash);
    if (pay !== undefined) return { result: outgoingTx(pay) };
    return fail('NOT_FOUND', 'invoice not found');
  }

  function payInvoice(params: Record<string, unknown>): Answer | Promise<Answer> {
    let decoded: ReturnType<typeof decodeInvoice>;
    try {
      decoded = decodeInvoice(String(params.invoice), { network: 'regtest' });
    } catch (error) {
      return fail('OTHER', `invalid invoice: ${(error as Error).message}`);
    }
    if (decoded.expiresAt <= Date.now()) return fail('PAYMENT_FAILED', 'invoice expired');
    const amount =
      decoded.amountMsat ?? (typeof params.amount === 'number' ? BigInt(params.amount) : undefined);
    if (amount === undefined) return fail('OTHER', 'amount required for this invoice');
    const payee = external.get(decoded.paymentHash);
    if (payee === undefined) return fail('PAYMENT_FAILED', 'no route to the payee');
    if (budget !== undefined && budget.used + amount + feeMsat > budget.total) {
      return fail('QUOTA_EXCEEDED', 'the connection budget is spent');
    }
    if (balanceMsat < amount + feeMsat) return fail('INSUFFICIENT_BALANCE', 'not enough balance');
    balanceMsat -= amount + feeMsat;
    if (budget !== undefined) budget.used += amount + feeMsat;
    const pay: Outgoing = {
      invoice: decoded.paymentRequest,
      paymentHash: decoded.paymentHash,
      preimage: payee.preimage,
      amountMsat: amount,
      feeMsat,
      createdAt: nowS(),
    };
    outgoing.set(decoded.paymentHash, pay);
    const { settleMs, replyMs } = delays;
    return new Promise((resolve) => {
      later(settleMs, () => {
        payee.paid += 1;
        pay.settledAt = nowS();
        let preimage = pay.preimage;
        if (fault === 'wrong_preimage') preimage = hex(randomBytes(32));
        if (fault === 'no_preimage') preimage = '';
        later(replyMs, () => resolve({ result: { preimage, fees_paid: Number(feeMsat) } }));
      });
    });
  }

  function route(
    from: string,
    method: string,
    params: Record<string, unknown>,
  ): Answer | Promise<Answer> {
    if (typeof fault === 'object') return fail(fault.errorCode, 'fault injected');
    if (from !== clientPubkey) return fail('UNAUTHORIZED', 'no wallet is connected to this key');
    if (!methods.includes(method)) return fail('NOT_IMPLEMENTED', `${method} is not offered`);
    switch (method) {
      case 'get_info':
        return {
          result: {
            alias: 'tollway-nwc-double',
            color: '#3399ff',
            pubkey: hex(secp256k1.getPublicKey(Buffer.from(nodeKey, 'hex'), true)),
            network: 'regtest',
            block_height: 101,
            block_hash: '00'.repeat(32),
            methods,
            notifications: ['payment_received', 'payment_sent'],
          },
        };
      case 'get_balance':
        return { result: { balance: Number(balanceMsat) } };
      case 'get_budget':
        return {
          result:
            budget === undefined
              ? {}
              : {
                  used_budget: Number(budget.used),
                  total_budget: Number(budget.total),
                  renewal_period: 'never',
                },
        };
      case 'make_invoice':
        return makeInvoice(params);
      case 'lookup_invoice':
        return lookupInvoice(params);
      case 'pay_invoice':
        return payInvoice(params);
      default:
        return fail('NOT_IMPLEMENTED', `${method} is not implemented`);
    }
  }

  function handle(request: NostrEvent): void {
    if (request.kind !== 23194 || !verifyEvent(request)) return;
    const expiration = Number(request.tags.find((t) => t[0] === 'expiration')?.[1] ?? Infinity);
    if (expiration < nowS()) return;
    const tagged = request.tags.find((t) => t[0] === 'encryption')?.[1];
    const scheme = tagged === 'nip44_v2' ? 'nip44_v2' : 'nip04';
    let body: { method?: unknown; params?: unknown };
    try {
      if (!encryption.includes(scheme)) throw new Error('unsupported encryption');
      body = JSON.parse(decrypt(scheme, request.pubkey, request.content));
    } catch {
      reply(request, encryption[0] ?? 'nip04', {
        result_type: 'unknown',
        error: { code: 'UNSUPPORTED_ENCRYPTION', message: 'cannot decrypt' },
      });
      return;
    }
    const method = String(body.method);
    const params = (
      typeof body.params === 'object' && body.params !== null ? body.params : {}
    ) as Record<string, unknown>;
    requests.push({ method, params });
    const answer = (a: Answer): void => {
      if (fault === 'wrong_shape') {
        reply(request, scheme, { result_type: method, result: { unexpected: [1, 2, 3] } });
        return;
      }
      reply(request, scheme, { result_type: method, error: null, result: null, ...a });
    };
    if (fault === 'silent') return;
    void Promise.resolve(route(request.pubkey, method, params)).then(answer);
  }

  function notify(inv: Incoming): void {
    const body = JSON.stringify({
      notification_type: 'payment_received',
      notification: incomingTx(inv),
    });
    for (const scheme of encryption) {
      const kind = scheme === 'nip44_v2' ? 23197 : 23196;
      const tags = [['p', clientPubkey]];
      send(
        finalizeEvent(
          { kind, created_at: nowS(), tags, content: encrypt(scheme, clientPubkey, body) },
          walletKey,
        ),
      );
    }
  }

  function connect(): Promise<void> {
    return new Promise((resolve) => {
      const ws = new WebSocket(options.relayUrl);
      socket = ws;
      ws.on('open', () => {
        if (!options.noInfoEvent) ws.send(JSON.stringify(['EVENT', infoEvent]));
        ws.send(JSON.stringify(['REQ', 'requests', { kinds: [23194], '#p': [walletPubkey] }]));
      });
      ws.on('message', (data: WebSocket.RawData) => {
        let frame: unknown;
        try {
          frame = JSON.parse(data.toString());
        } catch {
          return;
        }
        if (!Array.isArray(frame)) return;
        if (frame[0] === 'EOSE' && frame[1] === 'requests') {
          subscribed += 1;
          resolve();
        }
        if (frame[0] === 'EVENT' && frame[1] === 'requests') handle(frame[2] as NostrEvent);
      });
      ws.on('error', () => {});
      ws.on('close', () => {
        if (closed || socket !== ws) return;
        later(50, () => void connect());
      });
    });
  }

  await connect();
  const connection: NwcConnection = {
    walletPubkey,
    relays: [options.relayUrl],
    secret: hex(clientKey),
  };

  return {
    connection,
    uri: formatNwcUri(connection),
    walletPubkey,
    requests,
    async payIncoming(paymentRequest, amountMsat) {
      const decoded = decodeInvoice(paymentRequest, { network: 'regtest' });
      const inv = incoming.get(decoded.paymentHash);
      if (inv === undefined) throw new Error('no such invoice in this wallet');
      if (inv.settledAt !== undefined) throw new Error('invoice already paid');
      if (inv.expiresAt <= nowS()) throw new Error('invoice expired');
      const paid = amountMsat ?? inv.amountMsat;
      if (paid < inv.amountMsat) throw new Error('underpayment is refused');
      inv.paidMsat = paid;
      inv.settledAt = nowS();
      balanceMsat += paid;
      notify(inv);
    },
    async createExternalInvoice({ amountMsat, expirySeconds }) {
      const { preimage, paymentHash } = createPreimage();
      const paymentRequest = encodeInvoice({
        network: 'regtest',
        ...(amountMsat === undefined ? {} : { amountMsat }),
        paymentHash,
        paymentSecret: hex(randomBytes(32)),
        description: 'external payee',
        ...(expirySeconds === undefined ? {} : { expirySeconds }),
        privateKey: externalKey,
      });
      external.set(paymentHash, { preimage, paid: 0 });
      return { paymentRequest, paymentHash, preimage };
    },
    timesPaid: (paymentHash) => external.get(paymentHash)?.paid ?? 0,
    setBalance(msat) {
      balanceMsat = msat;
    },
    balance: () => balanceMsat,
    setBudget(totalMsat) {
      budget = totalMsat === undefined ? undefined : { total: totalMsat, used: 0n };
    },
    setPayDelays(next) {
      delays = { settleMs: next.settleMs ?? 0, replyMs: next.replyMs ?? 0 };
    },
    fault(mode) {
      fault = mode;
    },
    subscriptions: () => subscribed,
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      const ws = socket;
      if (ws === undefined || ws.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.terminate();
      });
    },
  };
}
