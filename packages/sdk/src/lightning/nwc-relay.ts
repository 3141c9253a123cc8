/**
 * A minimal Nostr relay client (NIP-01) for the NWC backend: one WebSocket (the `ws` package, since
 * Node 20 has no global WebSocket), subscriptions that are renewed after a reconnect, and publishing
 * that waits for the relay's `OK`. Internal: not exported from the package.
 *
 * Every event handed to a subscriber has a valid id and signature; frames that are not JSON or not
 * NIP-01 are ignored (a relay's junk is not the wallet's answer). Failures are `backend_unavailable`.
 */
import { type NostrEvent, verifyEvent } from 'nostr-tools/pure';
import WebSocket from 'ws';
import { z } from 'zod';
import { TollwayError } from '../errors.js';
import { bytesToHex } from '../internal/bytes.js';
import { randomBytes } from '../internal/crypto.js';

/** A NIP-01 filter (the fields the NWC backend uses). */
interface RelayFilter {
  kinds?: number[];
  authors?: string[];
  '#e'?: string[];
  '#p'?: string[];
  limit?: number;
}

/** Callbacks of one subscription. */
interface SubscriptionHandlers {
  onEvent(event: NostrEvent): void;
  /** The subscription may have missed events: the connection dropped or the relay closed it. */
  onLost?(): void;
}

/** An open subscription. */
export interface RelaySubscription {
  /** Resolves at the relay's end of stored events; rejects if it refuses or the connection drops first. */
  readonly ready: Promise<void>;
  close(): void;
}

/** A connection to one relay (of a list, tried in turn), opened on first use and reopened on demand. */
export interface RelayClient {
  subscribe(filter: RelayFilter, handlers: SubscriptionHandlers): RelaySubscription;
  /** Resolves once the relay accepted the event (`OK true`). */
  publish(event: NostrEvent): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link createRelayClient}. */
export interface RelayClientOptions {
  urls: string[];
  connectTimeoutMs: number;
}

interface Subscription {
  filter: RelayFilter;
  handlers: SubscriptionHandlers;
  ready: boolean;
  resolveReady(): void;
  rejectReady(error: TollwayError): void;
}

interface Publish {
  resolve(): void;
  reject(error: TollwayError): void;
}

const eventSchema = z.object({
  id: z.string(),
  pubkey: z.string(),
  created_at: z.number(),
  kind: z.number(),
  tags: z.array(z.array(z.string())),
  content: z.string(),
  sig: z.string(),
});

const frameSchema = z.union([
  z.tuple([z.literal('EVENT'), z.string(), z.unknown()]),
  z.tuple([z.literal('EOSE'), z.string()]),
  z.tuple([z.literal('OK'), z.string(), z.boolean(), z.string()]),
  z.tuple([z.literal('CLOSED'), z.string(), z.string()]),
]);

/** Reconnect delays while subscriptions are open, in ms; the last one repeats. */
const BACKOFF_MS = [100, 250, 500, 1_000, 2_000, 5_000];
/** Largest frame accepted from a relay. */
const MAX_FRAME_BYTES = 1 << 22;
/** How long a graceful close may take before the socket is destroyed. */
const CLOSE_GRACE_MS = 1_000;

function unavailable(message: string, cause?: unknown): TollwayError {
  return new TollwayError('backend_unavailable', message, cause === undefined ? {} : { cause });
}

function randomId(): string {
  return bytesToHex(randomBytes(16));
}

/**
 * Creates a relay client. Nothing is opened until the first subscription or publish.
 *
 * @example
 * ```ts
 * const relay = createRelayClient({ urls: ['wss://relay.example'], connectTimeoutMs: 10_000 });
 * const sub = relay.subscribe({ kinds: [13194], authors: [walletPubkey] }, { onEvent: console.log });
 * await sub.ready;
 * ```
 */
export function createRelayClient(options: RelayClientOptions): RelayClient {
  const subscriptions = new Map<string, Subscription>();
  const publishes = new Map<string, Publish>();
  /** The open socket. */
  let socket: WebSocket | undefined;
  /** The newest socket, open or still connecting. */
  let latest: WebSocket | undefined;
  let opening: Promise<WebSocket> | undefined;
  /** Index in `options.urls` of the relay to try first. */
  let preferred = 0;
  /** Consecutive rounds in which no relay could be reached (for the reconnect backoff). */
  let failedRounds = 0;
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  function send(ws: WebSocket, frame: unknown[]): void {
    ws.send(JSON.stringify(frame));
  }

  function sendRequest(ws: WebSocket, id: string, sub: Subscription): void {
    send(ws, ['REQ', id, sub.filter]);
  }

  /** Connects to one relay; resolves once the socket is open. */
  function connect(url: string): Promise<WebSocket> {
    return new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, {
        handshakeTimeout: options.connectTimeoutMs,
        maxPayload: MAX_FRAME_BYTES,
      });
      latest = ws;
      let lastError: unknown;
      ws.on('open', () => resolve(ws));
      ws.on('message', (data: WebSocket.RawData) => onFrame(data.toString()));
      ws.on('error', (error) => {
        lastError = error;
      });
      ws.on('close', () => {
        if (socket === ws) {
          socket = undefined;
          opening = undefined;
          onDrop();
        } else {
          reject(unavailable(`could not connect to the NWC relay ${url}`, lastError));
        }
      });
    });
  }

  /** Opens a socket, trying each relay once, starting with the one that worked last. */
  function open(): Promise<WebSocket> {
    if (closed) return Promise.reject(unavailable('the NWC connection is closed'));
    opening ??= (async () => {
      let failure: unknown;
      for (let i = 0; i < options.urls.length; i += 1) {
        const index = (preferred + i) % options.urls.length;
        try {
          const ws = await connect(options.urls[index] ?? '');
          if (closed || ws.readyState !== WebSocket.OPEN) {
            ws.terminate();
            throw unavailable('the NWC relay connection closed while opening');
          }
          preferred = index;
          failedRounds = 0;
          socket = ws;
          for (const [id, sub] of subscriptions) sendRequest(ws, id, sub);
          return ws;
        } catch (error) {
          failure = error;
        }
      }
      failedRounds += 1;
      opening = undefined;
      throw failure;
    })();
    // A failed attempt is reported to whoever awaits it; this keeps it from being unhandled.
    opening.catch(() => undefined);
    return opening;
  }

  function onDrop(): void {
    const error = unavailable('the connection to the NWC relay dropped');
    for (const publish of publishes.values()) publish.reject(error);
    publishes.clear();
    for (const [id, sub] of subscriptions) {
      if (!sub.ready) {
        subscriptions.delete(id);
        sub.rejectReady(error);
      }
    }
    for (const sub of [...subscriptions.values()]) sub.handlers.onLost?.();
    scheduleReconnect();
  }

  function scheduleReconnect(): void {
    if (closed || subscriptions.size === 0 || reconnectTimer !== undefined) return;
    const delay = BACKOFF_MS[Math.min(failedRounds, BACKOFF_MS.length - 1)] ?? 5_000;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = undefined;
      open().catch(scheduleReconnect);
    }, delay);
  }

  function onFrame(text: string): void {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return;
    }
    const frame = frameSchema.safeParse(json);
    if (!frame.success) return;
    const message = frame.data;
    switch (message[0]) {
      case 'EVENT': {
        const sub = subscriptions.get(message[1]);
        const event = eventSchema.safeParse(message[2]);
        if (sub === undefined || !event.success || !verifyEvent(event.data)) return;
        sub.handlers.onEvent(event.data);
        return;
      }
      case 'EOSE': {
        const sub = subscriptions.get(message[1]);
        if (sub !== undefined && !sub.ready) {
          sub.ready = true;
          sub.resolveReady();
        }
        return;
      }
      case 'OK': {
        const publish = publishes.get(message[1]);
        if (publish === undefined) return;
        publishes.delete(message[1]);
        if (message[2]) publish.resolve();
        else publish.reject(unavailable(`the NWC relay refused the event: ${message[3]}`));
        return;
      }
      case 'CLOSED': {
        const sub = subscriptions.get(message[1]);
        if (sub === undefined) return;
        subscriptions.delete(message[1]);
        if (sub.ready) sub.handlers.onLost?.();
        else sub.rejectReady(unavailable(`the NWC relay closed a subscription: ${message[2]}`));
        return;
      }
    }
  }

  return {
    subscribe(filter, handlers) {
      const id = randomId();
      let resolveReady = (): void => {};
      let rejectReady = (_: TollwayError): void => {};
      const ready = new Promise<void>((resolve, reject) => {
        resolveReady = resolve;
        rejectReady = reject;
      });
      ready.catch(() => undefined);
      const sub: Subscription = { filter, handlers, ready: false, resolveReady, rejectReady };
      subscriptions.set(id, sub);
      if (socket?.readyState === WebSocket.OPEN) {
        sendRequest(socket, id, sub);
      } else {
        open().catch((error: TollwayError) => {
          if (subscriptions.delete(id)) rejectReady(error);
        });
      }
      return {
        ready,
        close() {
          if (!subscriptions.delete(id)) return;
          if (socket?.readyState === WebSocket.OPEN) send(socket, ['CLOSE', id]);
          if (!sub.ready) rejectReady(unavailable('subscription closed'));
        },
      };
    },

    async publish(event) {
      const ws = await open();
      await new Promise<void>((resolve, reject) => {
        publishes.set(event.id, { resolve, reject });
        ws.send(JSON.stringify(['EVENT', event]), (error) => {
          if (error === undefined || error === null) return;
          publishes.delete(event.id);
          reject(unavailable('could not send to the NWC relay', error));
        });
      });
    },

    async close() {
      closed = true;
      if (reconnectTimer !== undefined) clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      const error = unavailable('the NWC connection is closed');
      for (const publish of publishes.values()) publish.reject(error);
      publishes.clear();
      for (const sub of subscriptions.values()) if (!sub.ready) sub.rejectReady(error);
      subscriptions.clear();
      const ws = latest;
      socket = undefined;
      if (ws === undefined || ws.readyState === WebSocket.CLOSED) return;
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
        ws.once('close', () => {
          clearTimeout(force);
          resolve();
        });
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close();
      });
    },
  };
}
