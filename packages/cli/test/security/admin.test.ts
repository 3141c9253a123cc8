// Security of the admin surface: what a holder of the admin token (or a page the dashboard's browser
// visits) can and cannot reach. The operator's environment belongs to the config file: data sent
// over the admin API never expands `${ENV}` unless the config names the variable in `admin.env`.
// Changes authorised by the dashboard cookie must come from the gateway's own origin (CSRF).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/gateway/gateway.js';
import { ADMIN_TOKEN, createHarness, type Harness } from './support.js';

let harness: Harness;
beforeAll(async () => {
  harness = await createHarness();
});
afterEach(() => harness.reset());
afterAll(() => harness.close());

const SECRET = 'the-master-secret-of-the-operator';

function admin(gateway: Gateway, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${gateway.adminUrl}${path}`, {
    ...init,
    headers: {
      authorization: `Bearer ${ADMIN_TOKEN}`,
      'content-type': 'application/json',
      ...init.headers,
    },
  });
}

describe('admin API data never reads the environment (finding 1)', () => {
  it('refuses a service whose header names an environment variable the config did not allow', async () => {
    const gateway = await harness.start({ services: [] }, { env: { TW_SECRETS: SECRET } });
    const created = await admin(gateway, '/services', {
      method: 'POST',
      body: JSON.stringify({
        name: 'leak',
        path: '/leak',
        upstream: harness.upstream.url,
        auth: 'off',
        headers: { 'X-Leak': '${TW_SECRETS}', 'X-Default': '${TW_SECRETS:-x}' },
      }),
    });
    expect(created.status).toBe(400);
    const problem = (await created.json()) as { code: string; detail: string };
    expect(problem.code).toBe('invalid_config');
    expect(problem.detail).toContain('admin.env');
    expect((await fetch(`${gateway.url}/leak`)).status).toBe(404);
    expect(JSON.stringify(harness.received)).not.toContain(SECRET);
  });

  it('expands only the variables listed in admin.env; `$$` stays a literal dollar', async () => {
    const gateway = await harness.start(
      { admin: { token: ADMIN_TOKEN, env: ['UPSTREAM_KEY'] }, services: [] },
      { env: { UPSTREAM_KEY: 'k-123', TW_SECRETS: SECRET } },
    );
    const created = await admin(gateway, '/services', {
      method: 'POST',
      body: JSON.stringify({
        name: 'api',
        upstream: harness.upstream.url,
        auth: 'off',
        headers: { 'X-Api-Key': '${UPSTREAM_KEY}', 'X-Literal': '$${TW_SECRETS}' },
      }),
    });
    expect(created.status).toBe(201);
    expect((await fetch(`${gateway.url}/x`)).status).toBe(200);
    expect(harness.received[0]?.headers).toMatchObject({
      'x-api-key': 'k-123',
      'x-literal': '${TW_SECRETS}',
    });
  });

  it('refuses, at start, an overlay file that names a variable the config did not allow', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollway-overlay-'));
    writeFileSync(
      join(dir, 'services.json'),
      JSON.stringify({
        services: [
          {
            name: 'leak',
            service: {
              upstream: harness.upstream.url,
              auth: 'off',
              headers: { X: '${TW_SECRETS}' },
            },
          },
        ],
      }),
    );
    const error = await harness
      .start({ dataDir: dir, services: [] }, { env: { TW_SECRETS: SECRET } })
      .catch((caught: unknown) => caught);
    rmSync(dir, { recursive: true, force: true });
    expect(String(error)).toContain('admin.env');
  });

  it('refuses header values that would break the request line (CR, LF, NUL), from the API and the file', async () => {
    const gateway = await harness.start({ services: [] });
    const created = await admin(gateway, '/services', {
      method: 'POST',
      body: JSON.stringify({
        name: 'split',
        upstream: harness.upstream.url,
        auth: 'off',
        headers: { 'X-Split': 'a\r\nX-Injected: 1' },
      }),
    });
    expect(created.status).toBe(400);
    expect(await created.json()).toMatchObject({ code: 'invalid_config' });
    await expect(
      harness.start({
        services: [
          { name: 's', upstream: harness.upstream.url, auth: 'off', headers: { X: 'a\u0000b' } },
        ],
      }),
    ).rejects.toThrow(/headers\.X/);
  });
});

describe('the dashboard cookie authorises changes only from the gateway itself (finding 2)', () => {
  async function login(gateway: Gateway): Promise<string> {
    const answer = await fetch(`${gateway.adminUrl}/dashboard?token=${ADMIN_TOKEN}`, {
      redirect: 'manual',
    });
    return (answer.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  }

  const service = (name: string) =>
    JSON.stringify({ name, path: `/${name}`, upstream: harness.upstream.url, auth: 'off' });

  it('refuses a cross-origin change made with the cookie, whatever its content type', async () => {
    const gateway = await harness.start({ services: [] });
    const cookie = await login(gateway);
    for (const [origin, type] of [
      ['http://evil.example', 'text/plain'],
      ['http://evil.example', 'application/json'],
      ['null', 'application/json'],
      [`http://localhost:1`, 'application/json'],
    ] as const) {
      const answer = await fetch(`${gateway.adminUrl}/services`, {
        method: 'POST',
        headers: { cookie, origin, 'content-type': type },
        body: service('evil'),
      });
      expect([origin, answer.status]).toEqual([origin, 403]);
      expect(await answer.json()).toMatchObject({ code: 'cross_origin_refused' });
    }
    const revoke = await fetch(`${gateway.adminUrl}/tokens/${'ab'.repeat(32)}`, {
      method: 'DELETE',
      headers: { cookie, origin: 'http://evil.example' },
    });
    expect(revoke.status).toBe(403);
    const listed = (await (await admin(gateway, '/services')).json()) as { services: unknown[] };
    expect(listed.services).toEqual([]);
  });

  it('refuses a cookie change without Origin, unless the browser says it is same-origin', async () => {
    const gateway = await harness.start({ services: [] });
    const cookie = await login(gateway);
    const bare = await fetch(`${gateway.adminUrl}/services`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: service('bare'),
    });
    expect(bare.status).toBe(403);
    const sameOrigin = await fetch(`${gateway.adminUrl}/services`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json', 'sec-fetch-site': 'same-origin' },
      body: service('fetched'),
    });
    expect(sameOrigin.status).toBe(201);
  });

  it('accepts the dashboard’s own requests (same Origin) and reads with the cookie alone', async () => {
    const gateway = await harness.start({ services: [] });
    const cookie = await login(gateway);
    const origin = new URL(gateway.url).origin;
    const created = await fetch(`${gateway.adminUrl}/services`, {
      method: 'POST',
      headers: { cookie, origin, 'content-type': 'application/json' },
      body: service('mine'),
    });
    expect(created.status).toBe(201);
    expect((await fetch(`${gateway.adminUrl}/services`, { headers: { cookie } })).status).toBe(200);
  });

  it('does not apply the origin rule to the bearer token (no browser sends it by itself)', async () => {
    const gateway = await harness.start({ services: [] });
    const created = await admin(gateway, '/services', {
      method: 'POST',
      headers: { origin: 'http://elsewhere.example' },
      body: service('scripted'),
    });
    expect(created.status).toBe(201);
  });
});
