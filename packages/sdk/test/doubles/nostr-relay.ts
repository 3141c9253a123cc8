/**
 * A real Nostr relay (NIP-01) on loopback for tests: `@nostr-relay/core` behind a `ws` server, with
 * an in-memory event store. Signatures are verified, replaceable events replace, ephemeral events
 * (the NIP-47 request and response kinds) are forwarded and never stored, just as on a public relay.
 *
 * Levers for tests: drop every socket (a relay restart), or drop the sender of a matching event
 * instead of accepting it (a relay that dies mid-request).
 */
import type { AddressInfo } from 'node:net';
import { type Event, EventRepository, EventUtils, type Filter } from '@nostr-relay/common';
import { NostrRelay } from '@nostr-relay/core';
import { Validator } from '@nostr-relay/validator';
import { type WebSocket, WebSocketServer } from 'ws';

/** A running relay double. */
export interface NostrRelayDouble {
  /** `ws://127.0.0.1:<port>`. */
  readonly url: string;
  /** Closes every client socket abruptly, as a crashing relay would. */
  dropAll(): void;
  /**
   * From now on, an incoming event matching `predicate` is not accepted: its sender's socket is
   * terminated instead. `undefined` clears it.
   */
  dropSenderOf(predicate?: (event: Event) => boolean): void;
  /** Events accepted so far, in order (ephemeral ones included). */
  readonly accepted: readonly Event[];
  /** Open client sockets. */
  connections(): number;
  close(): Promise<void>;
}

/** Replaceable (kind 0, 3, 10000–19999) and addressable (30000–39999) events keep their newest. */
class MemoryRepository extends EventRepository {
  private readonly events = new Map<string, Event>();

  isSearchSupported(): boolean {
    return false;
  }

  upsert(event: Event): { isDuplicate: boolean } {
    const type = EventUtils.getType(event.kind);
    let key = event.id;
    if (type === 'REPLACEABLE') key = `${event.kind}:${event.pubkey}`;
    if (type === 'PARAMETERIZED_REPLACEABLE') {
      key = `${event.kind}:${event.pubkey}:${EventUtils.extractDTagValue(event) ?? ''}`;
    }
    const existing = this.events.get(key);
    if (existing !== undefined && existing.created_at >= event.created_at) {
      return { isDuplicate: true };
    }
    this.events.set(key, event);
    return { isDuplicate: false };
  }

  find(filter: Filter): Event[] {
    const found = [...this.events.values()]
      .filter((event) => EventUtils.isMatchingFilter(event, filter))
      .sort((a, b) => b.created_at - a.created_at);
    return filter.limit === undefined ? found : found.slice(0, filter.limit);
  }

  async destroy(): Promise<void> {}
}

/**
 * Starts a relay on an ephemeral loopback port.
 *
 * @example
 * ```ts
 * const relay = await startNostrRelay();
 * const backend = createNwcBackend({ ...connection, relays: [relay.url] });
 * await relay.close();
 * ```
 */
export async function startNostrRelay(): Promise<NostrRelayDouble> {
  const relay = new NostrRelay(new MemoryRepository(), {
    logLevel: 3,
    filterResultCacheTtl: 0,
  });
  const validator = new Validator();
  const accepted: Event[] = [];
  let dropPredicate: ((event: Event) => boolean) | undefined;

  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });

  async function handle(socket: WebSocket, data: string): Promise<void> {
    let message: Awaited<ReturnType<Validator['validateIncomingMessage']>>;
    try {
      message = await validator.validateIncomingMessage(data);
    } catch (error) {
      socket.send(JSON.stringify(['NOTICE', `invalid: ${(error as Error).message}`]));
      return;
    }
    if (message[0] === 'EVENT') {
      const event = message[1];
      if (dropPredicate?.(event)) {
        socket.terminate();
        return;
      }
      accepted.push(event);
    }
    await relay.handleMessage(socket, message);
  }

  server.on('connection', (socket) => {
    relay.handleConnection(socket);
    // One message at a time per socket, in arrival order (a REQ is live before the next EVENT).
    let queue = Promise.resolve();
    socket.on('message', (data) => {
      const text = data.toString();
      queue = queue.then(() => handle(socket, text)).catch(() => socket.terminate());
    });
    socket.on('close', () => relay.handleDisconnect(socket));
    socket.on('error', () => socket.terminate());
  });

  const { port } = server.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    accepted,
    dropAll() {
      for (const socket of server.clients) socket.terminate();
    },
    dropSenderOf(predicate) {
      dropPredicate = predicate;
    },
    connections: () => server.clients.size,
    async close() {
      for (const socket of server.clients) socket.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await relay.destroy();
    },
  };
}
