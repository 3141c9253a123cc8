/**
 * Finding paid endpoints before paying: `discover(url)` reads every discovery document an origin
 * may publish — an L402 manifest (`/.well-known/l402.json`), an x402 one
 * (`/.well-known/x402.json`) and an OpenAPI document with `x-payment-info` (`/openapi.json`) —
 * into one list of priced endpoints, each with its prices by protocol and the documents that list
 * it (discovery-formats.ts reads each; it is loaded by the first `discover`, so that the paying
 * fetch does not load its schemas). Discovery is advisory: the 402 of an endpoint says what it
 * costs, and the paying fetch pays that.
 */
import { TollwayError } from '../errors.js';
import { readLimited } from '../internal/streams.js';

/** A discovery document format. */
export type DiscoveryFormat = 'l402' | 'x402' | 'openapi';

/** One price of an endpoint, in a protocol's own unit. */
export interface DiscoveredPrice {
  /** `l402`, `mpp` (MPP's lightning method), `x402`, or another MPP method's name. */
  protocol: string;
  /** Base units, a decimal string; absent when the price depends on the request. */
  amount?: string;
  /** `msat`, `sat`, or the x402 asset (a token address). */
  unit: string;
  /** The x402 network (CAIP-2), for x402 prices. */
  network?: string;
}

/** A priced endpoint, as the documents list it. */
export interface DiscoveredEndpoint {
  url: string;
  /** Upper case. */
  method: string;
  service?: string;
  description?: string;
  prices: DiscoveredPrice[];
  /** The documents that list it. */
  sources: DiscoveryFormat[];
}

/** What one document gave. */
export interface DiscoveryDocumentResult {
  format: DiscoveryFormat;
  url: string;
  /** How many endpoints it listed; absent when it could not be read. */
  endpoints?: number;
  /** Why it could not be read (not found, not JSON, not its format's shape). */
  error?: string;
}

/** The result of {@link discover}. */
export interface Discovery {
  origin: string;
  endpoints: DiscoveredEndpoint[];
  documents: DiscoveryDocumentResult[];
}

/** Options of {@link discover}. */
export interface DiscoverOptions {
  /** The fetch to read documents with; default the global `fetch`. */
  fetch?: typeof fetch;
  /** Per document, ms. Default 10 000. */
  timeoutMs?: number;
}

/** The largest discovery document read, bytes (a larger one is reported, not read). */
const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;

/** The reader of each format in discovery-formats.ts. */
type Reader = 'readL402Manifest' | 'readX402Manifest' | 'readOpenApi';

const DOCUMENTS: ReadonlyArray<{ format: DiscoveryFormat; path: string; reader: Reader }> = [
  { format: 'l402', path: '/.well-known/l402.json', reader: 'readL402Manifest' },
  { format: 'x402', path: '/.well-known/x402.json', reader: 'readX402Manifest' },
  { format: 'openapi', path: '/openapi.json', reader: 'readOpenApi' },
];

/** Reads one document: its endpoints, or why not. */
async function readDocument(
  document: (typeof DOCUMENTS)[number],
  origin: string,
  options: DiscoverOptions,
): Promise<{ result: DiscoveryDocumentResult; endpoints: DiscoveredEndpoint[] }> {
  const url = new URL(document.path, origin).href;
  const fail = (error: string) => ({
    result: { format: document.format, url, error },
    endpoints: [],
  });
  let value: unknown;
  try {
    const response = await (options.fetch ?? fetch)(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    if (!response.ok || response.body === null) {
      await response.body?.cancel();
      return fail(`HTTP ${response.status}`);
    }
    const bytes = await readLimited(response.body, MAX_DOCUMENT_BYTES);
    if (bytes === undefined) return fail(`larger than ${MAX_DOCUMENT_BYTES} bytes`);
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    return fail(error instanceof SyntaxError ? 'not JSON' : String((error as Error).message));
  }
  const formats = await import('./discovery-formats.js');
  try {
    const endpoints = formats[document.reader](value, origin);
    return { result: { format: document.format, url, endpoints: endpoints.length }, endpoints };
  } catch (error) {
    if (error instanceof formats.UnreadableDocument) return fail(error.message);
    throw error;
  }
}

/** Merges the endpoints listed by several documents: one per method and URL, prices joined. */
function merge(lists: readonly DiscoveredEndpoint[][]): DiscoveredEndpoint[] {
  const merged = new Map<string, DiscoveredEndpoint>();
  for (const endpoint of lists.flat()) {
    const key = `${endpoint.method} ${endpoint.url}`;
    const known = merged.get(key);
    if (known === undefined) {
      merged.set(key, {
        ...endpoint,
        prices: [...endpoint.prices],
        sources: [...endpoint.sources],
      });
      continue;
    }
    for (const price of endpoint.prices) {
      if (!known.prices.some((seen) => JSON.stringify(seen) === JSON.stringify(price))) {
        known.prices.push(price);
      }
    }
    for (const source of endpoint.sources) {
      if (!known.sources.includes(source)) known.sources.push(source);
    }
    if (known.service === undefined && endpoint.service !== undefined) {
      known.service = endpoint.service;
    }
    if (known.description === undefined && endpoint.description !== undefined) {
      known.description = endpoint.description;
    }
  }
  return [...merged.values()];
}

/**
 * Reads the discovery documents of `url`'s origin (see the module comment). A document that is
 * missing or unreadable is reported in `documents`; throws `no_discovery` only when none could be
 * read.
 *
 * @example
 * ```ts
 * const { endpoints } = await discover('https://api.example.com');
 * for (const endpoint of endpoints) console.log(endpoint.method, endpoint.url, endpoint.prices);
 * ```
 */
export async function discover(url: string, options: DiscoverOptions = {}): Promise<Discovery> {
  const origin = new URL(url).origin;
  const read = await Promise.all(
    DOCUMENTS.map((document) => readDocument(document, origin, options)),
  );
  const documents = read.map((entry) => entry.result);
  if (documents.every((document) => document.error !== undefined)) {
    throw new TollwayError(
      'no_discovery',
      `no discovery document at ${origin}: ${documents
        .map((document) => `${document.url} (${document.error})`)
        .join(', ')}`,
      { details: { documents } },
    );
  }
  return { origin, endpoints: merge(read.map((entry) => entry.endpoints)), documents };
}
