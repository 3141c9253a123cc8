/**
 * The NIP-47 conversation with one wallet service over a relay: read the wallet's info event
 * (methods, encryption, notifications), send signed and encrypted requests (kind 23194, with an
 * `expiration` tag), match replies (kind 23195, `e` tag = request id) and decrypt notifications.
 * NIP-44 v2 when the wallet advertises it, NIP-04 otherwise. Internal: not exported from the package.
 *
 * A lost reply to a request that moves money is `payment_timeout` (the wallet may have paid); to
 * any other request it is `backend_unavailable`. Replies are never awaited on a new request.
 */
import * as nip04 from 'nostr-tools/nip04';
import * as nip44 from 'nostr-tools/nip44';
import { finalizeEvent, getPublicKey, type NostrEvent } from 'nostr-tools/pure';
import { TollwayError } from '../errors.js';
import { hexToBytes } from '../internal/bytes.js';
import { createRelayClient, type RelaySubscription } from './nwc-relay.js';
import type { NwcConnection } from './nwc-uri.js';
import { malformed, NWC_KINDS, readNotification, readReply } from './nwc-wire.js';

/** What the wallet's info event (kind 13194) says. */
interface WalletInfo {
  /** Methods it offers; `undefined` when it published no info event (then every call is tried). */
  methods: ReadonlySet<string> | undefined;
  encryption: 'nip44_v2' | 'nip04';
  notifications: ReadonlySet<string>;
}

/** Options of one request. */
interface RequestOptions {
  timeoutMs: number;
  /** The request moves money: a reply that never comes means `payment_timeout`. */
  movesMoney?: boolean;
}

/** A notification (kind 23197 or 23196) from the wallet. */
export interface WalletNotification {
  type: string;
  payload: unknown;
}

/** One wallet connection. */
export interface NwcClient {
  info(): Promise<WalletInfo>;
  /** Sends `method` with `params`; resolves with the reply's `result`, or throws the wallet's error as ours. */
  request(method: string, params: object, options: RequestOptions): Promise<unknown>;
  /** Listens for notifications until the returned function is called. */
  listen(listener: (notification: WalletNotification) => void): () => void;
  close(): Promise<void>;
}

/** Largest encrypted content read (a NIP-44 v2 payload of 65 535 bytes is about 87 500). */
const MAX_CONTENT_CHARS = 1 << 17;

/**
 * Opens (lazily) a NIP-47 client connection.
 *
 * @example
 * ```ts
 * const client = createNwcClient(parseNwcUri(uri), { requestTimeoutMs: 30_000, connectTimeoutMs: 10_000 });
 * const result = await client.request('get_balance', {}, { timeoutMs: 30_000 });
 * ```
 */
export function createNwcClient(
  connection: NwcConnection,
  options: { requestTimeoutMs: number; connectTimeoutMs: number },
): NwcClient {
  const relay = createRelayClient({
    urls: connection.relays,
    connectTimeoutMs: options.connectTimeoutMs,
  });
  const secretKey = hexToBytes(connection.secret, 32);
  const clientPubkey = getPublicKey(secretKey);
  const wallet = connection.walletPubkey;
  const conversationKey = nip44.getConversationKey(secretKey, wallet);
  const listeners = new Set<(notification: WalletNotification) => void>();
  let notifications: RelaySubscription | undefined;
  let infoPromise: Promise<WalletInfo> | undefined;

  function fromWallet(event: NostrEvent): boolean {
    return event.pubkey === wallet;
  }

  function decrypt(method: string, content: string): string {
    if (content.length > MAX_CONTENT_CHARS) throw malformed(method, 'reply is too large');
    try {
      return content.includes('?iv=')
        ? nip04.decrypt(secretKey, wallet, content)
        : nip44.decrypt(content, conversationKey);
    } catch (error) {
      throw malformed(method, 'could not decrypt the reply', error);
    }
  }

  async function loadInfo(): Promise<WalletInfo> {
    const events: NostrEvent[] = [];
    const sub = relay.subscribe(
      { kinds: [NWC_KINDS.info], authors: [wallet], limit: 1 },
      { onEvent: (event) => fromWallet(event) && events.push(event) },
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        sub.ready,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new TollwayError('backend_unavailable', 'NWC relay did not answer')),
            options.requestTimeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
      sub.close();
    }
    const latest = events.sort((a, b) => b.created_at - a.created_at)[0];
    if (latest === undefined) {
      return { methods: undefined, encryption: 'nip04', notifications: new Set() };
    }
    const tag = (name: string): string[] | undefined =>
      latest.tags
        .find((t) => t[0] === name)
        ?.slice(1)
        .join(' ')
        .split(/\s+/)
        .filter((word) => word !== '');
    const schemes = tag('encryption') ?? ['nip04'];
    let encryption: WalletInfo['encryption'];
    if (schemes.includes('nip44_v2')) encryption = 'nip44_v2';
    else if (schemes.includes('nip04')) encryption = 'nip04';
    else {
      throw new TollwayError(
        'capability_unsupported',
        `NWC wallet offers no encryption Tollway speaks (${schemes.join(', ')})`,
      );
    }
    return {
      methods: new Set(latest.content.split(/\s+/).filter((word) => word !== '')),
      encryption,
      notifications: new Set(tag('notifications') ?? []),
    };
  }

  function info(): Promise<WalletInfo> {
    infoPromise ??= loadInfo().catch((error: unknown) => {
      infoPromise = undefined;
      throw error;
    });
    return infoPromise;
  }

  async function request(method: string, params: object, opts: RequestOptions): Promise<unknown> {
    const { methods, encryption } = await info();
    if (methods !== undefined && !methods.has(method)) {
      throw new TollwayError('capability_unsupported', `NWC wallet does not offer ${method}`, {
        details: { method },
      });
    }
    const plaintext = JSON.stringify({ method, params });
    const expiresAt = Math.ceil((Date.now() + opts.timeoutMs) / 1000);
    const tags = [
      ['p', wallet],
      ['expiration', String(expiresAt)],
    ];
    if (encryption === 'nip44_v2') tags.push(['encryption', 'nip44_v2']);
    const event = finalizeEvent(
      {
        kind: NWC_KINDS.request,
        created_at: Math.floor(Date.now() / 1000),
        tags,
        content:
          encryption === 'nip44_v2'
            ? nip44.encrypt(plaintext, conversationKey)
            : nip04.encrypt(secretKey, wallet, plaintext),
      },
      secretKey,
    );

    let sent = false;
    const lost = (why: string): TollwayError =>
      sent && opts.movesMoney
        ? new TollwayError(
            'payment_timeout',
            `NWC ${method}: ${why}; the payment may still complete`,
            {
              details: { method, requestId: event.id },
            },
          )
        : new TollwayError('backend_unavailable', `NWC ${method}: ${why}`, {
            details: { method },
          });

    return new Promise<unknown>((resolve, reject) => {
      let done = false;
      const finish = (outcome: () => void): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sub.close();
        outcome();
      };
      const timer = setTimeout(
        () => finish(() => reject(lost(`no reply within ${opts.timeoutMs} ms`))),
        opts.timeoutMs,
      );
      const sub = relay.subscribe(
        { kinds: [NWC_KINDS.response], authors: [wallet], '#e': [event.id] },
        {
          onEvent(reply) {
            if (!fromWallet(reply) || !reply.tags.some((t) => t[0] === 'e' && t[1] === event.id)) {
              return;
            }
            finish(() => {
              try {
                resolve(readReply(method, decrypt(method, reply.content)));
              } catch (error) {
                reject(error);
              }
            });
          },
          onLost: () => finish(() => reject(lost('the relay connection dropped before the reply'))),
        },
      );
      // Publish only once the relay confirms the subscription, so the reply cannot be missed.
      sub.ready
        .then(() => {
          if (done) return;
          sent = true;
          return relay.publish(event);
        })
        // A drop after sending is handled by onLost; what lands here was never delivered.
        .catch((error: unknown) => finish(() => reject(error)));
    });
  }

  function listen(listener: (notification: WalletNotification) => void): () => void {
    listeners.add(listener);
    notifications ??= relay.subscribe(
      {
        kinds: [NWC_KINDS.notification, NWC_KINDS.notificationNip04],
        authors: [wallet],
        '#p': [clientPubkey],
      },
      {
        onEvent(event) {
          if (!fromWallet(event)) return;
          let notification: WalletNotification | undefined;
          try {
            notification = readNotification(decrypt('notification', event.content));
          } catch {
            return;
          }
          if (notification === undefined) return;
          for (const each of listeners) each(notification);
        },
      },
    );
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) {
        notifications?.close();
        notifications = undefined;
      }
    };
  }

  return { info, request, listen, close: () => relay.close() };
}
