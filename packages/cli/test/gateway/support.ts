/**
 * Real parts for gateway tests: an upstream HTTP server on loopback, and an agent that pays a
 * gateway's 402 through the dev Lightning node (L402 or MPP) and returns the credential.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  decodeIdentifier,
  formatL402Credential,
  parseL402Challenges,
  parseMacaroon,
} from '@tollway/sdk/l402';
import type { LightningBackend } from '@tollway/sdk/lightning';
import {
  decodeChargeRequest,
  formatPaymentCredential,
  parsePaymentChallenges,
} from '@tollway/sdk/mpp';
import type { TestChain } from '../../../sdk/test/support/chain.js';

/** A listening upstream. */
export interface Upstream {
  url: string;
  server: Server;
  close(): Promise<void>;
}

/** Starts `handler` on 127.0.0.1 on a free port. */
export async function startUpstream(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<Upstream> {
  const server = createServer((req, res) => {
    void Promise.resolve(handler(req, res)).catch((error: unknown) => {
      res.statusCode = 500;
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Reads a whole request body. */
export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A GET through node:http, which sends any header (fetch refuses Connection and TE). */
export function rawGet(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      readBody(res).then(
        (body) =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: body.toString('utf8'),
          }),
        reject,
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function hexToBytes(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** Pays the L402 offer of a 402 response with `wallet`; returns the `Authorization` value. */
export async function payL402(response: Response, wallet: LightningBackend): Promise<string> {
  const [challenge] = parseL402Challenges(response.headers.get('www-authenticate') ?? '').filter(
    (entry) => entry.scheme === 'L402',
  );
  if (challenge === undefined) throw new Error(`no L402 challenge (status ${response.status})`);
  const paid = await wallet.payInvoice({ paymentRequest: challenge.invoice });
  return formatL402Credential({
    macaroons: [parseMacaroon(challenge.macaroon)],
    preimage: hexToBytes(paid.preimage),
  });
}

/** Pays the MPP lightning charge offer of a 402 response; returns the `Authorization` value. */
export async function payMpp(response: Response, wallet: LightningBackend): Promise<string> {
  const challenges = parsePaymentChallenges(response.headers.get('www-authenticate') ?? '');
  const challenge = challenges.find(
    (entry) => entry.method === 'lightning' && entry.intent === 'charge',
  );
  if (challenge === undefined) throw new Error(`no MPP challenge (status ${response.status})`);
  const { invoice } = decodeChargeRequest(challenge.request);
  const paid = await wallet.payInvoice({ paymentRequest: invoice });
  return formatPaymentCredential({ challenge, payload: { preimage: paid.preimage } });
}

/** The account of an L402 `Authorization` value: the payment hash its counters are kept under. */
export function accountOf(authorization: string): string {
  const macaroon = parseMacaroon(authorization.slice('L402 '.length).split(':')[0] ?? '');
  return Buffer.from(decodeIdentifier(macaroon.identifier).paymentHash).toString('hex');
}

/** The token id (hex) of an L402 `Authorization` value. */
export function tokenIdOf(authorization: string): string {
  const macaroon = parseMacaroon(authorization.slice('L402 '.length).split(':')[0] ?? '');
  return Buffer.from(decodeIdentifier(macaroon.identifier).tokenId).toString('hex');
}

/**
 * The gateway config's `x402` block for a test chain: its TestUSDC, paid to its `payTo` account,
 * settled by the self-hosted facilitator whose key the config reads from `${FACILITATOR_KEY}`.
 */
export function x402ConfigBlock(chain: TestChain) {
  return {
    network: chain.network,
    asset: { address: chain.token, decimals: 6, ...chain.tokenDomain },
    payTo: chain.accounts.payTo.address,
    facilitator: { rpcUrl: chain.rpcUrl, privateKey: '${FACILITATOR_KEY}' },
  };
}
