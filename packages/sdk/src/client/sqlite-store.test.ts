import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { BASE, describeClientStoreSuite, entry, rejects } from '../../test/client/store-suite.js';
import { createBudget } from './budget.js';
import { createSqliteClientStore, defaultAgentDbPath } from './sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-agent-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let files = 0;
/** A database path in a directory that does not exist yet. */
function freshPath(): string {
  files += 1;
  return join(dir, `db-${files}`, 'nested', 'agent.sqlite');
}

describeClientStoreSuite('sqlite', async ({ staleHoldMs }) => {
  const path = freshPath();
  const options = staleHoldMs === undefined ? { path } : { path, staleHoldMs };
  return {
    store: createSqliteClientStore(options),
    openPeer: async () => createSqliteClientStore(options),
  };
});

describe('SQLite agent store specifics', () => {
  it('creates the parent directory and an owner-only file in WAL mode, schema version 4', async () => {
    const path = freshPath();
    await createSqliteClientStore({ path }).close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const db = new Database(path);
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(4);
    } finally {
      db.close();
    }
  });

  it('stores msat amounts as INTEGER and token amounts as exact decimal text', async () => {
    const path = freshPath();
    const store = createSqliteClientStore({ path });
    await store.recordPayment(
      entry('p1', { amount: 10n ** 30n, amountMsat: 2n ** 62n + 1n, feeMsat: 7n }),
    );
    await store.close();
    const db = new Database(path);
    try {
      expect(
        db
          .prepare(
            'SELECT typeof(amount) a, typeof(amount_msat) m, typeof(fee_msat) f, amount FROM payments',
          )
          .get(),
      ).toEqual({ a: 'text', m: 'integer', f: 'integer', amount: (10n ** 30n).toString() });
    } finally {
      db.close();
    }
  });

  it('migrates a file of schema version 1: its payments are purchases, and sessions are kept', async () => {
    const path = freshPath();
    await createSqliteClientStore({ path }).close();
    rmSync(path);
    const v1 = new Database(path);
    v1.exec(
      readFileSync(new URL('../../test/client/agent-schema-v1.sql', import.meta.url), 'utf8'),
    );
    v1.pragma('user_version = 1');
    v1.prepare(
      `INSERT INTO payments (id, time, tags, url, origin, protocol, amount, unit, amount_msat,
         fee_msat, reference, status) VALUES ('old', ?, '{}', 'https://api.example.com/x',
         'https://api.example.com', 'l402', '10000', 'msat', 10000, 3, 'hash-old', 'succeeded')`,
    ).run(BASE);
    v1.close();
    const store = createSqliteClientStore({ path });
    try {
      expect(await store.list()).toEqual([
        entry('old', {
          tags: {},
          url: 'https://api.example.com/x',
          feeMsat: 3n,
          status: 'succeeded',
        }),
      ]);
      expect((await store.summary({}, 'origin'))[0]?.purchases.amountMsat).toBe(10_000n);
      expect(await store.listSessions()).toEqual([]);
      expect(await store.listChannels()).toEqual([]);
    } finally {
      await store.close();
    }
    const db = new Database(path);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(4);
    } finally {
      db.close();
    }
  });

  it('refuses a file from a newer schema with store_error', async () => {
    const path = freshPath();
    await createSqliteClientStore({ path }).close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => createSqliteClientStore({ path })).toThrow(/schema version 99/);
  });

  it('defaults to $TOLLWAY_AGENT_DB, else ~/.tollway/agent.sqlite', () => {
    const saved = process.env.TOLLWAY_AGENT_DB;
    try {
      process.env.TOLLWAY_AGENT_DB = '/tmp/x/agent.sqlite';
      expect(defaultAgentDbPath()).toBe('/tmp/x/agent.sqlite');
      delete process.env.TOLLWAY_AGENT_DB;
      expect(defaultAgentDbPath()).toBe(join(homedir(), '.tollway', 'agent.sqlite'));
    } finally {
      if (saved === undefined) delete process.env.TOLLWAY_AGENT_DB;
      else process.env.TOLLWAY_AGENT_DB = saved;
    }
  });

  it('shares the kill switch between two store instances on one file', async () => {
    const path = freshPath();
    const one = createBudget({ store: createSqliteClientStore({ path }), path: 'agent-7' });
    const two = createBudget({ store: createSqliteClientStore({ path }), path: 'agent-7' });
    const request = {
      origin: 'https://api.example.com',
      url: 'https://api.example.com/',
      protocol: 'l402' as const,
      amountMsat: 1n,
      maxFeeMsat: 0n,
    };
    await one.disable();
    await rejects(two.reserve(request), 'payments_disabled');
    expect(await two.check(request)).toMatchObject({ ok: false, code: 'payments_disabled' });
    await two.enable();
    await expect(one.reserve(request)).resolves.toMatchObject({ heldMsat: 1n });
    await one.store.close();
    await two.store.close();
  });

  it('turns a database failure into store_error', async () => {
    const path = freshPath();
    const store = createSqliteClientStore({ path });
    await store.close();
    await rejects(store.list(), 'store_error');
    writeFileSync(
      join(dir, 'not-a-db'),
      'this is not SQLite, just text long enough to be read as a header',
    );
    expect(() => createSqliteClientStore({ path: join(dir, 'not-a-db') })).toThrow(/SQLite failed/);
  });

  it('never holds more than the limit when two processes reserve at once on one file', async () => {
    const path = freshPath();
    await createSqliteClientStore({ path }).close();
    const runner = fileURLToPath(new URL('../../test/client/run-ts.mjs', import.meta.url));
    const worker = fileURLToPath(new URL('../../test/client/reserve-worker.ts', import.meta.url));
    // Each process fires 50 reservations of 1 sat at a 10 sat budget.
    const children = [0, 1].map(() =>
      spawn(process.execPath, [runner, worker, path, '50', '1000', '10000']),
    );
    const lines = children.map((child) =>
      createInterface({ input: child.stdout })[Symbol.asyncIterator](),
    );
    const next = async (i: number) => (await lines[i]?.next())?.value as string;
    const stderr = children.map((child) => collect(child));
    expect(await Promise.all([next(0), next(1)])).toEqual(['ready', 'ready']);
    for (const child of children) child.stdin.write('go\n');
    const outputs = await Promise.all([next(0), next(1)]);
    for (const child of children) child.stdin.end();
    await Promise.all(children.map((child) => new Promise((done) => child.once('close', done))));
    expect(await Promise.all(stderr)).toEqual(['', '']);
    const codes = outputs.flatMap((out) => JSON.parse(out) as string[]);
    expect(codes.filter((c) => c === 'held')).toHaveLength(10);
    expect(codes.filter((c) => c === 'budget_exceeded')).toHaveLength(90);
    const db = new Database(path);
    db.defaultSafeIntegers(true);
    try {
      const held = db
        .prepare(`SELECT SUM(held_msat) FROM holds WHERE state = 'open'`)
        .pluck()
        .get();
      expect(held).toBe(10_000n);
    } finally {
      db.close();
    }
  });
});

function collect(child: ChildProcessWithoutNullStreams): Promise<string> {
  let text = '';
  child.stderr.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  return new Promise((done) => child.once('close', () => done(text)));
}

describe('SQLite ledger clock', () => {
  it('reads times back as numbers', async () => {
    const store = createSqliteClientStore({ path: freshPath() });
    await store.recordPayment(entry('p1'));
    expect((await store.list())[0]?.time).toBe(BASE);
    await store.close();
  });
});
