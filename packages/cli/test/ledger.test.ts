import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteClientStore, type LedgerEntry } from '@tollway/sdk/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'tollway-ledger-'));
const db = join(dir, 'agent.sqlite');
const API = 'https://api.example.com';
const OTHER = 'https://other.example.org';
/** Fixed times, one hour apart, ending one minute ago (so `--since 1h` picks the last one). */
const now = Date.now();
const t = (hoursAgo: number) => now - 60_000 - hoursAgo * 3_600_000;

function entry(id: string, fields: Partial<LedgerEntry>): LedgerEntry {
  return {
    id,
    kind: 'purchase',
    time: t(0),
    tags: { agent: 'a1' },
    url: `${API}/forecast`,
    origin: API,
    protocol: 'l402',
    amount: 10_000n,
    unit: 'msat',
    amountMsat: 10_000n,
    feeMsat: 0n,
    reference: `hash-${id}`,
    status: 'succeeded',
    ...fields,
  };
}

const entries = [
  entry('p1', { time: t(3), feeMsat: 1_000n, proof: 'ab'.repeat(32) }),
  entry('p2', {
    time: t(2),
    origin: OTHER,
    url: `${OTHER}/search?q=${'x'.repeat(80)}`,
    protocol: 'x402',
    amount: 10_000n,
    unit: 'eip155:8453/erc20:0x833589fcd6edb6e08f4c7c32d4f71b54bda02913',
    amountMsat: 15_385n,
    rate: 'usd_per_btc=65000',
    payee: '0xAbC',
    tags: { agent: 'a1', task: '42' },
  }),
  entry('p3', { time: t(1), status: 'failed', url: `${API}/a,"quoted"` }),
  entry('p4', {
    time: t(0),
    amountMsat: 2_500n,
    amount: 2_500n,
    status: 'pending',
    tags: { task: '42' },
  }),
];

beforeAll(async () => {
  const store = createSqliteClientStore({ path: db });
  for (const e of entries) await store.recordPayment(e);
  await store.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tollway ledger', () => {
  it('prints a table, newest first, with totals of succeeded payments per origin', async () => {
    const { code, stdout, stderr } = await runCli('ledger', '--db', db);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(/^TIME +KIND +ORIGIN +PROTOCOL +AMOUNT +FEE +STATUS +URL$/);
    expect(lines.slice(1, 5).map((l) => l.split(/ {2,}/).slice(1, 7))).toEqual([
      ['purchase', API, 'l402', '2.5 sat', '0 sat', 'pending'],
      ['purchase', API, 'l402', '10 sat', '0 sat', 'failed'],
      ['purchase', OTHER, 'x402', '15.385 sat', '0 sat', 'succeeded'],
      ['purchase', API, 'l402', '10 sat', '1 sat', 'succeeded'],
    ]);
    expect(lines[1]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z /);
    // URLs are cut to 48 characters.
    expect(lines[3]?.endsWith(`  ${OTHER}/search?q=${'x'.repeat(12)}…`)).toBe(true);
    const totals = stdout
      .split('Totals of succeeded payments per origin:\n')[1]!
      .trimEnd()
      .split('\n');
    expect(totals.map((l) => l.split(/ {2,}/))).toEqual([
      ['ORIGIN', 'PAYMENTS', 'AMOUNT', 'FEE'],
      [API, '1', '10 sat', '1 sat'],
      [OTHER, '1', '15.385 sat', '0 sat'],
    ]);
  });

  it('prints JSON with bigints as decimal strings', async () => {
    const { code, stdout } = await runCli('ledger', '--db', db, '--json');
    expect(code).toBe(0);
    const parsed = JSON.parse(stdout) as Array<Record<string, unknown>>;
    expect(parsed.map((e) => e.id)).toEqual(['p4', 'p3', 'p2', 'p1']);
    expect(parsed[2]).toEqual({
      ...entries[1],
      amount: '10000',
      amountMsat: '15385',
      feeMsat: '0',
    });
  });

  it('prints RFC 4180 CSV with a header row', async () => {
    const { code, stdout } = await runCli('ledger', '--db', db, '--csv', '--status', 'failed');
    expect(code).toBe(0);
    expect(stdout.split('\r\n')).toEqual([
      'id,time,origin,url,protocol,amount,unit,amount_msat,fee_msat,rate,status,reference,proof,payee,tags,kind,account',
      `p3,${new Date(t(1)).toISOString()},${API},"${API}/a,""quoted""",l402,10000,msat,10000,0,,failed,hash-p3,,,"{""agent"":""a1""}",purchase,`,
      '',
    ]);
  });

  it('filters by --since, --origin, --status, --tag and --limit', async () => {
    const ids = async (...args: string[]) => {
      const { code, stdout } = await runCli('ledger', '--db', db, '--json', ...args);
      expect(code).toBe(0);
      return (JSON.parse(stdout) as Array<{ id: string }>).map((e) => e.id);
    };
    expect(await ids('--since', '1h')).toEqual(['p4']);
    expect(await ids('--since', '150m')).toEqual(['p4', 'p3', 'p2']);
    expect(await ids('--since', new Date(t(1)).toISOString())).toEqual(['p4', 'p3']);
    expect(await ids('--origin', OTHER)).toEqual(['p2']);
    expect(await ids('--status', 'pending')).toEqual(['p4']);
    expect(await ids('--tag', 'task=42')).toEqual(['p4', 'p2']);
    expect(await ids('--limit', '2')).toEqual(['p4', 'p3']);
    const none = await runCli('ledger', '--db', db, '--origin', 'https://nobody.example');
    expect(none.stdout).toBe('no payments match\n');
  });

  it('says "no payments yet" for a missing database, without creating it', async () => {
    const missing = join(dir, 'nope', 'agent.sqlite');
    expect(await runCli('ledger', '--db', missing)).toEqual({
      code: 0,
      stdout: 'no payments yet\n',
      stderr: '',
    });
    expect((await runCli('ledger', '--db', missing, '--json')).stdout).toBe('[]\n');
    const saved = process.env.TOLLWAY_AGENT_DB;
    process.env.TOLLWAY_AGENT_DB = missing;
    try {
      expect((await runCli('ledger')).stdout).toBe('no payments yet\n');
      process.env.TOLLWAY_AGENT_DB = db;
      expect((await runCli('ledger', '--json')).stdout).toContain('"p4"');
    } finally {
      if (saved === undefined) delete process.env.TOLLWAY_AGENT_DB;
      else process.env.TOLLWAY_AGENT_DB = saved;
    }
    expect((await runCli('ledger', '--db', missing)).stdout).toBe('no payments yet\n');
  });

  it('prints spend grouped by origin, agent, task, model or any tag (--by)', async () => {
    const dbBy = join(dir, 'by.sqlite');
    const store = createSqliteClientStore({ path: dbBy });
    const at = { origin: API, url: `${API}/v1/chat/completions`, account: 'h1', reference: 'h1' };
    const draw = (id: string, msat: bigint, tags: Record<string, string>) =>
      entry(id, { ...at, kind: 'draw', amount: msat, amountMsat: msat, tags });
    for (const e of [
      entry('buy', { ...at, amountMsat: 50_000n, amount: 50_000n, feeMsat: 1_000n, tags: {} }),
      draw('d1', 2_100n, { agent: 'a1', task: 'report', model: 'gpt-4o-mini' }),
      draw('d2', 3_400n, { agent: 'a1', task: 'search', model: 'claude-sonnet-4' }),
      draw('d3', 1_000n, { agent: 'a2', task: 'report', model: 'gpt-4o-mini' }),
      entry('r1', { ...at, kind: 'release', amount: 0n, amountMsat: 0n, tags: { agent: 'a2' } }),
      entry('s1', {
        ...at,
        kind: 'draw',
        status: 'pending',
        amountMsat: 8_000n,
        tags: { agent: 'a2', task: 'report', model: 'gpt-4o-mini' },
      }),
      entry('back', { ...at, kind: 'refund', amountMsat: 20_000n, amount: 20_000n, tags: {} }),
    ]) {
      await store.recordPayment(e);
    }
    await store.close();
    const spend = async (...args: string[]) => {
      const { code, stdout, stderr } = await runCli('ledger', '--db', dbBy, ...args);
      expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
      return stdout;
    };
    const json = async (...args: string[]) =>
      JSON.parse(await spend(...args, '--json')) as Array<Record<string, unknown>>;
    const byModel = (await spend('--by', 'model')).trimEnd().split('\n');
    expect(byModel.map((l) => l.split(/ {2,}/))).toEqual([
      ['MODEL', 'PAID', 'FEES', 'REFUNDED', 'NET', 'CALLS', 'CHARGED', 'UNSETTLED', 'RELEASED'],
      ['(none)', '50 sat (1)', '1 sat', '20 sat', '31 sat', '0', '0 sat', '0 sat', '1'],
      ['claude-sonnet-4', '0 sat (0)', '0 sat', '0 sat', '0 sat', '1', '3.4 sat', '0 sat', '0'],
      ['gpt-4o-mini', '0 sat (0)', '0 sat', '0 sat', '0 sat', '3', '3.1 sat', '8 sat', '0'],
    ]);
    const byTask = await json('--by', 'task');
    expect(byTask.map((r) => [r.key, r.calls, r.chargedMsat, r.unsettledMsat])).toEqual([
      ['', 0, '0', '0'],
      ['report', 3, '3100', '8000'],
      ['search', 1, '3400', '0'],
    ]);
    const byAgent = await json('--by', 'agent', '--kind', 'draw', '--status', 'succeeded');
    expect(byAgent.map((r) => [r.key, r.chargedMsat])).toEqual([
      ['a1', '5500'],
      ['a2', '1000'],
    ]);
    expect(await json('--by', 'origin')).toEqual([
      {
        key: API,
        purchases: 1,
        paidMsat: '50000',
        feeMsat: '1000',
        refundedMsat: '20000',
        netMsat: '31000',
        calls: 4,
        chargedMsat: '6500',
        unsettledMsat: '8000',
        released: 1,
      },
    ]);
    expect(await spend('--by', 'tag:team')).toMatch(/^TEAM +PAID/);
  });

  it('refuses bad options with exit 64', async () => {
    for (const args of [
      ['--by', 'colour'],
      ['--by', 'task', '--csv'],
      ['--kind', 'gift'],
      ['--since', 'yesterday'],
      ['--status', 'paid'],
      ['--tag', 'task'],
      ['--limit', '-1'],
      ['--json', '--csv'],
      ['--serve', '--json'],
      ['--serve', '--by', 'task'],
      ['--serve', '--port', 'http'],
      ['--serve', '--budget-day', '$5'],
      ['--port', '3403'],
      ['--host', '0.0.0.0'],
      ['--budget-day', '1000'],
    ]) {
      const { code, stderr } = await runCli('ledger', '--db', db, ...args);
      expect({ args, code }).toEqual({ args, code: 64 });
      expect(stderr).toMatch(/^tollway ledger: /);
    }
  });
});

describe('tollway ledger --serve (the built bin)', () => {
  const BIN = new URL('../bin/tollway.js', import.meta.url).pathname;

  it('serves the ledger view of --db with the budget windows of its flags, until SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        BIN,
        'ledger',
        '--serve',
        '--port',
        '0',
        '--db',
        db,
        '--budget-day',
        '1000',
        '--token',
        't0k',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    let output = '';
    const signIn = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const link = /open (http:\/\/127\.0\.0\.1:\d+\/\?token=t0k) /.exec(output)?.[1];
        if (link !== undefined) resolve(link);
      });
      void exited.then((code) => reject(new Error(`exited with ${code}:\n${output}`)));
    });
    const url = new URL(signIn).origin;
    expect(output).toContain(`the ledger view of ${db} is at ${url}`);
    const bearer = { authorization: 'Bearer t0k' };
    const state = (await (await fetch(`${url}/api/budget`, { headers: bearer })).json()) as {
      windows: Array<{ window: string; limitMsat: string | null }>;
    };
    expect(state.windows.map((w) => [w.window, w.limitMsat])).toEqual([
      ['hour', null],
      ['day', '1000000'],
      ['month', null],
      ['total', null],
    ]);
    const entries = (await (await fetch(`${url}/api/entries`, { headers: bearer })).json()) as {
      entries: Array<{ id: string; proof?: string; resume?: string }>;
    };
    expect(entries.entries.map((e) => e.id)).toEqual(['p4', 'p3', 'p2', 'p1']);
    // What rebuilds a credential stays in the file.
    expect(entries.entries.some((e) => 'proof' in e || 'resume' in e)).toBe(false);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
