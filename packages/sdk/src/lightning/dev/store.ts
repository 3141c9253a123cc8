/**
 * SQLite persistence of the dev Lightning node: one file holds the node key, the wallets, their
 * invoices and their payments, so a restart keeps everything. Internal to the dev node.
 *
 * `better-sqlite3` is an optional peer of the SDK, so it is loaded when a store is opened, not when
 * the module is imported. Amounts are millisatoshis in INTEGER columns, read back as `bigint`
 * (`safeIntegers`); times are unix milliseconds.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { TollwayError } from '../../errors.js';
import { loadSqliteDriver, openSqliteFile } from '../../internal/sqlite-driver.js';
import { MAX_MSAT } from '../../money.js';

/** A wallet as stored (the public `DevWallet`). */
export interface WalletRow {
  name: string;
  /** Bearer token of the wallet's HTTP API, kept in the sandbox file (play money only). */
  token: string;
  balanceMsat: bigint;
  /** Unix milliseconds. */
  createdAt: number;
}

/** An incoming invoice as stored. `settledAt` and `amountPaidMsat` are set together, once. */
export interface InvoiceRow {
  paymentHash: string;
  wallet: string;
  paymentRequest: string;
  preimage: string;
  /** `undefined` for an amountless invoice. */
  amountMsat: bigint | undefined;
  createdAt: number;
  expiresAt: number;
  amountPaidMsat: bigint | undefined;
  settledAt: number | undefined;
}

/** An outgoing payment as stored: only completed payments are recorded (settlement is atomic). */
interface PaymentRow {
  paymentHash: string;
  wallet: string;
  amountMsat: bigint;
  feeMsat: bigint;
  preimage: string;
  createdAt: number;
}

/** Typed access to the dev node's SQLite file. */
export interface DevStore {
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
  getWallet(name: string): WalletRow | undefined;
  insertWallet(row: WalletRow): void;
  setBalance(name: string, balanceMsat: bigint): void;
  /** Subtracts `amountMsat` unless that would go below zero; false when it would. */
  debit(name: string, amountMsat: bigint): boolean;
  credit(name: string, amountMsat: bigint): void;
  getInvoice(paymentHash: string): InvoiceRow | undefined;
  insertInvoice(row: InvoiceRow): void;
  /** Marks an open invoice settled; false when it was already settled. */
  settleInvoice(paymentHash: string, amountPaidMsat: bigint, settledAt: number): boolean;
  getPayment(paymentHash: string): PaymentRow | undefined;
  insertPayment(row: PaymentRow): void;
  /** Runs `fn` in one `BEGIN IMMEDIATE` transaction: all of it commits, or none of it. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE wallets (
  name TEXT PRIMARY KEY,
  token TEXT NOT NULL UNIQUE,
  balance_msat INTEGER NOT NULL CHECK (balance_msat BETWEEN 0 AND ${MAX_MSAT}),
  created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE invoices (
  payment_hash TEXT PRIMARY KEY,
  wallet TEXT NOT NULL REFERENCES wallets (name),
  payment_request TEXT NOT NULL,
  preimage TEXT NOT NULL,
  amount_msat INTEGER CHECK (amount_msat > 0),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  amount_paid_msat INTEGER CHECK (amount_paid_msat > 0),
  settled_at INTEGER,
  CHECK ((amount_paid_msat IS NULL) = (settled_at IS NULL))
) STRICT;
CREATE TABLE payments (
  payment_hash TEXT PRIMARY KEY REFERENCES invoices (payment_hash),
  wallet TEXT NOT NULL REFERENCES wallets (name),
  amount_msat INTEGER NOT NULL CHECK (amount_msat > 0),
  fee_msat INTEGER NOT NULL CHECK (fee_msat >= 0),
  preimage TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
`;

interface RawWallet {
  name: string;
  token: string;
  balance_msat: bigint;
  created_at: bigint;
}

interface RawInvoice {
  payment_hash: string;
  wallet: string;
  payment_request: string;
  preimage: string;
  amount_msat: bigint | null;
  created_at: bigint;
  expires_at: bigint;
  amount_paid_msat: bigint | null;
  settled_at: bigint | null;
}

interface RawPayment {
  payment_hash: string;
  wallet: string;
  amount_msat: bigint;
  fee_msat: bigint;
  preimage: string;
  created_at: bigint;
}

/**
 * Opens (creating if needed, mode 0600) the dev node's SQLite file, in WAL mode, and migrates its
 * schema.
 * `':memory:'` gives a store that vanishes on close.
 */
export function openDevStore(path: string): DevStore {
  const db = openSqliteFile(loadSqliteDriver('the dev Lightning node'), path);
  db.defaultSafeIntegers(true);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  migrate(db);

  const q = {
    getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: db.prepare<[string, string]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    getWallet: db.prepare<[string], RawWallet>('SELECT * FROM wallets WHERE name = ?'),
    insertWallet: db.prepare<[string, string, bigint, number]>(
      'INSERT INTO wallets (name, token, balance_msat, created_at) VALUES (?, ?, ?, ?)',
    ),
    setBalance: db.prepare<[bigint, string]>('UPDATE wallets SET balance_msat = ? WHERE name = ?'),
    debit: db.prepare<[bigint, string, bigint]>(
      'UPDATE wallets SET balance_msat = balance_msat - ? WHERE name = ? AND balance_msat >= ?',
    ),
    credit: db.prepare<[bigint, string]>(
      'UPDATE wallets SET balance_msat = balance_msat + ? WHERE name = ?',
    ),
    getInvoice: db.prepare<[string], RawInvoice>('SELECT * FROM invoices WHERE payment_hash = ?'),
    insertInvoice: db.prepare<
      [string, string, string, string, bigint | null, number, number, bigint | null, number | null]
    >(
      `INSERT INTO invoices (payment_hash, wallet, payment_request, preimage, amount_msat, created_at,
         expires_at, amount_paid_msat, settled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    settleInvoice: db.prepare<[bigint, number, string]>(
      `UPDATE invoices SET amount_paid_msat = ?, settled_at = ?
       WHERE payment_hash = ? AND settled_at IS NULL`,
    ),
    getPayment: db.prepare<[string], RawPayment>('SELECT * FROM payments WHERE payment_hash = ?'),
    insertPayment: db.prepare<[string, string, bigint, bigint, string, number]>(
      `INSERT INTO payments (payment_hash, wallet, amount_msat, fee_msat, preimage, created_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
  };

  return {
    getMeta: (key) => q.getMeta.get(key)?.value,
    setMeta(key, value) {
      q.setMeta.run(key, value);
    },
    getWallet(name) {
      const row = q.getWallet.get(name);
      return (
        row && {
          name: row.name,
          token: row.token,
          balanceMsat: row.balance_msat,
          createdAt: Number(row.created_at),
        }
      );
    },
    insertWallet(row) {
      q.insertWallet.run(row.name, row.token, row.balanceMsat, row.createdAt);
    },
    setBalance(name, balanceMsat) {
      q.setBalance.run(balanceMsat, name);
    },
    debit: (name, amountMsat) => q.debit.run(amountMsat, name, amountMsat).changes === 1,
    credit(name, amountMsat) {
      q.credit.run(amountMsat, name);
    },
    getInvoice(paymentHash) {
      const row = q.getInvoice.get(paymentHash);
      return (
        row && {
          paymentHash: row.payment_hash,
          wallet: row.wallet,
          paymentRequest: row.payment_request,
          preimage: row.preimage,
          amountMsat: row.amount_msat ?? undefined,
          createdAt: Number(row.created_at),
          expiresAt: Number(row.expires_at),
          amountPaidMsat: row.amount_paid_msat ?? undefined,
          settledAt: row.settled_at === null ? undefined : Number(row.settled_at),
        }
      );
    },
    insertInvoice(row) {
      q.insertInvoice.run(
        row.paymentHash,
        row.wallet,
        row.paymentRequest,
        row.preimage,
        row.amountMsat ?? null,
        row.createdAt,
        row.expiresAt,
        row.amountPaidMsat ?? null,
        row.settledAt ?? null,
      );
    },
    settleInvoice: (paymentHash, amountPaidMsat, settledAt) =>
      q.settleInvoice.run(amountPaidMsat, settledAt, paymentHash).changes === 1,
    getPayment(paymentHash) {
      const row = q.getPayment.get(paymentHash);
      return (
        row && {
          paymentHash: row.payment_hash,
          wallet: row.wallet,
          amountMsat: row.amount_msat,
          feeMsat: row.fee_msat,
          preimage: row.preimage,
          createdAt: Number(row.created_at),
        }
      );
    },
    insertPayment(row) {
      q.insertPayment.run(
        row.paymentHash,
        row.wallet,
        row.amountMsat,
        row.feeMsat,
        row.preimage,
        row.createdAt,
      );
    },
    transaction: (fn) => db.transaction(fn).immediate(),
    close() {
      db.close();
    },
  };
}

function migrate(db: BetterSqlite3.Database): void {
  db.transaction(() => {
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version === SCHEMA_VERSION) return;
    if (version !== 0) {
      throw new TollwayError(
        'capability_unsupported',
        `the dev Lightning file has schema version ${version}; this Tollway knows ${SCHEMA_VERSION}`,
      );
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
