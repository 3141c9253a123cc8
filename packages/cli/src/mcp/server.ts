/**
 * The MCP server of `tollway mcp` and its two transports: stdio (one client, the host that spawned
 * the process) and Streamable HTTP on loopback (stateless: a fresh protocol server per request, all
 * sharing one agent).
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { version } from '../version.js';
import type { Agent } from './agent.js';
import { registerTools } from './tools.js';

/** The path the Streamable HTTP endpoint answers on. */
const MCP_HTTP_PATH = '/mcp';

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Shared by every server: building one costs ~10 ms, and HTTP builds a server per request. */
let validator: AjvJsonSchemaValidator | undefined;

const INSTRUCTIONS =
  "Tollway pays for HTTP APIs that answer 402 Payment Required, from the user's wallet (Lightning, or x402 stablecoins when configured) and within the user's budget. Use fetch to get a URL (it pays when asked, and reuses what was bought), quote to learn a price without paying, discover to list the paid endpoints an API publishes, budget to see what is left, payments to see what was spent. Amounts are in sat. When a tool returns an error, its text starts with a code and says what to do.";

/**
 * An MCP server with the Tollway tools over `agent`.
 *
 * @example
 * ```ts
 * const server = createMcpServer(agent);
 * await server.connect(new StdioServerTransport());
 * ```
 */
function createMcpServer(agent: Agent): McpServer {
  validator ??= new AjvJsonSchemaValidator();
  const server = new McpServer(
    { name: 'tollway', version },
    { instructions: INSTRUCTIONS, jsonSchemaValidator: validator },
  );
  registerTools(server, agent);
  return server;
}

/**
 * Serves `agent` over stdio until the client closes stdin (or the transport fails).
 *
 * @example
 * ```ts
 * await serveStdio(agent); // returns when the MCP host goes away
 * await agent.close();
 * ```
 */
export async function serveStdio(agent: Agent): Promise<void> {
  const server = createMcpServer(agent);
  const closed = new Promise<void>((resolve) => {
    server.server.onclose = resolve;
  });
  await server.connect(new StdioServerTransport());
  process.stdin.once('end', () => void server.close());
  await closed;
}

/** A running Streamable HTTP endpoint; see {@link serveHttp}. */
export interface McpHttpServer {
  /** `http://127.0.0.1:<port>/mcp`. */
  url: string;
  close(): Promise<void>;
}

/** The host name of a `Host` header or an `Origin`, or `undefined` when it does not parse. */
function hostnameOf(text: string): string | undefined {
  try {
    return new URL(text.includes('://') ? text : `http://${text}`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * A request a web page could have sent: a `Host` that is not loopback (DNS rebinding) or an
 * `Origin` that is not loopback (another site). Such requests are refused, since this endpoint
 * spends the user's money.
 */
function isForeign(req: IncomingMessage): boolean {
  const host = hostnameOf(req.headers.host ?? '');
  if (host === undefined || !LOOPBACK.has(host)) return true;
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  const originHost = hostnameOf(origin);
  return originHost === undefined || !LOOPBACK.has(originHost);
}

/** True when `req` carries `Authorization: Bearer <token>` (compared in constant time). */
function hasToken(req: IncomingMessage, token: string): boolean {
  const presented = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

async function handle(
  agent: Agent,
  req: IncomingMessage,
  res: ServerResponse,
  token: string | undefined,
): Promise<void> {
  if (isForeign(req)) {
    res
      .writeHead(403, { 'content-type': 'text/plain' })
      .end('forbidden: not a loopback host or origin\n');
    return;
  }
  if (token !== undefined && !hasToken(req, token)) {
    res
      .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' })
      .end('unauthorized: send Authorization: Bearer <the --token value>\n');
    return;
  }
  if (new URL(req.url ?? '/', 'http://localhost').pathname !== MCP_HTTP_PATH) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end(`not found: use ${MCP_HTTP_PATH}\n`);
    return;
  }
  if (req.method !== 'POST') {
    // Stateless: no session to stream to (GET) or to end (DELETE).
    res.writeHead(405, { allow: 'POST', 'content-type': 'text/plain' }).end('use POST\n');
    return;
  }
  const server = createMcpServer(agent);
  const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true });
  res.on('close', () => {
    void transport.close();
    void server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res);
}

/**
 * Serves `agent` over Streamable HTTP (stateless, JSON responses) on 127.0.0.1. Requests from a
 * non-loopback `Host` or `Origin` are refused with 403; with a `token`, requests without
 * `Authorization: Bearer <token>` are refused with 401 (other local programs cannot spend).
 *
 * @example
 * ```ts
 * const http = await serveHttp(agent, 3402, { token: process.env.TOLLWAY_MCP_TOKEN });
 * console.error(`MCP endpoint: ${http.url}`);
 * ```
 */
export async function serveHttp(
  agent: Agent,
  port: number,
  options: { token?: string | undefined } = {},
): Promise<McpHttpServer> {
  const { token } = options;
  const server = createServer((req, res) => {
    handle(agent, req, res, token).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`internal error: ${error instanceof Error ? error.message : String(error)}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}${MCP_HTTP_PATH}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
      }),
  };
}
