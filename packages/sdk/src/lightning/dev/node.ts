/**
 * The embedded dev Lightning node: a SANDBOX network with real signatures and play money.
 *
 * One node key (secp256k1, generated once and stored) signs real BOLT11 `lnbcrt` invoices for every
 * wallet of the network. A wallet pays another wallet's invoice by an atomic transfer in one SQLite
 * transaction (debit payer, credit payee, settle invoice, record payment) and receives the invoice's
 * real preimage. Rules, as a real node would apply them:
 *
 * - an invoice is settled at most once; paying it again from the same wallet fails with
 *   `already_paid`, from another wallet with `payment_failed`; money never moves twice;
 * - an expired invoice cannot be paid (`invoice_expired`);
 * - the amount paid must be at least the invoice amount and at most twice it (BOLT 4); an amountless
 *   invoice takes any positive amount (`amount_required` without one);
 * - an invoice signed by any other node has no route (`no_route`): the dev network has no channels
 *   to the outside;
 * - a wallet cannot pay its own invoice (`payment_failed`): real nodes refuse self-payment too;
 * - routing fees are zero, so the balance must cover the amount only (`insufficient_balance`).
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { TollwayError } from '../../errors.js';
import { bytesToHex, hexToBytes } from '../../internal/bytes.js';
import { randomBytes } from '../../internal/crypto.js';
import { MAX_MSAT } from '../../money.js';
import { createPreimage, decodeInvoice, encodeInvoice } from '../bolt11.js';
import type {
  CreatedInvoice,
  CreateInvoiceParams,
  InvoiceStatus,
  LightningBackend,
  NodeInfo,
  PayInvoiceParams,
  PaymentResult,
  PaymentStatus,
  WaitOptions,
} from '../types.js';
import { type DevStore, type InvoiceRow, openDevStore, type WalletRow } from './store.js';

/** The node alias, shown wherever the dev node appears: it is a sandbox, its money is play money. */
export const DEV_NODE_ALIAS = 'tollway-dev-node (SANDBOX, play money)';

/** A new wallet's play money when none is given: 1 000 000 sat. */
export const DEFAULT_DEV_BALANCE_MSAT = 1_000_000_000n;

const DEFAULT_PATH = '.tollway/dev-lightning.sqlite';
const DEFAULT_EXPIRY_SECONDS = 3600;
const MAX_EXPIRY_SECONDS = 365 * 24 * 3600;
const DEFAULT_WAIT_MS = 60_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const WALLET_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const HASH = /^[0-9a-fA-F]{64}$/;

/** Options of {@link createDevNetwork}. */
export interface DevNetworkOptions {
  /** The SQLite file; default `.tollway/dev-lightning.sqlite`. `':memory:'` keeps nothing. */
  path?: string;
  /** Play money given to a new wallet when `openWallet` names none; default 1 000 000 sat. */
  defaultBalanceMsat?: bigint;
}

/** A wallet of the dev network: its name, bearer token, balance and creation time. */
export type DevWallet = WalletRow;

/** The dev network: one node key, many wallets, one SQLite file. See {@link createDevNetwork}. */
export interface DevNetwork {
  /** The node's 33-byte compressed public key, hex; the payee of every invoice it issues. */
  readonly pubkey: string;
  /** The node alias ({@link DEV_NODE_ALIAS}). */
  readonly alias: string;
  /** Token that lets the HTTP API create wallets; generated once and stored. */
  readonly adminToken: string;
  /** The wallet of that name, creating and funding it first if it does not exist yet. */
  openWallet(name: string, options?: { balanceMsat?: bigint }): DevWallet;
  /** The wallet of that name, or `undefined`. */
  getWallet(name: string): DevWallet | undefined;
  /** Sets a wallet's balance (a faucet for tests and demos). */
  setBalance(name: string, balanceMsat: bigint): void;
  /** A {@link LightningBackend} for one existing wallet, in process (no HTTP). */
  backend(walletName: string): LightningBackend;
  /** Closes the SQLite file; pending waits fail with `backend_unavailable`. */
  close(): Promise<void>;
}

/**
 * Opens (or creates) the dev Lightning network stored in one SQLite file. Every invoice it issues is
 * a real signed `lnbcrt` invoice; every balance is play money.
 *
 * @example
 * ```ts
 * const network = createDevNetwork({ path: '.tollway/dev-lightning.sqlite' });
 * network.openWallet('shop');
 * network.openWallet('agent');
 * const shop = network.backend('shop');
 * const invoice = await shop.createInvoice({ amountMsat: 10_000n, memo: 'forecast' });
 * const paid = await network.backend('agent').payInvoice({ paymentRequest: invoice.paymentRequest });
 * // paid.preimage hashes to invoice.paymentHash
 * ```
 */
export function createDevNetwork(options: DevNetworkOptions = {}): DevNetwork {
  const store = openDevStore(options.path ?? DEFAULT_PATH);
  const defaultBalance = options.defaultBalanceMsat ?? DEFAULT_DEV_BALANCE_MSAT;
  assertMsat(defaultBalance, 'defaultBalanceMsat');
  const privateKey = metaOnce(store, 'node_private_key', () =>
    bytesToHex(secp256k1.utils.randomSecretKey()),
  );
  const adminToken = metaOnce(store, 'admin_token', () => bytesToHex(randomBytes(32)));
  const pubkey = bytesToHex(secp256k1.getPublicKey(hexToBytes(privateKey, 32), true));
  const waiters = new Map<string, Set<() => void>>();
  let closed = false;

  function assertOpen(): void {
    if (closed) throw new TollwayError('backend_unavailable', 'the dev Lightning node is closed');
  }

  function notify(paymentHash: string): void {
    const set = waiters.get(paymentHash);
    waiters.delete(paymentHash);
    for (const wake of set ?? []) wake();
  }

  function assertWallet(name: string): DevWallet {
    assertOpen();
    const wallet = store.getWallet(name);
    if (wallet === undefined) {
      throw new TollwayError('invalid_connection_string', `no dev wallet named "${name}"`, {
        details: { wallet: name },
      });
    }
    return wallet;
  }

  function ownInvoice(wallet: string, paymentHash: string): InvoiceRow {
    assertOpen();
    const hash = checkHash(paymentHash);
    const row = store.getInvoice(hash);
    if (row === undefined || row.wallet !== wallet) {
      throw new TollwayError('invoice_not_found', 'this wallet has no invoice with that hash', {
        details: { paymentHash: hash },
      });
    }
    return row;
  }

  /**
   * `wallet` is a backend's, which was checked when the backend was made; wallets are never
   * removed (and the invoice's foreign key holds that anyway), so it is not read again here: the
   * read (a SELECT and its row) was 3–5% of a 402's CPU time in the engine.
   */
  function createInvoice(wallet: string, params: CreateInvoiceParams): CreatedInvoice {
    assertOpen();
    const amountMsat = params.amountMsat;
    if (typeof amountMsat !== 'bigint' || amountMsat < 0n || amountMsat > MAX_MSAT) {
      throw new TollwayError('invalid_amount', 'amountMsat must be a bigint in [0, 21e6 BTC]');
    }
    const expirySeconds = params.expirySeconds ?? DEFAULT_EXPIRY_SECONDS;
    if (!Number.isSafeInteger(expirySeconds) || expirySeconds < 1) {
      throw new TollwayError('invalid_invoice', 'expirySeconds must be a positive integer');
    }
    if (expirySeconds > MAX_EXPIRY_SECONDS) {
      throw new TollwayError('invalid_invoice', 'expirySeconds may be at most one year');
    }
    // The preimage and the payment secret from one call into the random generator, which costs
    // 6–12 µs on this project's machine whatever the length.
    const random = randomBytes(64);
    const { preimage, paymentHash } = createPreimage(random.subarray(0, 32));
    const timestamp = Math.floor(Date.now() / 1000);
    const paymentRequest = encodeInvoice({
      network: 'regtest',
      paymentHash,
      paymentSecret: bytesToHex(random.subarray(32)),
      expirySeconds,
      timestamp,
      privateKey,
      ...(amountMsat > 0n ? { amountMsat } : {}),
      ...(params.descriptionHash !== undefined
        ? { descriptionHash: params.descriptionHash.toLowerCase() }
        : { description: params.memo ?? '' }),
    });
    const expiresAt = (timestamp + expirySeconds) * 1000;
    store.insertInvoice({
      paymentHash,
      wallet,
      paymentRequest,
      preimage,
      amountMsat: amountMsat > 0n ? amountMsat : undefined,
      createdAt: timestamp * 1000,
      expiresAt,
      amountPaidMsat: undefined,
      settledAt: undefined,
    });
    return { paymentRequest, paymentHash, amountMsat, expiresAt };
  }

  function lookupInvoice(wallet: string, paymentHash: string): InvoiceStatus {
    return invoiceStatus(ownInvoice(wallet, paymentHash), Date.now());
  }

  function waitForSettlement(
    wallet: string,
    paymentHash: string,
    options: WaitOptions = {},
  ): Promise<InvoiceStatus> {
    const row = ownInvoice(wallet, paymentHash);
    const first = invoiceStatus(row, Date.now());
    if (first.state !== 'open') return Promise.resolve(first);
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(aborted(signal));
    const timeoutMs = Math.min(Math.max(options.timeoutMs ?? DEFAULT_WAIT_MS, 0), MAX_TIMER_MS);
    const untilExpiry = row.expiresAt - Date.now();
    return new Promise((resolve, reject) => {
      const set = waiters.get(row.paymentHash) ?? new Set();
      waiters.set(row.paymentHash, set);
      const finish = (): void => {
        clearTimeout(timer);
        clearTimeout(expiryTimer);
        set.delete(wake);
        if (set.size === 0 && waiters.get(row.paymentHash) === set) {
          waiters.delete(row.paymentHash);
        }
        signal?.removeEventListener('abort', onAbort);
      };
      const wake = (): void => {
        finish();
        try {
          resolve(lookupInvoice(wallet, row.paymentHash));
        } catch (error) {
          reject(error);
        }
      };
      const onAbort = (): void => {
        finish();
        reject(aborted(signal));
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new TollwayError('payment_timeout', `invoice still open after ${timeoutMs} ms`, {
            details: { paymentHash: row.paymentHash },
          }),
        );
      }, timeoutMs);
      // An invoice that expires before the deadline ends the wait as `expired`.
      const expiryTimer =
        untilExpiry < timeoutMs ? setTimeout(wake, Math.max(untilExpiry, 0) + 1) : undefined;
      set.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  function payInvoice(wallet: string, params: PayInvoiceParams): PaymentResult {
    assertWallet(wallet);
    const decoded = decodeInvoice(params.paymentRequest, { network: 'regtest' });
    if (params.amountMsat !== undefined) assertMsat(params.amountMsat, 'amountMsat', true);
    if (params.maxFeeMsat !== undefined) assertMsat(params.maxFeeMsat, 'maxFeeMsat');
    if (decoded.payeePubkey !== pubkey) {
      throw new TollwayError('no_route', 'the payee is not a node of this dev network', {
        details: { payee: decoded.payeePubkey },
      });
    }
    const paymentHash = decoded.paymentHash;
    const result = store.transaction((): PaymentResult => {
      const invoice = store.getInvoice(paymentHash);
      const now = Date.now();
      if (invoice === undefined) {
        throw new TollwayError('payment_failed', 'the dev node knows no invoice with that hash', {
          details: { paymentHash },
        });
      }
      if (invoice.wallet === wallet) {
        throw new TollwayError('payment_failed', 'a wallet cannot pay its own invoice', {
          details: { paymentHash },
        });
      }
      if (invoice.settledAt !== undefined) {
        const byUs = store.getPayment(paymentHash)?.wallet === wallet;
        throw new TollwayError(
          byUs ? 'already_paid' : 'payment_failed',
          byUs ? 'this wallet already paid the invoice' : 'the invoice was already paid',
          { details: { paymentHash } },
        );
      }
      if (now >= invoice.expiresAt) {
        throw new TollwayError('invoice_expired', 'the invoice has expired', {
          details: { paymentHash, expiresAt: invoice.expiresAt },
        });
      }
      const amountMsat = amountToPay(invoice.amountMsat, params.amountMsat);
      const feeMsat = 0n;
      if (!store.debit(wallet, amountMsat + feeMsat)) {
        throw new TollwayError('insufficient_balance', 'the wallet balance does not cover it', {
          details: { paymentHash, amountMsat: amountMsat.toString() },
        });
      }
      const payee = store.getWallet(invoice.wallet);
      if (payee === undefined || payee.balanceMsat + amountMsat > MAX_MSAT) {
        throw new TollwayError('payment_failed', 'the payee wallet cannot receive that much');
      }
      store.credit(invoice.wallet, amountMsat);
      store.settleInvoice(paymentHash, amountMsat, now);
      store.insertPayment({
        paymentHash,
        wallet,
        amountMsat,
        feeMsat,
        preimage: invoice.preimage,
        createdAt: now,
      });
      return { paymentHash, preimage: invoice.preimage, amountMsat, feeMsat };
    });
    notify(paymentHash);
    return result;
  }

  function lookupPayment(wallet: string, paymentHash: string): PaymentStatus {
    assertOpen();
    const hash = checkHash(paymentHash);
    const row = store.getPayment(hash);
    if (row === undefined || row.wallet !== wallet) {
      throw new TollwayError('invoice_not_found', 'this wallet made no payment with that hash', {
        details: { paymentHash: hash },
      });
    }
    return {
      paymentHash: hash,
      state: 'succeeded',
      preimage: row.preimage,
      amountMsat: row.amountMsat,
      feeMsat: row.feeMsat,
    };
  }

  function getWallet(name: string): DevWallet | undefined {
    assertOpen();
    return store.getWallet(name);
  }

  function info(): NodeInfo {
    return { pubkey, network: 'regtest', alias: DEV_NODE_ALIAS };
  }

  return {
    pubkey,
    alias: DEV_NODE_ALIAS,
    adminToken,
    openWallet(name, walletOptions = {}) {
      assertOpen();
      if (!WALLET_NAME.test(name)) {
        throw new TollwayError(
          'invalid_connection_string',
          'a dev wallet name is 1-64 letters, digits, "_" or "-", starting with a letter or digit',
        );
      }
      const balanceMsat = walletOptions.balanceMsat ?? defaultBalance;
      assertMsat(balanceMsat, 'balanceMsat');
      return store.transaction(() => {
        const existing = store.getWallet(name);
        if (existing !== undefined) return existing;
        const created = {
          name,
          token: bytesToHex(randomBytes(32)),
          balanceMsat,
          createdAt: Date.now(),
        };
        store.insertWallet(created);
        return created;
      });
    },
    getWallet,
    setBalance(name, balanceMsat) {
      assertWallet(name);
      assertMsat(balanceMsat, 'balanceMsat');
      store.setBalance(name, balanceMsat);
    },
    backend(walletName) {
      assertWallet(walletName);
      // The methods are async so that every failure, even a synchronous one, is a rejection.
      return {
        kind: 'dev',
        capabilities: { canReceive: true, canPay: true },
        getInfo: async () => info(),
        createInvoice: async (params) => createInvoice(walletName, params),
        lookupInvoice: async (hash) => lookupInvoice(walletName, hash),
        waitForSettlement: async (hash, waitOptions) =>
          waitForSettlement(walletName, hash, waitOptions),
        payInvoice: async (params) => payInvoice(walletName, params),
        lookupPayment: async (hash) => lookupPayment(walletName, hash),
        getBalance: async () => ({ msat: assertWallet(walletName).balanceMsat }),
        async close() {},
      };
    },
    async close() {
      if (closed) return;
      closed = true;
      store.close();
      for (const hash of [...waiters.keys()]) notify(hash);
    },
  };
}

/** Reads a stored value, generating and storing it the first time. */
function metaOnce(store: DevStore, key: string, generate: () => string): string {
  return store.transaction(() => {
    const existing = store.getMeta(key);
    if (existing !== undefined) return existing;
    const value = generate();
    store.setMeta(key, value);
    return value;
  });
}

function invoiceStatus(row: InvoiceRow, now: number): InvoiceStatus {
  const state = row.settledAt !== undefined ? 'settled' : now >= row.expiresAt ? 'expired' : 'open';
  return {
    paymentHash: row.paymentHash,
    state,
    preimage: row.preimage,
    ...(row.amountMsat !== undefined ? { amountMsat: row.amountMsat } : {}),
    ...(row.amountPaidMsat !== undefined ? { amountPaidMsat: row.amountPaidMsat } : {}),
    ...(row.settledAt !== undefined ? { settledAt: row.settledAt } : {}),
  };
}

/** The amount a payment moves: BOLT 4 lets a payer send up to twice a fixed invoice amount. */
function amountToPay(invoiceMsat: bigint | undefined, givenMsat: bigint | undefined): bigint {
  if (invoiceMsat === undefined) {
    if (givenMsat === undefined) {
      throw new TollwayError('amount_required', 'the invoice has no amount; give amountMsat');
    }
    return givenMsat;
  }
  const amount = givenMsat ?? invoiceMsat;
  if (amount < invoiceMsat || amount > invoiceMsat * 2n) {
    throw new TollwayError(
      'amount_mismatch',
      'the amount must be at least the invoice amount and at most twice it',
      { details: { invoiceMsat: invoiceMsat.toString(), amountMsat: amount.toString() } },
    );
  }
  return amount;
}

function assertMsat(value: bigint, name: string, positive = false): void {
  if (typeof value !== 'bigint' || value < (positive ? 1n : 0n) || value > MAX_MSAT) {
    throw new TollwayError(
      'invalid_amount',
      `${name} must be a bigint in ${positive ? '(0' : '[0'}, 21e6 BTC]`,
    );
  }
}

function checkHash(paymentHash: string): string {
  if (typeof paymentHash !== 'string' || !HASH.test(paymentHash)) {
    throw new TollwayError('invalid_hex', 'a payment hash is 32 bytes of hex');
  }
  return paymentHash.toLowerCase();
}

function aborted(signal: AbortSignal | undefined): TollwayError {
  return new TollwayError('payment_timeout', 'the wait was aborted', { cause: signal?.reason });
}
