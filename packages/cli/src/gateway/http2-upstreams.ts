/**
 * HTTP/2 connections to gRPC upstreams, one per origin and TLS setting, multiplexing every call:
 * cleartext HTTP/2 with prior knowledge (h2c) for an `http://` upstream, HTTP/2 over TLS for an
 * `https://` one (verified as the HTTP pools are: system roots, or `tls.caFile`). undici 6 speaks
 * HTTP/2 only over TLS and gives no access to gRPC's trailers as they arrive, so calls go through
 * `node:http2`. A connection that closed or was told to go away is replaced on the next call.
 */
import { readFileSync } from 'node:fs';
import { type ClientHttp2Session, connect } from 'node:http2';
import { TollwayError } from '@tollway/sdk';
import type { Service } from './services.js';

/** See {@link createHttp2Upstreams}. */
export interface Http2Upstreams {
  /** The connection to a service's upstream, opened on first use. */
  session(service: Service): ClientHttp2Session;
  /** Closes the connections no service in `services` uses any more. */
  retain(services: readonly Service[]): void;
  /** Closes every connection (calls in flight finish first). */
  close(): void;
}

/** The key of each compiled service, so that a call does not serialise it again. */
const sessionKeys = new WeakMap<Service, string>();

function sessionKey(service: Service): string {
  let key = sessionKeys.get(service);
  if (key === undefined) {
    const { tls } = service.config;
    key = JSON.stringify([service.origin, tls?.insecureSkipVerify === true, tls?.caFile]);
    sessionKeys.set(service, key);
  }
  return key;
}

/**
 * The CA file of a service's upstream TLS, read; undefined when it names none. Throws
 * `invalid_config` when it cannot be read.
 */
export function readServiceCa(service: Service): string | undefined {
  const caFile = service.config.tls?.caFile;
  if (caFile === undefined) return undefined;
  try {
    return readFileSync(caFile, 'utf8');
  } catch (cause) {
    throw new TollwayError(
      'invalid_config',
      `service ${service.name}: tls.caFile ${caFile} cannot be read`,
      { cause },
    );
  }
}

/**
 * Creates the registry of HTTP/2 upstream connections.
 *
 * @example
 * ```ts
 * const upstreams = createHttp2Upstreams();
 * const call = upstreams.session(service).request({ ':method': 'POST', ':path': '/pkg.Svc/Do' });
 * ```
 */
export function createHttp2Upstreams(): Http2Upstreams {
  const sessions = new Map<string, ClientHttp2Session>();
  const open = (service: Service, key: string): ClientHttp2Session => {
    const ca = readServiceCa(service);
    const session = connect(service.origin, {
      rejectUnauthorized: service.config.tls?.insecureSkipVerify !== true,
      ...(ca === undefined ? {} : { ca }),
    });
    const forget = (): void => {
      if (sessions.get(key) === session) sessions.delete(key);
    };
    // A connection error reaches each call on it as a stream error; the session just goes.
    session.on('error', forget);
    session.on('goaway', forget);
    session.on('close', forget);
    session.unref();
    sessions.set(key, session);
    return session;
  };
  return {
    session(service) {
      const key = sessionKey(service);
      const known = sessions.get(key);
      if (known !== undefined && !known.closed && !known.destroyed) return known;
      return open(service, key);
    },
    retain(services) {
      const used = new Set(services.map(sessionKey));
      for (const [key, session] of sessions) {
        if (used.has(key)) continue;
        sessions.delete(key);
        session.close();
      }
    },
    close() {
      for (const session of sessions.values()) session.close();
      sessions.clear();
    },
  };
}
