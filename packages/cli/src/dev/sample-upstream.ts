/**
 * The sample API that `tollway dev` puts behind its gateway: a plain `node:http` server that knows
 * nothing about payments. The gateway prices its routes (see {@link SAMPLE_PRICES}).
 *
 * | route | answer |
 * |---|---|
 * | `GET /free/hello` | a greeting (free) |
 * | `GET /v1/forecast?city=Oslo` | a made-up three-day forecast |
 * | `POST /v1/chat` `{"model": "…", "prompt": "…"}` | a canned chat reply |
 * | `GET /v1/stream` | five server-sent events, 100 ms apart |
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Prices the dev gateway puts on the sample routes. The chat price depends on the JSON `model`. */
export const SAMPLE_PRICES = {
  forecast: '10 sat',
  stream: '20 sat',
  chat: { 'tollway-mini': '5 sat', 'tollway-max': '50 sat' },
} as const;

/** Options of {@link createSampleUpstream}. */
export interface SampleUpstreamOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
}

/** A listening sample API. */
export interface SampleUpstream {
  /** e.g. `http://127.0.0.1:40123`. */
  url: string;
  /** Stops listening and cuts open connections (streams included). */
  close(): Promise<void>;
}

const SKIES = ['sunny', 'cloudy', 'rain', 'snow', 'windy', 'fog'] as const;
const DAYS = ['today', 'tomorrow', 'the day after'] as const;
const MAX_BODY_BYTES = 64 * 1024;
const STREAM_EVENTS = 5;
const STREAM_INTERVAL_MS = 100;

/** A made-up forecast, the same for the same city (so a demo reads the same every run). */
function forecast(city: string): Record<string, unknown> {
  const seed = createHash('sha256').update(city.toLowerCase()).digest();
  return {
    city,
    unit: '°C',
    days: DAYS.map((day, i) => ({
      day,
      sky: SKIES[(seed[i] ?? 0) % SKIES.length],
      highC: ((seed[i + 3] ?? 0) % 30) - 5,
    })),
  };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(`${JSON.stringify(body)}\n`);
}

function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(size > MAX_BODY_BYTES ? undefined : JSON.parse(Buffer.concat(chunks).toString()));
      } catch {
        resolve(undefined);
      }
    });
    req.on('error', () => resolve(undefined));
  });
}

function chat(body: unknown): { status: number; body: Record<string, unknown> } {
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const { model, prompt } = fields;
  if (typeof model !== 'string' || typeof prompt !== 'string') {
    return {
      status: 400,
      body: { error: 'send JSON {"model": "tollway-mini" or "tollway-max", "prompt": "…"}' },
    };
  }
  const words = prompt.trim().split(/\s+/).filter(Boolean).length;
  return {
    status: 200,
    body: { model, reply: `(${model}) You wrote ${words} word${words === 1 ? '' : 's'}. Thanks!` },
  };
}

function stream(req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  let sent = 0;
  const timer = setInterval(() => {
    sent += 1;
    res.write(`data: ${JSON.stringify({ tick: sent, of: STREAM_EVENTS })}\n\n`);
    if (sent === STREAM_EVENTS) {
      clearInterval(timer);
      res.end('event: end\ndata: {}\n\n');
    }
  }, STREAM_INTERVAL_MS);
  req.on('close', () => clearInterval(timer));
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://upstream.invalid');
  const route = `${req.method ?? 'GET'} ${url.pathname}`;
  if (route === 'GET /free/hello') {
    return sendJson(res, 200, { message: 'Hello from the sample API. This route is free.' });
  }
  if (route === 'GET /v1/forecast') {
    const city = url.searchParams.get('city');
    if (city === null || city.trim() === '') {
      return sendJson(res, 400, { error: 'give a city: /v1/forecast?city=Oslo' });
    }
    return sendJson(res, 200, forecast(city.trim().slice(0, 80)));
  }
  if (route === 'POST /v1/chat') {
    const answer = chat(await readJson(req));
    return sendJson(res, answer.status, answer.body);
  }
  if (route === 'GET /v1/stream') return stream(req, res);
  sendJson(res, 404, {
    error: 'no such route',
    routes: ['GET /free/hello', 'GET /v1/forecast?city=', 'POST /v1/chat', 'GET /v1/stream'],
  });
}

/**
 * Starts the sample API on loopback.
 *
 * @example
 * ```ts
 * const upstream = await createSampleUpstream();
 * await fetch(`${upstream.url}/v1/forecast?city=Oslo`); // 200, free: the gateway charges, not this
 * await upstream.close();
 * ```
 */
export async function createSampleUpstream(
  options: SampleUpstreamOptions = {},
): Promise<SampleUpstream> {
  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, { error: 'the sample API failed' });
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
