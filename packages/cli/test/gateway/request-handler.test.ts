import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { guarded } from '../../src/gateway/request-handler.js';

/** Serves `handler` through `guarded` on loopback, asks once, and returns the answer and the log. */
async function answerOf(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<{ status: number; body: unknown; logged: string[] }> {
  const logged: string[] = [];
  const logger = {
    info() {},
    warn() {},
    error: (_: unknown, message: string) => logged.push(message),
  };
  const server = createServer(guarded(logger, handler));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/`);
    return { status: response.status, body: await response.json(), logged };
  } finally {
    server.close();
  }
}

describe('a request handler that fails', () => {
  // Handlers answer synchronously when the engine decided at once, so a failure may be a throw.
  it.each([
    [
      'throws',
      () => {
        throw new Error('boom');
      },
    ],
    ['rejects', () => Promise.reject(new Error('boom'))],
  ])('is answered with a 500 internal_error problem and logged when it %s', async (_, handler) => {
    const { status, body, logged } = await answerOf(handler);
    expect(status).toBe(500);
    expect(body).toMatchObject({ code: 'internal_error' });
    expect(logged).toEqual(['the gateway failed on a request']);
  });
});
