import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  readL402Manifest,
  readOpenApi,
  readX402Manifest,
  UnreadableDocument,
} from './discovery-formats.js';

const origin = 'https://api.example';
const readers = { readL402Manifest, readX402Manifest, readOpenApi };

/** Runs `read`: its endpoints, or the UnreadableDocument it threw; any other throw fails. */
function outcome(read: (value: unknown, origin: string) => unknown, value: unknown) {
  try {
    return read(value, origin);
  } catch (error) {
    expect(error).toBeInstanceOf(UnreadableDocument);
    return error;
  }
}

/** Strings a document may hold where a URL or path is expected, malformed ones among them. */
const urlish = fc.oneof(
  fc.constantFrom('http://[', 'https://', '//', '^/a.*$', '/ok', 'https://other.example/x', ''),
  fc.string({ maxLength: 12 }),
);

describe('discovery document readers', () => {
  it('read any JSON into endpoints or refuse it as unreadable, never throw otherwise', () => {
    for (const [name, read] of Object.entries(readers)) {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const result = outcome(read, value);
          if (!(result instanceof UnreadableDocument))
            expect(Array.isArray(result), name).toBe(true);
        }),
      );
    }
  });

  it('skip entries whose URL cannot be read, keeping the others', () => {
    fc.assert(
      fc.property(urlish, urlish, (bad, server) => {
        const l402 = {
          version: '1.0',
          services: [{ name: 's', resources: [{ path: bad }, { path: '/fine' }] }],
        };
        const x402 = {
          items: [
            { resource: bad, accepts: [{ asset: '0xA', network: 'eip155:1', amount: '1' }] },
            { resource: '/fine', accepts: [{ asset: '0xA', network: 'eip155:1', amount: '1' }] },
          ],
        };
        const openapi = {
          openapi: '3.1.0',
          servers: [{ url: server }],
          paths: {
            [bad]: { get: { 'x-payment-info': { intent: 'charge', method: 'm', amount: '1' } } },
          },
        };
        expect(outcome(readOpenApi, openapi)).toSatisfy(
          (result) => Array.isArray(result) || result instanceof UnreadableDocument,
        );
        const fine = (list: Array<{ url: string }>) => list.some((e) => e.url.endsWith('/fine'));
        expect(fine(readL402Manifest(l402, origin))).toBe(true);
        expect(fine(readX402Manifest(x402, origin))).toBe(true);
      }),
    );
  });

  it('read the shapes their sources publish', () => {
    // Aperture PR #241: a path regexp and a fixed price in msat.
    expect(
      readL402Manifest(
        {
          version: '1.0',
          services: [
            {
              name: 'loop',
              resources: [
                {
                  path: '^/looprpc.SwapServer/LoopOutTerms.*$',
                  pricing: { model: 'fixed', price_msat: 1000 },
                },
              ],
            },
          ],
        },
        origin,
      ),
    ).toEqual([
      {
        url: `${origin}/looprpc.SwapServer/LoopOutTerms`,
        method: 'GET',
        service: 'loop',
        prices: [{ protocol: 'l402', unit: 'msat', amount: '1000' }],
        sources: ['l402'],
      },
    ]);
    // The MPP discovery draft: a server URL with a base path, and an offers list.
    expect(
      readOpenApi(
        {
          openapi: '3.1.0',
          servers: [{ url: 'https://api.example/v1' }],
          paths: {
            '/chat': {
              post: {
                summary: 'Chat',
                'x-payment-info': {
                  offers: [{ intent: 'charge', method: 'lightning', amount: '5', currency: 'sat' }],
                },
              },
            },
          },
        },
        origin,
      ),
    ).toEqual([
      {
        url: `${origin}/v1/chat`,
        method: 'POST',
        description: 'Chat',
        prices: [{ protocol: 'mpp', unit: 'sat', amount: '5' }],
        sources: ['openapi'],
      },
    ]);
  });
});
