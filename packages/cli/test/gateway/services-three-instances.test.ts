/**
 * Services across three `tollway serve` processes on one PostgreSQL: a change made through one
 * instance's admin API is served by the others within a second and survives a restart of all;
 * SIGHUP reloads an instance's YAML (and a YAML that does not check leaves the running config).
 * Needs `npm run build` (CI builds before testing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Cluster, startCluster } from './cluster.js';
import { startUpstream, type Upstream } from './support.js';

const ADMIN = 'three-instances-admin-token-0123';
const postgres = await startTestPostgres();

let cluster: Cluster;
let upstream: Upstream;

/** Instance `name`'s lines after the shared head: the base service and `extra` under `services:`. */
function linesOf(extra: string[] = []): string[] {
  return [
    `admin: { token: ${ADMIN} }`,
    // The tests poll for 402s many times a second: no challenge limit may answer 429 instead.
    'paywall: { rateLimits: { challenges: false, challengesTotal: false } }',
    'services:',
    '  - { name: base, path: /base, upstream: "${UPSTREAM}", price: 5 sat }',
    ...extra,
  ];
}

/** Rewrites instance `name`'s YAML with `extra` lines under `services:`. */
function writeConfig(name: string, extra: string[]): void {
  cluster.writeConfig(name, linesOf(extra));
}

async function startAll(): Promise<void> {
  for (const name of ['a', 'b', 'c']) await cluster.start(name, linesOf());
}

beforeAll(async () => {
  if (postgres === undefined) return;
  upstream = await startUpstream((req, res) => {
    res.end(JSON.stringify({ url: req.url }));
  });
  cluster = await startCluster(postgres, { UPSTREAM: upstream.url });
  await startAll();
});

afterAll(async () => {
  await cluster?.close();
  await upstream?.close();
  await postgres?.stop();
});

const instance = (index: number) => cluster.instance(index);

function admin(index: number, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${instance(index).url}/_tollway${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
  });
}

/** What an instance asks for `path`: the price of its 402 in msat, or the status. */
async function priceAt(index: number, path: string): Promise<string | number> {
  const response = await fetch(`${instance(index).url}${path}`);
  if (response.status !== 402) {
    await response.arrayBuffer();
    return response.status;
  }
  return ((await response.json()) as { price: { amount: string } }).price.amount;
}

/** Polls until every instance in `indexes` answers `path` with `expected`; how long it took, ms. */
async function untilAll(indexes: number[], path: string, expected: string | number) {
  const started = performance.now();
  for (;;) {
    const seen = await Promise.all(indexes.map((index) => priceAt(index, path)));
    if (seen.every((value) => value === expected)) return performance.now() - started;
    if (performance.now() - started > 5000) {
      throw new Error(`after 5 s, ${path} is ${JSON.stringify(seen)}, not ${expected}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe.skipIf(postgres === undefined)('services across three instances on one PostgreSQL', () => {
  it('serves an admin change made on one instance on the others within a second, and after a restart of all', async () => {
    expect(await priceAt(1, '/added/x')).toBe(404);
    const created = await admin(0, '/services', {
      method: 'POST',
      body: JSON.stringify({
        name: 'added',
        path: '/added',
        upstream: upstream.url,
        price: '7 sat',
      }),
    });
    expect(created.status).toBe(201);
    expect(await priceAt(0, '/added/x')).toBe('7000');
    expect(await untilAll([1, 2], '/added/x', '7000')).toBeLessThan(1000);

    const replaced = await admin(1, '/services/added', {
      method: 'PUT',
      body: JSON.stringify({ path: '/added', upstream: upstream.url, price: '9 sat' }),
    });
    expect(replaced.status).toBe(200);
    expect(await untilAll([0, 2], '/added/x', '9000')).toBeLessThan(1000);
    // A service of the YAML deleted through one instance is gone from all.
    expect((await admin(2, '/services/base', { method: 'DELETE' })).status).toBe(204);
    expect(await untilAll([0, 1], '/base/x', 404)).toBeLessThan(1000);

    await cluster.stopAll();
    await startAll();
    expect(await Promise.all([0, 1, 2].map((index) => priceAt(index, '/added/x')))).toEqual([
      '9000',
      '9000',
      '9000',
    ]);
    expect(await Promise.all([0, 1, 2].map((index) => priceAt(index, '/base/x')))).toEqual([
      404, 404, 404,
    ]);
    const listed = (await (await admin(1, '/services')).json()) as {
      services: Array<{ name: string; source: string }>;
    };
    expect(listed.services).toEqual([expect.objectContaining({ name: 'added', source: 'admin' })]);
  });

  it('reloads the YAML on SIGHUP, and keeps the running config when the new one does not check', async () => {
    writeConfig('a', ['  - { name: fresh, path: /fresh, upstream: "${UPSTREAM}", price: 3 sat }']);
    instance(0).process.kill('SIGHUP');
    await untilAll([0], '/fresh/x', '3000');
    // Only the instance whose YAML changed serves it: the YAML is each instance's own.
    expect(await priceAt(1, '/fresh/x')).toBe(404);
    // The overlay still applies on top: `added` is served, `base` stays deleted.
    expect(await priceAt(0, '/added/x')).toBe('9000');
    expect(await priceAt(0, '/base/x')).toBe(404);

    writeConfig('a', ['  - { name: fresh, path: /fresh, upstream: "${UPSTREAM}", price: lots }']);
    instance(0).process.kill('SIGHUP');
    // The refusal is logged; give the instance time to have read and refused the file.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await priceAt(0, '/fresh/x')).toBe('3000');
    expect(instance(0).process.exitCode).toBeNull();
  });
});
