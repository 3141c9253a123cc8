/**
 * Two `tollway serve` processes (the built CLI) on one PostgreSQL and one dev Lightning node: tokens,
 * revocations and use counts are shared. Needs `npm run build` (CI builds before testing).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestPostgres } from '../../../sdk/test/support/postgres.js';
import { type Cluster, startCluster } from './cluster.js';
import { payL402, startUpstream, tokenIdOf, type Upstream } from './support.js';

const ADMIN = 'two-instances-admin-token-0123';
const postgres = await startTestPostgres();

let cluster: Cluster;
let upstream: Upstream;

beforeAll(async () => {
  if (postgres === undefined) return;
  upstream = await startUpstream((req, res) => {
    res.end(JSON.stringify({ url: req.url, token: req.headers['x-tollway-token-id'] }));
  });
  cluster = await startCluster(postgres, { UPSTREAM: upstream.url });
  for (const name of ['a', 'b']) {
    await cluster.start(name, [
      `admin: { token: ${ADMIN} }`,
      'services:',
      '  - { name: three, path: /three, upstream: "${UPSTREAM}", price: 5 sat, uses: 3 }',
      '  - { name: api, upstream: "${UPSTREAM}", price: 5 sat }',
    ]);
  }
});

afterAll(async () => {
  await cluster?.close();
  await upstream?.close();
  await postgres?.stop();
});

const instance = (index: number) => cluster.instance(index);

describe.skipIf(postgres === undefined)('two tollway serve processes on one PostgreSQL', () => {
  it('accepts on one instance a token bought through the other', async () => {
    const agent = cluster.network.backend('agent');
    const authorization = await payL402(await fetch(`${instance(0).url}/x`), agent);
    const onB = await fetch(`${instance(1).url}/x`, { headers: { authorization } });
    expect(onB.status).toBe(200);
    expect(await onB.json()).toEqual({ url: '/x', token: tokenIdOf(authorization) });
  });

  it('carries a revocation made through one instance to the other within a second', async () => {
    const agent = cluster.network.backend('agent');
    const authorization = await payL402(await fetch(`${instance(1).url}/y`), agent);
    expect((await fetch(`${instance(0).url}/y`, { headers: { authorization } })).status).toBe(200);
    const revoked = await fetch(`${instance(1).url}/_tollway/tokens/${tokenIdOf(authorization)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(revoked.status).toBe(204);
    await vi.waitFor(
      async () => {
        const response = await fetch(`${instance(0).url}/y`, { headers: { authorization } });
        expect(response.status).toBe(401);
        expect(await response.json()).toMatchObject({ code: 'token_revoked' });
      },
      { timeout: 1000, interval: 50 },
    );
  });

  it('accepts a 3-use token exactly 3 times across both instances, even concurrently', async () => {
    const agent = cluster.network.backend('agent');
    const authorization = await payL402(await fetch(`${instance(0).url}/three`), agent);
    const statuses = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        fetch(`${instance(index % 2).url}/three/q${index}`, { headers: { authorization } }).then(
          async (response) => ({
            status: response.status,
            code:
              response.status === 200
                ? undefined
                : ((await response.json()) as { code: string }).code,
          }),
        ),
      ),
    );
    expect(statuses.filter((entry) => entry.status === 200)).toHaveLength(3);
    expect(statuses.filter((entry) => entry.status === 402).map((entry) => entry.code)).toEqual(
      Array(5).fill('uses_exhausted'),
    );
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const last = cluster.instances.pop();
    if (last === undefined) throw new Error('no instance');
    last.process.kill('SIGTERM');
    expect(await last.exited).toBe(0);
  });
});
