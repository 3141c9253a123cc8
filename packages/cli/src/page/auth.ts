/**
 * How Tollway's local pages (the gateway dashboard, the agent's ledger view) let a browser in and
 * keep other sites out: a secret token (`Authorization: Bearer`, or once in a sign-in link that
 * sets an HttpOnly, SameSite=Strict cookie derived from it), and changes made with the cookie only
 * from the page's own origin (CSRF).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * Constant-time equality of two secrets (their SHA-256 digests are compared).
 *
 * @example
 * ```ts
 * sameSecret(given, token); // true when they are equal
 * ```
 */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The session cookie value for `token` on the page `purpose` names: derived from it, so the
 * cookie never holds the token itself.
 */
function sessionValue(token: string, purpose: string): string {
  return createHmac('sha256', token).update(purpose).digest('hex');
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return rest.join('=');
  }
  return undefined;
}

/** A page's session: the token, its cookie's name and what its value is derived for. */
export interface PageSession {
  /** The secret; without one, no request is let in. */
  token: string | undefined;
  cookie: string;
  purpose: string;
}

/** How a request proved itself: the bearer token, or the page's session cookie. */
export type PageCredential = 'bearer' | 'cookie';

/**
 * How `req` proved itself to `session`, or undefined when it did not.
 *
 * @example
 * ```ts
 * const credential = requestCredential(req, { token, cookie: 'tollway_admin', purpose });
 * ```
 */
export function requestCredential(
  req: IncomingMessage,
  session: PageSession,
): PageCredential | undefined {
  const { token } = session;
  if (token === undefined) return undefined;
  const header = req.headers.authorization;
  if (header !== undefined && /^bearer /i.test(header)) {
    return sameSecret(header.slice(7).trim(), token) ? 'bearer' : undefined;
  }
  const cookie = readCookie(req, session.cookie);
  return cookie !== undefined && sameSecret(cookie, sessionValue(token, session.purpose))
    ? 'cookie'
    : undefined;
}

/**
 * The `Set-Cookie` value that signs a browser in to `session` under `path` (Secure over TLS).
 *
 * @example
 * ```ts
 * res.writeHead(303, { location: '/', 'set-cookie': sessionCookie(req, session, '/') });
 * ```
 */
export function sessionCookie(req: IncomingMessage, session: PageSession, path: string): string {
  const secure = 'encrypted' in req.socket && req.socket.encrypted === true ? '; Secure' : '';
  const value = sessionValue(session.token ?? '', session.purpose);
  return `${session.cookie}=${value}; HttpOnly; SameSite=Strict; Path=${path}${secure}`;
}

/**
 * True when a request comes from a page of the server's own origin: its `Origin` names the host
 * the request was sent to, or, without `Origin`, the browser marked it `Sec-Fetch-Site:
 * same-origin`. A browser sends its cookies with requests that other pages start, so a change made
 * with a session cookie must pass this (CSRF); the bearer token is never sent by itself.
 *
 * @example
 * ```ts
 * if (credential === 'cookie' && req.method !== 'GET' && !fromOwnOrigin(req)) refuse();
 * ```
 */
export function fromOwnOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return req.headers['sec-fetch-site'] === 'same-origin';
  if (!URL.canParse(origin)) return false;
  const host = req.headers.host;
  return host !== undefined && new URL(origin).host === host.toLowerCase();
}
