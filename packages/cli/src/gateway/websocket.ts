/**
 * WebSockets through the gateway. The upgrade request is a paid request like any other: the
 * engine decides it, and a 402 (or any refusal) is the answer to the upgrade. Once it passes, the
 * gateway opens the WebSocket to the upstream first (same path, the client's subprotocols, the
 * proxy's forwarded headers), then accepts the client's upgrade with the subprotocol the upstream
 * chose — the upgrade is charged then, the receipt in the 101 — and relays messages both ways,
 * with back-pressure, until either side closes (its close code and reason passed on).
 *
 * A credential with an expiry (an L402 token with `validFor`) closes the socket when it expires:
 * close code 4402, reason `payment expired`. A service's `websocket` block prices the open socket
 * (websocket-meter.ts): when the balance cannot pay on, close code 4402, reason `balance
 * exhausted`. Before either, the client is told in a text frame (unless `notice: false`):
 * `{"type":"tollway.payment","event":"expiring","expiresAt":…}` thirty seconds ahead, and
 * `{"type":"tollway.payment","event":"balance_low","remaining":"… msat"}` when the balance runs low.
 * An upgrade the upstream refuses is passed on (its status, headers and body) and charged as its
 * status says; one that fails is answered 502 or 504 and not charged. Guide:
 * docs/guides/websockets.md.
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { parseAmount, parseUsdPerBtc, usdToMsat } from '@tollway/sdk';
import type { PaywallDecision } from '@tollway/sdk/server';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import type { WebsocketPricing } from './config.js';
import { writeSocketAnswer, writeSocketProblem } from './http-server.js';
import { readServiceCa } from './http2-upstreams.js';
import type { GatewayMetrics } from './metrics.js';
import { createUpstreamRequest, DEFAULT_TIMEOUTS } from './proxy.js';
import type { Service } from './services.js';
import { createSocketMeter, type SocketMeter } from './websocket-meter.js';

/** The close code of a socket whose payment ran out (4000-4999: for applications, RFC 6455 §7.4.2). */
const PAYMENT_CLOSE_CODE = 4402;

/** How long before a credential expires the client is told, ms. */
const EXPIRY_NOTICE_MS = 30_000;

/** How long the upstream has to close a socket whose payment ran out before it is cut, ms. */
const CUT_OFF_GRACE_MS = 1000;

/** Past this much waiting to be sent on one side, the other side is paused. */
const HIGH_WATER = 1024 * 1024;

/** The longest delay `setTimeout` takes (longer ones fire at once). */
const MAX_DELAY_MS = 2_147_483_647;

/** Handshake headers the WebSocket client writes itself. */
const HANDSHAKE_HEADERS = new Set([
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  'host',
]);

/** One passed upgrade, on its way upstream. */
export interface WebSocketUpgrade {
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  service: Service;
  decision: Extract<PaywallDecision, { kind: 'pass' }>;
  host: string | undefined;
  trustProxy: boolean | number;
  metrics: GatewayMetrics;
  /** The gateway's `paywall.usdPerBtc`, for dollar prices in the `websocket` block. */
  usdPerBtc: string | number | undefined;
}

/** See {@link createWebSocketProxy}. */
export interface WebSocketProxy {
  /** Proxies one passed upgrade; resolves once the socket is open or refused. */
  serve(upgrade: WebSocketUpgrade): Promise<void>;
  /** Closes every proxied socket (close code 1001, going away). */
  close(): void;
}

/** A close code that may be sent (1005, 1006 and 1015 only describe what happened). */
function sendableCode(code: number): number {
  return code === 1005 || code === 1006 || code === 1015 ? 1000 : code;
}

function msatOf(text: string | undefined, usdPerBtc: string | number | undefined) {
  if (text === undefined) return undefined;
  const amount = parseAmount(text);
  if (amount.unit === 'msat') return amount.msat;
  return usdToMsat(amount.microUsd, parseUsdPerBtc(usdPerBtc ?? 0), 'ceil');
}

/** The URL and headers of the upstream WebSocket. */
function upstreamTarget(upgrade: WebSocketUpgrade) {
  const { req, service } = upgrade;
  const url = new URL(service.rewrite(req.url ?? '/'), service.origin);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const flat = createUpstreamRequest({ ...upgrade, payment: upgrade.decision.payment }).headers;
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = (flat[i] ?? '').toLowerCase();
    if (HANDSHAKE_HEADERS.has(name) && !(name === 'host' && service.config.preserveHost)) continue;
    const value = flat[i + 1] ?? '';
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const protocols = (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((protocol) => protocol.trim())
    .filter((protocol) => protocol !== '');
  return { url: url.href, headers, protocols };
}

/** Runs `action` at `at` (unix ms), however far off; returns the cancel. */
function at(time: number, action: () => void): () => void {
  let timer: ReturnType<typeof setTimeout>;
  const arm = (): void => {
    const delay = time - Date.now();
    timer = setTimeout(
      delay > MAX_DELAY_MS ? arm : action,
      Math.min(Math.max(delay, 0), MAX_DELAY_MS),
    );
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/** Sends `data` on `to`, pausing `from` while too much waits to be sent. */
function relay(from: WebSocket, to: WebSocket, data: RawData, binary: boolean): void {
  if (to.readyState !== WebSocket.OPEN) return;
  to.send(data, { binary }, () => {
    if (to.bufferedAmount < HIGH_WATER && from.isPaused) from.resume();
  });
  if (to.bufferedAmount >= HIGH_WATER) from.pause();
}

/**
 * Creates the WebSocket proxy of a gateway.
 *
 * @example
 * ```ts
 * const sockets = createWebSocketProxy();
 * await sockets.serve({ req, socket, head, service, decision, host, trustProxy, metrics, usdPerBtc });
 * ```
 */
export function createWebSocketProxy(): WebSocketProxy {
  const open = new Set<WebSocket>();
  /** The subprotocol the upstream chose, and the receipt, per upgrade being accepted. */
  const accepting = new WeakMap<IncomingMessage, { protocol: string; headers: string[] }>();
  const server = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    handleProtocols: (_offered, req) => accepting.get(req)?.protocol || false,
  });
  server.on('headers', (headers: string[], req: IncomingMessage) => {
    headers.push(...(accepting.get(req)?.headers ?? []));
  });

  /** Relays messages between the two sockets until one closes; see the module comment. */
  function pipe(
    client: WebSocket,
    upstream: WebSocket,
    upgrade: WebSocketUpgrade,
    meter?: SocketMeter,
  ) {
    const pricing = upgrade.service.config.websocket;
    const notice = (event: Record<string, string>): void => {
      if (pricing?.notice === false || client.readyState !== WebSocket.OPEN) return;
      client.send(JSON.stringify({ type: 'tollway.payment', ...event }));
    };
    const cancels: Array<() => void> = [];
    let closed = false;
    /** Ends the pair: both sides are closed with `code` and `reason`, the meter stopped. */
    const end = (code: number, reason: string): void => {
      if (closed) return;
      closed = true;
      for (const cancel of cancels) cancel();
      open.delete(client);
      void meter?.stop();
      for (const side of [client, upstream]) {
        if (side.readyState === WebSocket.OPEN) side.close(code, reason);
        else if (side.readyState === WebSocket.CONNECTING) side.terminate();
      }
    };
    /**
     * The payment ran out: no more messages are paid for; the upstream is closed first, so that
     * its answers to the messages already forwarded reach the client before the client's close.
     */
    let ending: string | undefined;
    const cutOff = (reason: string): void => {
      if (ending !== undefined || closed) return;
      ending = reason;
      if (upstream.readyState !== WebSocket.OPEN) {
        end(PAYMENT_CLOSE_CODE, reason);
        return;
      }
      upstream.close(PAYMENT_CLOSE_CODE, reason);
      const force = setTimeout(() => end(PAYMENT_CLOSE_CODE, reason), CUT_OFF_GRACE_MS);
      force.unref();
      cancels.push(() => clearTimeout(force));
    };
    const expiresAt = upgrade.decision.payment.expiresAt;
    if (expiresAt !== undefined) {
      cancels.push(
        at(expiresAt - EXPIRY_NOTICE_MS, () =>
          notice({ event: 'expiring', expiresAt: new Date(expiresAt).toISOString() }),
        ),
        at(expiresAt, () => cutOff('payment expired')),
      );
    }
    const counted = (direction: 'client' | 'upstream'): boolean =>
      meter !== undefined &&
      pricing?.perMessage !== undefined &&
      (pricing.messages === 'both' || pricing.messages === direction);
    let paid = Promise.resolve();
    const forward = (from: WebSocket, to: WebSocket, direction: 'client' | 'upstream') => {
      const metered = counted(direction);
      from.on('message', (data, binary) => {
        if (!metered) return relay(from, to, data, binary);
        // Paid in order: a message leaves once its draw is held, or closes the socket.
        paid = paid.then(async () => {
          if (closed || ending !== undefined) return;
          if (await meter?.message()) relay(from, to, data, binary);
          else cutOff('balance exhausted');
        });
      });
    };
    forward(client, upstream, 'client');
    forward(upstream, client, 'upstream');
    client.on('close', (code, reason) => end(sendableCode(code), reason.toString()));
    upstream.on('close', (code, reason) =>
      ending === undefined
        ? end(sendableCode(code), reason.toString())
        : end(PAYMENT_CLOSE_CODE, ending),
    );
    client.on('error', () => upstream.terminate());
    upstream.on('error', () => client.terminate());
    return { notice, cutOff };
  }

  async function accept(upgrade: WebSocketUpgrade, upstream: WebSocket): Promise<void> {
    const { req, socket, head, service, decision } = upgrade;
    const pricing: WebsocketPricing | undefined = service.config.websocket;
    let meter: SocketMeter | undefined;
    // Until the client's socket is open, a low balance is noted, and told once it is.
    let lowBeforeOpen: bigint | undefined;
    const events = {
      low: (remaining: bigint) => {
        lowBeforeOpen = remaining;
      },
      exhausted: () => {},
    };
    if (pricing !== undefined && decision.draw !== undefined) {
      meter = createSocketMeter(
        decision.draw,
        {
          perPeriodMsat: msatOf(pricing.perPeriod, upgrade.usdPerBtc),
          periodMs: pricing.period,
          perMessageMsat: msatOf(pricing.perMessage, upgrade.usdPerBtc),
        },
        { low: (remaining) => events.low(remaining), exhausted: () => events.exhausted() },
      );
      if (!(await meter.start())) {
        upstream.close(1000);
        writeSocketProblem(
          socket,
          {
            code: 'balance_exhausted',
            detail: `The balance left cannot pay the first period of ${service.name}'s socket.`,
          },
          decision.charge?.release() ?? [],
        );
        return;
      }
    }
    const final = (await decision.charge?.commit(101)) ?? { kind: 'pass' as const, headers: [] };
    if (final.kind === 'respond') {
      upstream.close(1000);
      void meter?.stop();
      writeSocketAnswer(socket, final.response);
      return;
    }
    const receipt = [...decision.headers, ...final.headers].map(
      ([name, value]) => `${name}: ${value}`,
    );
    accepting.set(req, { protocol: upstream.protocol, headers: receipt });
    server.handleUpgrade(req, socket, head, (client) => {
      accepting.delete(req);
      open.add(client);
      const piped = pipe(client, upstream, upgrade, meter);
      const low = (remaining: bigint): void =>
        piped.notice({ event: 'balance_low', remaining: `${remaining} msat` });
      events.low = low;
      events.exhausted = () => piped.cutOff('balance exhausted');
      if (lowBeforeOpen !== undefined) low(lowBeforeOpen);
    });
  }

  return {
    serve(upgrade) {
      const { socket, service, decision, metrics } = upgrade;
      const target = upstreamTarget(upgrade);
      const { tls, timeouts } = service.config;
      const ca = readServiceCa(service);
      const sentAt = performance.now();
      const upstream = new WebSocket(target.url, target.protocols, {
        headers: target.headers,
        perMessageDeflate: false,
        handshakeTimeout: timeouts?.response ?? DEFAULT_TIMEOUTS.response,
        rejectUnauthorized: tls?.insecureSkipVerify !== true,
        ...(ca === undefined ? {} : { ca }),
      });
      return new Promise<void>((resolve) => {
        const failed = (error: Error): void => {
          const code = /timed? ?out/i.test(error.message)
            ? 'upstream_timeout'
            : 'upstream_unavailable';
          metrics.upstreamError(service.name, code);
          writeSocketProblem(
            socket,
            {
              code,
              detail: `The upstream of ${service.name} did not take the WebSocket; nothing was charged.`,
            },
            decision.charge?.release() ?? [],
          );
          resolve();
        };
        upstream.once('error', failed);
        upstream.once('unexpected-response', (_request, response) => {
          upstream.off('error', failed);
          void passRefusal(upgrade, response).finally(resolve);
        });
        upstream.once('open', () => {
          upstream.off('error', failed);
          metrics.upstream(service.name, (performance.now() - sentAt) / 1000);
          accept(upgrade, upstream)
            .catch(() => {
              upstream.terminate();
              socket.destroy();
            })
            .finally(resolve);
        });
        socket.once('close', () => {
          if (upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
        });
      });
    },
    close() {
      for (const client of open) client.close(1001, 'gateway shutting down');
      open.clear();
    },
  };
}

/** The upstream answered the upgrade without upgrading: its answer is passed on, and charged by its status. */
async function passRefusal(upgrade: WebSocketUpgrade, response: IncomingMessage): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  const status = response.statusCode ?? 502;
  const final = (await upgrade.decision.charge?.commit(status)) ?? {
    kind: 'pass' as const,
    headers: [],
  };
  if (final.kind === 'respond') return writeSocketAnswer(upgrade.socket, final.response);
  const headers: Array<[string, string]> = [];
  for (let i = 0; i + 1 < response.rawHeaders.length; i += 2) {
    headers.push([response.rawHeaders[i] ?? '', response.rawHeaders[i + 1] ?? '']);
  }
  writeSocketAnswer(upgrade.socket, {
    status,
    headers: [...headers, ...upgrade.decision.headers, ...final.headers],
    body: Buffer.concat(chunks),
  });
}
