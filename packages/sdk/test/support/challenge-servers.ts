/**
 * Independent paid-API servers for the paying fetch's tests: written here from the research notes
 * (not with Tollway's engine), each path prefix speaking one challenge form seen in the wild, plus
 * broken ones. Tokens are V2 macaroons minted by a small encoder written here (not the SDK's), except
 * the `opaque` form, whose token is not a macaroon at all; invoices come from a dev Lightning wallet.
 *
 * `GET|POST /<form>/<anything>[?price=<sat>&uses=<n>&bind=1&paths=/a,/b&validFor=<s>]`:
 * - without a valid credential: 402 with the form's challenge (see {@link challengeForms});
 * - with one: 200 JSON `{form, path, method, contentType, body, paid}` (the body echoed as text).
 * `uses` limits how many requests one token serves; `bind=1` binds a token to the exact path without
 * saying so; `paths` adds a `tollway_paths` caveat naming them (and binds the token to them);
 * `validFor` adds an `api_valid_until` caveat.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeInvoice, type LightningBackend } from '@tollway/sdk/lightning';

/** Every form the server speaks, by the first path segment. */
const challengeForms = [
  /** `LSAT macaroon="…", invoice="…"` then the same with `L402`, two header lines (Aperture). */
  'aperture',
  /** `L402 version="0", token="…", invoice="…"` (2026 spec). */
  'spec',
  /** `l402 macaroon="…", invoice="…"` (lower-case scheme). */
  'lower',
  /** `LSAT macaroon=<b64>, invoice=<bolt11>` (unquoted, Alby's Go middleware). */
  'unquoted',
  /** `Basic …, L402 …, Bearer …, Payment …` in one comma-joined line (L402 and MPP share one invoice). */
  'mixed',
  /** `LSAT macaroon="<base64url, no padding>"` (lsat-js, boltwall). */
  'urlsafe',
  /** `L402 version="0" macaroon="…", invoice="…"`: no comma after version (Alby 2026). */
  'nocomma',
  /** A token that is not a macaroon (base64 JSON): clients must treat tokens as opaque. */
  'opaque',
  /** Only an MPP `Payment` lightning charge, problem+json body. */
  'mpp',
  /** L402 (+LSAT), MPP and x402 v2 at once, with a JSON body that lists the prices truthfully. */
  'multi',
  /** Only x402 v2: the `PAYMENT-REQUIRED` header. */
  'x402v2',
  /** Only x402 v1: the JSON body `{x402Version: 1, accepts}`. */
  'x402v1',
  /** Fewsats "L402 with offers": a JSON body with `payment_request_url`. */
  'fewsats',
  /** Cashu NUT-24: `X-Cashu: creqA…`. */
  'cashu',
  // broken
  /** `invoice="lnbcrt1garbage"`. */
  'broken-invoice',
  /** An MPP request claiming 1 sat for an invoice of `price` sat. */
  'mismatch-mpp',
  /** A correct L402 header, and a JSON body claiming 1 sat for the same invoice. */
  'mismatch-body',
  /** An expired invoice. */
  'expired',
  /** A mainnet invoice (the test wallets are on regtest). */
  'mainnet',
  /** An invoice without an amount. */
  'amountless',
  /** `L402 macaroon="…"` without an invoice. */
  'missing-invoice',
  /** `WWW-Authenticate: L402 ===, "` */
  'garbage',
] as const;

/** One challenge form. */
type ChallengeForm = (typeof challengeForms)[number];

/** A listening challenge server. */
export interface ChallengeServer {
  url: string;
  /** 402 responses sent. */
  readonly challenges: number;
  /** Requests served with a valid credential. */
  readonly served: number;
  /** Every request received, in order: method, path and the Authorization header sent. */
  /** Each request: its method, path, Authorization and `X-Trace` header. */
  readonly log: ReadonlyArray<{
    method: string;
    path: string;
    authorization: string | undefined;
    trace: string | undefined;
  }>;
  close(): Promise<void>;
}

/** An unsigned LEB128 varint, as macaroon V2 length prefixes are written. */
function varint(n: number): Buffer {
  const bytes: number[] = [];
  let rest = n;
  while (rest >= 0x80) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

const field = (type: number, data: Buffer): Buffer =>
  Buffer.concat([Buffer.from([type]), varint(data.length), data]);
const hmac = (key: Buffer, data: Buffer): Buffer => createHmac('sha256', key).update(data).digest();

/**
 * A macaroon in the V2 binary layout (libmacaroons / go-macaroon), written here independently of the
 * SDK: version 2, location, identifier, end; each first-party caveat and its end; end; signature.
 * The signature chains HMAC-SHA256 from a key derived from the root key.
 */
function mintMacaroon(rootKey: Buffer, identifier: Buffer, caveats: readonly string[]): string {
  let signature = hmac(hmac(Buffer.from('macaroons-key-generator'), rootKey), identifier);
  const parts = [
    Buffer.from([2]),
    field(1, Buffer.from('lsat')),
    field(2, identifier),
    Buffer.from([0]),
  ];
  for (const caveat of caveats) {
    signature = hmac(signature, Buffer.from(caveat));
    parts.push(field(2, Buffer.from(caveat)), Buffer.from([0]));
  }
  parts.push(Buffer.from([0]), field(6, signature));
  return Buffer.concat(parts).toString('base64');
}

interface Token {
  paymentHash: string;
  /** Exact paths the token is restricted to (absent: any path of the form). */
  paths?: string[];
  usesLeft?: number;
}

const sha256Hex = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const base64url = (text: string): string => Buffer.from(text).toString('base64url');
/** A token's identity whatever its base64 alphabet or padding. */
const tokenKey = (text: string): string =>
  Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('hex');

/** An invoice signed by a key no wallet knows (for forms that must never be paid). */
function foreignInvoice(params: {
  network: 'mainnet' | 'regtest';
  amountMsat?: bigint;
  timestamp?: number;
  expirySeconds?: number;
}): string {
  return encodeInvoice({
    paymentHash: randomBytes(32).toString('hex'),
    privateKey: randomBytes(32).toString('hex'),
    description: 'challenge server',
    ...params,
  });
}

/**
 * Starts a challenge server on loopback whose invoices are created by `shop` (a dev wallet).
 *
 * @example
 * ```ts
 * const server = await startChallengeServer(network.backend('shop'));
 * await fetch402(`${server.url}/aperture/forecast?price=10`);
 * ```
 */
export async function startChallengeServer(shop: LightningBackend): Promise<ChallengeServer> {
  const tokens = new Map<string, Token>();
  const charges = new Map<string, { paymentHash: string; used: boolean }>();
  const log: Array<{
    method: string;
    path: string;
    authorization: string | undefined;
    trace: string | undefined;
  }> = [];
  let challenges = 0;
  let served = 0;

  function mintToken(paymentHash: string, path: string, query: URLSearchParams): string {
    const identifier = Buffer.concat([
      Buffer.from([0, 0]),
      Buffer.from(paymentHash, 'hex'),
      randomBytes(32),
    ]);
    const caveats = ['services=api:0'];
    const paths = query.get('paths');
    if (paths !== null) caveats.push(`tollway_paths=${paths}`);
    const validFor = query.get('validFor');
    if (validFor !== null)
      caveats.push(`api_valid_until=${Math.floor(Date.now() / 1000) + Number(validFor)}`);
    const text = mintMacaroon(randomBytes(32), identifier, caveats);
    const token: Token = { paymentHash };
    if (paths !== null) token.paths = paths.split(',');
    else if (query.get('bind') === '1') token.paths = [path];
    const uses = query.get('uses');
    if (uses !== null) token.usesLeft = Number(uses);
    tokens.set(tokenKey(text), token);
    return text;
  }

  function mppChallenge(
    realm: string,
    invoice: { paymentRequest: string; paymentHash: string },
    claimedSat: bigint,
  ): string {
    const id = randomBytes(16).toString('base64url');
    charges.set(id, { paymentHash: invoice.paymentHash, used: false });
    const request = base64url(
      JSON.stringify({
        amount: claimedSat.toString(),
        currency: 'sat',
        methodDetails: {
          invoice: invoice.paymentRequest,
          network: 'regtest',
          paymentHash: invoice.paymentHash,
        },
      }),
    );
    const expires = new Date(Date.now() + 5 * 60_000).toISOString();
    return `Payment id="${id}", realm="${realm}", method="lightning", intent="charge", request="${request}", expires="${expires}"`;
  }

  function x402Requirements(resource: string, amount: string): Record<string, unknown> {
    return {
      x402Version: 2,
      error: 'payment required',
      resource: { url: resource, description: 'paid api', mimeType: 'application/json' },
      accepts: [
        {
          scheme: 'exact',
          network: 'eip155:84532',
          amount,
          asset: '0x036CbD53842c5426634e7929541eC2318f3dCF7e',
          payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
          maxTimeoutSeconds: 60,
          extra: { name: 'USDC', version: '2' },
        },
      ],
    };
  }

  /** The credential of a request, checked; a reason when it does not unlock the path. */
  function checkCredential(authorization: string, path: string): 'l402' | 'mpp' | undefined {
    const l402 = /^(?:l402|lsat) ([A-Za-z0-9+/_=-]+):([0-9a-fA-F]{64})$/i.exec(
      authorization.trim(),
    );
    if (l402 !== null) {
      const token = tokens.get(tokenKey(l402[1] ?? ''));
      if (token === undefined || sha256Hex(Buffer.from(l402[2] ?? '', 'hex')) !== token.paymentHash)
        return undefined;
      if (token.paths !== undefined && !token.paths.includes(path)) return undefined;
      if (token.usesLeft !== undefined) {
        if (token.usesLeft <= 0) return undefined;
        token.usesLeft -= 1;
      }
      return 'l402';
    }
    const mpp = /^payment ([A-Za-z0-9_-]+)$/i.exec(authorization.trim());
    if (mpp === null) return undefined;
    const credential = JSON.parse(Buffer.from(mpp[1] ?? '', 'base64url').toString('utf8')) as {
      challenge?: { id?: string };
      payload?: { preimage?: string };
    };
    const charge = charges.get(credential.challenge?.id ?? '');
    const preimage = credential.payload?.preimage ?? '';
    if (charge === undefined || charge.used || !/^[0-9a-f]{64}$/.test(preimage)) return undefined;
    if (sha256Hex(Buffer.from(preimage, 'hex')) !== charge.paymentHash) return undefined;
    charge.used = true;
    return 'mpp';
  }

  async function challenge(form: ChallengeForm, url: URL, res: http.ServerResponse): Promise<void> {
    const priceSat = BigInt(url.searchParams.get('price') ?? '10');
    const amountMsat = priceSat * 1000n;
    const path = url.pathname;
    const headers: Array<[string, string]> = [];
    let body: unknown = 'payment required';
    const invoiceFor = () => shop.createInvoice({ amountMsat, memo: `${form} ${path}` });
    const l402Line = async (scheme: string, tokenParam: string, quote: string): Promise<string> => {
      const invoice = await invoiceFor();
      const token = mintToken(invoice.paymentHash, path, url.searchParams);
      return `${scheme} ${tokenParam}=${quote}${token}${quote}, invoice=${quote}${invoice.paymentRequest}${quote}`;
    };
    switch (form) {
      case 'aperture': {
        const invoice = await invoiceFor();
        const token = mintToken(invoice.paymentHash, path, url.searchParams);
        headers.push([
          'WWW-Authenticate',
          `LSAT macaroon="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        headers.push([
          'WWW-Authenticate',
          `L402 macaroon="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        break;
      }
      case 'spec': {
        const invoice = await invoiceFor();
        const token = mintToken(invoice.paymentHash, path, url.searchParams);
        headers.push([
          'WWW-Authenticate',
          `L402 version="0", token="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        break;
      }
      case 'lower':
        headers.push(['WWW-Authenticate', await l402Line('l402', 'macaroon', '"')]);
        break;
      case 'unquoted':
        headers.push(['WWW-Authenticate', await l402Line('LSAT', 'macaroon', '')]);
        break;
      case 'mixed': {
        const invoice = await invoiceFor();
        const token = mintToken(invoice.paymentHash, path, url.searchParams);
        headers.push([
          'WWW-Authenticate',
          `Basic realm="legacy", L402 macaroon="${token}", invoice="${invoice.paymentRequest}", Bearer realm="api", error="invalid_token", ${mppChallenge(url.host, invoice, priceSat)}`,
        ]);
        break;
      }
      case 'urlsafe': {
        const invoice = await invoiceFor();
        const token = mintToken(invoice.paymentHash, path, url.searchParams);
        const urlsafe = token.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        headers.push([
          'WWW-Authenticate',
          `LSAT macaroon="${urlsafe}", invoice="${invoice.paymentRequest}"`,
        ]);
        break;
      }
      case 'nocomma': {
        const invoice = await invoiceFor();
        const token = mintToken(invoice.paymentHash, path, url.searchParams);
        headers.push([
          'WWW-Authenticate',
          `L402 version="0" macaroon="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        break;
      }
      case 'opaque': {
        const invoice = await invoiceFor();
        const token = Buffer.from(
          JSON.stringify({ id: randomBytes(8).toString('hex'), hash: invoice.paymentHash }),
        ).toString('base64');
        tokens.set(tokenKey(token), { paymentHash: invoice.paymentHash });
        headers.push([
          'WWW-Authenticate',
          `L402 macaroon="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        break;
      }
      case 'mpp': {
        const invoice = await invoiceFor();
        headers.push(['WWW-Authenticate', mppChallenge(url.host, invoice, priceSat)]);
        body = {
          type: 'https://paymentauth.org/problems/payment-required',
          title: 'Payment Required',
          status: 402,
        };
        break;
      }
      case 'multi': {
        const invoice = await invoiceFor();
        const token = mintToken(invoice.paymentHash, path, url.searchParams);
        headers.push([
          'WWW-Authenticate',
          `LSAT macaroon="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        headers.push([
          'WWW-Authenticate',
          `L402 macaroon="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        headers.push(['WWW-Authenticate', mppChallenge(url.host, invoice, priceSat)]);
        headers.push([
          'PAYMENT-REQUIRED',
          Buffer.from(JSON.stringify(x402Requirements(url.href, '10000'))).toString('base64'),
        ]);
        body = {
          status: 402,
          offers: [
            {
              protocol: 'l402',
              amount: amountMsat.toString(),
              unit: 'msat',
              invoice: invoice.paymentRequest,
            },
            {
              protocol: 'mpp',
              amount: priceSat.toString(),
              unit: 'sat',
              invoice: invoice.paymentRequest,
            },
          ],
        };
        break;
      }
      case 'x402v2':
        headers.push([
          'PAYMENT-REQUIRED',
          Buffer.from(JSON.stringify(x402Requirements(url.href, '10000'))).toString('base64'),
        ]);
        body = {};
        break;
      case 'x402v1':
        body = {
          x402Version: 1,
          error: 'X-PAYMENT header is required',
          accepts: [
            {
              scheme: 'exact',
              network: 'base-sepolia',
              maxAmountRequired: '10000',
              asset: '0x036CbD53842c5426634e7929541eC2318f3dCF7e',
              payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
              resource: url.href,
              description: 'paid api',
              mimeType: 'application/json',
              outputSchema: null,
              maxTimeoutSeconds: 60,
              extra: { name: 'USDC', version: '2' },
            },
          ],
        };
        break;
      case 'fewsats':
        body = {
          offers: [
            {
              offer_id: 'credits-1',
              amount: 1,
              currency: 'USD',
              title: '1 credit',
              payment_methods: ['lightning'],
              type: 'one-time',
            },
          ],
          payment_context_token: randomBytes(8).toString('hex'),
          payment_request_url: `${url.origin}/payment_request`,
          version: '0.2.2',
        };
        break;
      case 'cashu':
        headers.push(['X-Cashu', `creqA${randomBytes(24).toString('base64url')}`]);
        break;
      case 'broken-invoice': {
        const token = mintToken(randomBytes(32).toString('hex'), path, url.searchParams);
        headers.push(['WWW-Authenticate', `L402 macaroon="${token}", invoice="lnbcrt1garbage"`]);
        break;
      }
      case 'mismatch-mpp': {
        const invoice = await invoiceFor();
        headers.push(['WWW-Authenticate', mppChallenge(url.host, invoice, 1n)]);
        break;
      }
      case 'mismatch-body': {
        const invoice = await invoiceFor();
        const token = mintToken(invoice.paymentHash, path, url.searchParams);
        headers.push([
          'WWW-Authenticate',
          `L402 macaroon="${token}", invoice="${invoice.paymentRequest}"`,
        ]);
        body = {
          offers: [{ protocol: 'l402', amount: '1', unit: 'sat', invoice: invoice.paymentRequest }],
        };
        break;
      }
      case 'expired':
      case 'mainnet':
      case 'amountless': {
        const paymentRequest =
          form === 'expired'
            ? foreignInvoice({
                network: 'regtest',
                amountMsat,
                timestamp: Math.floor(Date.now() / 1000) - 7200,
                expirySeconds: 60,
              })
            : form === 'mainnet'
              ? foreignInvoice({ network: 'mainnet', amountMsat })
              : foreignInvoice({ network: 'regtest' });
        const token = mintToken(randomBytes(32).toString('hex'), path, url.searchParams);
        headers.push(['WWW-Authenticate', `L402 macaroon="${token}", invoice="${paymentRequest}"`]);
        break;
      }
      case 'missing-invoice': {
        const token = mintToken(randomBytes(32).toString('hex'), path, url.searchParams);
        headers.push(['WWW-Authenticate', `L402 macaroon="${token}"`]);
        break;
      }
      case 'garbage':
        headers.push(['WWW-Authenticate', 'L402 ===, "']);
        break;
    }
    challenges += 1;
    for (const [name, value] of headers) res.appendHeader(name, value);
    res.setHeader('Cache-Control', 'no-store');
    if (typeof body === 'string') {
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.writeHead(402).end(body);
    } else {
      res.setHeader('Content-Type', 'application/json');
      res.writeHead(402).end(JSON.stringify(body));
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    const authorization = req.headers.authorization;
    const trace = req.headers['x-trace'];
    log.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      authorization,
      trace: typeof trace === 'string' ? trace : undefined,
    });
    const form = url.pathname.split('/')[1] as ChallengeForm;
    if (!challengeForms.includes(form)) {
      res.writeHead(404).end('no such form');
      return;
    }
    const paid =
      authorization === undefined ? undefined : checkCredential(authorization, url.pathname);
    if (paid === undefined) {
      await challenge(form, url, res);
      return;
    }
    served += 1;
    res.setHeader('Content-Type', 'application/json');
    res.writeHead(200).end(
      JSON.stringify({
        form,
        path: url.pathname,
        method: req.method,
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks).toString('utf8'),
        paid,
      }),
    );
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      res.writeHead(500).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get challenges() {
      return challenges;
    },
    get served() {
      return served;
    },
    log,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
