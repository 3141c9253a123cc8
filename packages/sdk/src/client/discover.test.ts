import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isTollwayError } from '../errors.js';
import { discover } from './discover.js';

const servers: Server[] = [];

async function serve(listener: RequestListener): Promise<string> {
  const server = createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

const x402Document = {
  x402Version: 2,
  items: [
    {
      resource: '/paid',
      accepts: [{ scheme: 'exact', network: 'eip155:8453', amount: '10', asset: '0xA' }],
    },
  ],
};

describe('discover', () => {
  it('reports a document too large, too slow or not JSON, and reads the others', async () => {
    const url = await serve((req, res) => {
      if (req.url === '/.well-known/l402.json') {
        // Five MiB of a JSON string, streamed: more than a document may be.
        res.write('{"version":"1.0","services":[],"pad":"');
        for (let i = 0; i < 5; i++) res.write('x'.repeat(1024 * 1024));
        res.end('"}');
      } else if (req.url === '/.well-known/x402.json') {
        res.end(JSON.stringify(x402Document));
      } else {
        res.end('<html>not json</html>');
      }
    });
    const found = await discover(url);
    expect(found.documents).toEqual([
      { format: 'l402', url: `${url}/.well-known/l402.json`, error: 'larger than 4194304 bytes' },
      { format: 'x402', url: `${url}/.well-known/x402.json`, endpoints: 1 },
      { format: 'openapi', url: `${url}/openapi.json`, error: 'not JSON' },
    ]);
    expect(found.endpoints).toEqual([
      {
        url: `${url}/paid`,
        method: 'GET',
        prices: [{ protocol: 'x402', unit: '0xA', network: 'eip155:8453', amount: '10' }],
        sources: ['x402'],
      },
    ]);
  });

  it('throws no_discovery when no document can be read, each reason in its details', async () => {
    const url = await serve((req, res) => {
      if (req.url === '/openapi.json') return; // never answers
      res.writeHead(404).end();
    });
    const error = await discover(url, { timeoutMs: 300 }).catch((caught: unknown) => caught);
    expect(isTollwayError(error) && error.code).toBe('no_discovery');
    const documents = (error as { details: { documents: Array<{ error: string }> } }).details
      .documents;
    expect(documents.map((document) => document.error)).toEqual([
      'HTTP 404',
      'HTTP 404',
      expect.stringMatching(/abort|timeout/i),
    ]);
  });
});
