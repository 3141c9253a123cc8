// The baseline of the gateway benches: a plain reverse proxy on the stack `tollway serve` is built
// on (node:http + an undici pool), passing requests and answers through without payment.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'host',
]);

/**
 * A node:http server proxying to `upstream`, hop-by-hop headers dropped both ways. `withBody`:
 * the request's body is streamed upstream (false sends none, for GET benches).
 */
export function createPlainProxy(upstream, { withBody }) {
  const pool = new Pool(upstream, { connections: 256 });
  return createServer({ noDelay: true }, (req, res) => {
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (!HOP_BY_HOP.has(req.rawHeaders[i].toLowerCase()))
        headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    pool.stream(
      { path: req.url, method: req.method, headers, body: withBody ? req : null },
      ({ statusCode, headers: answered }) => {
        const out = {};
        for (const [name, value] of Object.entries(answered))
          if (!HOP_BY_HOP.has(name)) out[name] = value;
        res.writeHead(statusCode, out);
        return res;
      },
      (error) => {
        if (error && !res.headersSent) {
          res.statusCode = 502;
          res.end();
        }
      },
    );
  });
}
