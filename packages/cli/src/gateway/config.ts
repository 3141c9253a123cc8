/**
 * The gateway config: a YAML file (or an object), `${ENV}` and `${ENV:-default}` expanded in every
 * string, checked by one zod schema. Every error names the field path and the reason, e.g.
 * `services[1].upstream: must be an http:// or https:// URL`. Reference: docs/reference/config.md.
 */
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parseAmount, TollwayError } from '@tollway/sdk';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { describeIssues, formatPath } from './config-errors.js';
import { DEFAULT_CONNECTION_LIMITS } from './http-server.js';
import { toolKey } from './mcp-pricing.js';
import { pathWithin } from './services.js';

const SERVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const ENGINE_DURATION = /^\d{1,9}\s*[smhd]$/i;
const TIMEOUT = /^(\d{1,9})\s*(ms|s|m)$/i;
const TIMEOUT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** A header field value (RFC 9110 §5.5): no CR, LF, NUL or other control characters but tab. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** A gRPC method path: `/package.Service/Method`. */
const GRPC_METHOD = /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;

const DURATION_FORMS = "must be whole seconds or text such as '90s', '15m', '1h', '7d'";

/** A length of time as the engine reads it: whole seconds, or `'90s'`, `'15m'`, `'1h'`, `'7d'`. */
const duration = z.union(
  [z.number().int().positive(), z.string().regex(ENGINE_DURATION, { error: DURATION_FORMS })],
  { error: DURATION_FORMS },
);

/** A timeout in milliseconds: a number of ms, or `'500ms'`, `'30s'`, `'2m'`. */
const timeout = z
  .union([
    z.number().int().positive(),
    z
      .string()
      .regex(TIMEOUT, { error: "must be milliseconds or text such as '500ms', '30s', '2m'" }),
  ])
  .transform((value) => {
    if (typeof value === 'number') return value;
    const match = TIMEOUT.exec(value) ?? [];
    return Number(match[1]) * (TIMEOUT_MS[(match[2] ?? '').toLowerCase()] ?? 1);
  });

function isAmount(text: string): boolean {
  try {
    parseAmount(text);
    return true;
  } catch {
    return false;
  }
}

function isRegExp(text: string): boolean {
  try {
    new RegExp(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * An amount in the one amount grammar (docs/reference/amounts.md): `10 sat`, `2500 msat`,
 * `$0.002`, or a number of sats (`10`, which YAML reads as a number). Zero allowed where it means
 * free.
 */
const amount = z
  .union([z.string(), z.number().transform(String)], {
    error: "must be an amount such as '10 sat', '2500 msat' or '$0.01'",
  })
  .refine(isAmount, { error: "must be an amount such as '10 sat', '2500 msat' or '$0.01'" });

function isZero(text: string): boolean {
  const parsed = parseAmount(text);
  return parsed.unit === 'msat' ? parsed.msat === 0n : parsed.microUsd === 0n;
}

/** The dollar amounts of a service, by field: they need a USD/BTC rate to become invoices. */
function dollarAmounts(service: ServiceConfig): Array<{ path: PropertyKey[]; text: string }> {
  const found: Array<{ path: PropertyKey[]; text: string }> = [];
  const check = (text: string | undefined, path: PropertyKey[]): void => {
    if (text !== undefined && isAmount(text) && parseAmount(text).unit === 'usd') {
      found.push({ path, text });
    }
  };
  check(service.price, ['price']);
  check(service.balance, ['balance']);
  for (const [index, rule] of (service.pricing ?? []).entries()) {
    check(rule.price, ['pricing', index, 'price']);
    for (const [key, text] of Object.entries(rule.prices ?? {})) {
      check(text, ['pricing', index, 'prices', key]);
    }
  }
  for (const [tool, text] of Object.entries(service.mcp?.tools ?? {})) {
    check(text, ['mcp', 'tools', tool]);
  }
  const { llm } = service;
  const prices: Array<[PropertyKey[], { input: string; output: string; cachedInput?: string }]> =
    Object.entries(llm?.models ?? {}).map(([model, entry]) => [['llm', 'models', model], entry]);
  if (llm?.defaultPrices !== undefined) prices.push([['llm', 'defaultPrices'], llm.defaultPrices]);
  for (const [path, entry] of prices) {
    check(entry.input, [...path, 'input']);
    check(entry.output, [...path, 'output']);
    check(entry.cachedInput, [...path, 'cachedInput']);
  }
  for (const [method, text] of Object.entries(service.grpc?.methods ?? {})) {
    check(text, ['grpc', 'methods', method]);
  }
  check(service.websocket?.perPeriod, ['websocket', 'perPeriod']);
  check(service.websocket?.perMessage, ['websocket', 'perMessage']);
  return found;
}

const positiveAmount = amount.refine((text) => !isAmount(text) || !isZero(text), {
  error: 'must be more than zero',
});

const path = z.string().startsWith('/', { error: "must start with '/'" });

const rateLimit = z.strictObject({
  requests: z.number().int().positive(),
  per: duration,
  burst: z.number().int().positive().exactOptional(),
});

const rateLimits = z.strictObject({
  challenges: z.union([rateLimit, z.literal(false)]).exactOptional(),
  challengesTotal: z.union([rateLimit, z.literal(false)]).exactOptional(),
  token: rateLimit.exactOptional(),
  network: rateLimit.exactOptional(),
});

const freebies = z.strictObject({ requests: z.number().int().positive(), per: duration });

const httpUrl = z
  .string()
  .refine((text) => URL.canParse(text) && /^https?:$/.test(new URL(text).protocol), {
    error: 'must be an http:// or https:// URL',
  });

/** A condition on the JSON body: a dotted field path and the value it must equal. */
const bodyValue = z.union([z.string(), z.number(), z.boolean()]);

const pricingRule = z
  .strictObject({
    method: z.union([z.string(), z.array(z.string()).min(1)]).exactOptional(),
    path: path.exactOptional(),
    when: z.record(z.string(), bodyValue).exactOptional(),
    field: z.string().min(1).exactOptional(),
    prices: z.record(z.string(), amount).exactOptional(),
    price: amount.exactOptional(),
  })
  .superRefine((rule, ctx) => {
    if (rule.price === undefined && rule.prices === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a pricing rule needs `price` or `prices`' });
    }
    if ((rule.prices === undefined) !== (rule.field === undefined)) {
      ctx.addIssue({ code: 'custom', message: '`field` and `prices` go together' });
    }
  });

/**
 * MCP tool prices: a `tools/call` of a listed tool is priced; every other message is free.
 * `paymentRequired` says how an unpaid priced call is answered: `http` (a 402 with every offer) or
 * `tool-result` (x402 over MCP: an HTTP 200 tool result with `isError` and the x402 offer).
 */
const mcpPricing = z.strictObject({
  tools: z
    .record(z.string().min(1), positiveAmount)
    .refine((tools) => Object.keys(tools).length > 0, { error: 'must name at least one tool' }),
  freeTools: z.array(z.string().min(1)).exactOptional(),
  paymentRequired: z.enum(['http', 'tool-result']).default('http'),
});

/** Headers set on every upstream request; values may hold `${ENV}` secrets. */
const injectedHeaders = z.record(
  z.string().regex(HEADER_NAME, { error: 'is not a valid header name' }),
  z.string().regex(HEADER_VALUE, {
    error: 'is not a valid header value (no line breaks or control characters)',
  }),
);

/**
 * What the gateway tells an upstream about the request besides its own headers: the client's
 * address (`X-Forwarded-*`, `Forwarded`) and how it was paid (`X-Tollway-*`). Default: both for
 * a service of your own, neither for an `llm` service and its providers (usually a third party).
 */
const toldUpstream = {
  forwardedHeaders: z.boolean().exactOptional(),
  paymentHeaders: z.boolean().exactOptional(),
};

/** Prices of a model per million tokens, all in one unit (sats or dollars). */
const modelPrices = {
  input: amount,
  output: amount,
  cachedInput: amount.exactOptional(),
};

function oneUnit(prices: { input: string; output: string; cachedInput?: string }): boolean {
  const units = [prices.input, prices.output, prices.cachedInput ?? prices.input]
    .filter(isAmount)
    .map((text) => parseAmount(text).unit);
  return units.every((unit) => unit === units[0]);
}

const ONE_UNIT = {
  error: 'give input, output and cachedInput in one unit (all sats or all dollars)',
};

/** One model of an `llm` table: its prices, the provider serving it, its name there. */
const llmModel = z
  .strictObject({
    ...modelPrices,
    provider: z.string().min(1).exactOptional(),
    upstreamModel: z.string().min(1).exactOptional(),
  })
  .refine(oneUnit, ONE_UNIT);

/**
 * An `llm` block: the model table of a service selling LLM access per token, and the providers
 * its models are routed to (a model naming no provider goes to the service's `upstream`).
 */
const llmSchema = z.strictObject({
  providers: z
    .record(
      z.string().regex(SERVICE_NAME, {
        error: 'must be 1-64 letters, digits, `_` or `-`, starting with a letter or digit',
      }),
      z.strictObject({
        upstream: httpUrl,
        headers: injectedHeaders.exactOptional(),
        ...toldUpstream,
      }),
    )
    .exactOptional(),
  models: z.record(z.string().min(1), llmModel),
  defaultPrices: z
    .strictObject({ ...modelPrices, provider: z.string().min(1).exactOptional() })
    .refine(oneUnit, ONE_UNIT)
    .exactOptional(),
  defaultMaxTokens: z.number().int().positive().exactOptional(),
});

/** What a service sells besides its `llm` block, as {@link checkLlm} reads it. */
interface LlmSale {
  llm?: z.output<typeof llmSchema>;
  price?: string;
  pricing?: unknown;
  mcp?: unknown;
  uses?: number;
  balance?: string;
}

/** The problems of a service's `llm` block with the rest of the service. */
function checkLlm(service: LlmSale, ctx: z.RefinementCtx): void {
  const { llm } = service;
  if (llm === undefined) return;
  const issue = (path: PropertyKey[], message: string) =>
    ctx.addIssue({ code: 'custom', path, message });
  for (const field of ['price', 'pricing', 'mcp', 'uses'] as const) {
    if (service[field] !== undefined) {
      issue([field], 'an `llm` service is priced by its model table, per token');
    }
  }
  if (service.balance === undefined) {
    issue(['balance'], 'is required with `llm`: what one payment buys, drawn per call');
  }
  if (Object.keys(llm.models).length === 0 && llm.defaultPrices === undefined) {
    issue(['llm', 'models'], 'must name at least one model (or set `llm.defaultPrices`)');
  }
  const providers = new Set(Object.keys(llm.providers ?? {}));
  const known = `the providers are ${[...providers].join(', ') || 'none'} (without \`provider\`, a model goes to the service's \`upstream\`)`;
  for (const [name, model] of Object.entries(llm.models)) {
    if (model.provider !== undefined && !providers.has(model.provider)) {
      issue(
        ['llm', 'models', name, 'provider'],
        `"${model.provider}" is not in \`llm.providers\`; ${known}`,
      );
    }
  }
  const fallback = llm.defaultPrices?.provider;
  if (fallback !== undefined && !providers.has(fallback)) {
    issue(
      ['llm', 'defaultPrices', 'provider'],
      `"${fallback}" is not in \`llm.providers\`; ${known}`,
    );
  }
}
/** gRPC: prices per method (`/package.Service/Method`); other methods cost the service's `price`. */
const grpcPricing = z.strictObject({
  methods: z
    .record(
      z.string().regex(GRPC_METHOD, {
        error: "must be a gRPC method such as '/package.Service/Method'",
      }),
      amount,
    )
    .exactOptional(),
});

/**
 * WebSockets: what an open socket draws from the balance its credential carries, per started
 * period (a minute unless `period` says otherwise) and per message, and whether the client is
 * sent the gateway's notices (text frames).
 */
const websocketPricing = z.strictObject({
  perPeriod: positiveAmount.exactOptional(),
  period: timeout.default(60_000),
  perMessage: positiveAmount.exactOptional(),
  messages: z.enum(['client', 'upstream', 'both']).default('both'),
  notice: z.boolean().default(true),
});

const serviceSchema = z
  .strictObject({
    name: z.string().regex(SERVICE_NAME, {
      error: 'must be 1-64 letters, digits, `_` or `-`, starting with a letter or digit',
    }),
    host: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).exactOptional(),
    path: path.default('/'),
    upstream: httpUrl,
    tls: z
      .strictObject({
        insecureSkipVerify: z.boolean().exactOptional(),
        caFile: z.string().min(1).exactOptional(),
      })
      .exactOptional(),
    preserveHost: z.boolean().default(false),
    stripPrefix: z.union([z.boolean(), path]).default(false),
    headers: injectedHeaders.exactOptional(),
    ...toldUpstream,
    timeouts: z
      .strictObject({
        connect: timeout.exactOptional(),
        response: timeout.exactOptional(),
        idle: timeout.exactOptional(),
      })
      .exactOptional(),
    auth: z
      .union([z.enum(['on', 'off']), z.boolean()], { error: 'must be on or off' })
      .transform((value) => value === true || value === 'on')
      .default(true),
    shadow: z.boolean().exactOptional(),
    freebies: freebies.exactOptional(),
    rateLimits: rateLimits.exactOptional(),
    allowlist: z
      .array(
        z
          .string()
          .refine(
            (entry) => (entry.startsWith('~') ? isRegExp(entry.slice(1)) : entry.startsWith('/')),
            {
              error: "must be a path prefix starting with '/' or '~' and a regular expression",
            },
          ),
      )
      .exactOptional(),
    price: amount.exactOptional(),
    pricing: z.array(pricingRule).min(1).exactOptional(),
    mcp: mcpPricing.exactOptional(),
    llm: llmSchema.exactOptional(),
    grpc: grpcPricing.exactOptional(),
    websocket: websocketPricing.exactOptional(),
    x402: z.literal(false).exactOptional(),
    description: z.string().exactOptional(),
    tier: z.number().int().min(0).max(65_535).exactOptional(),
    capabilities: z.array(z.string().min(1)).exactOptional(),
    requiresCapability: z.string().min(1).exactOptional(),
    validFor: duration.exactOptional(),
    uses: z.number().int().positive().exactOptional(),
    balance: positiveAmount.exactOptional(),
    chargeBelow: z.number().int().min(200).max(600).exactOptional(),
    scope: z
      .strictObject({
        paths: z.array(path).min(1).exactOptional(),
        methods: z.array(z.string().min(1)).min(1).exactOptional(),
      })
      .exactOptional(),
  })
  .superRefine((service, ctx) => {
    checkLlm(service, ctx);
    if (service.mcp !== undefined) {
      const priced = new Map<string, string>();
      for (const name of Object.keys(service.mcp.tools)) {
        const other = priced.get(toolKey(name));
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['mcp', 'tools', name],
            message: `"${name}" and "${other}" are one tool to a server that ignores case and spaces`,
          });
        }
        priced.set(toolKey(name), name);
      }
      for (const [index, name] of (service.mcp.freeTools ?? []).entries()) {
        if (priced.has(toolKey(name))) {
          ctx.addIssue({
            code: 'custom',
            path: ['mcp', 'freeTools', index],
            message: `"${name}" is also priced in \`mcp.tools\``,
          });
        }
      }
      if (service.pricing !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['mcp'],
          message: 'a service is priced by `mcp` or by `pricing` rules, not both',
        });
      }
      if (service.mcp.paymentRequired === 'tool-result') {
        const where = { code: 'custom' as const, path: ['mcp', 'paymentRequired'] };
        if (service.x402 === false) {
          ctx.addIssue({
            ...where,
            message: '`tool-result` answers with the x402 offer, which `x402: false` turns off',
          });
        }
        const prices = [...Object.values(service.mcp.tools), service.price ?? '$1'];
        if (prices.some((price) => isAmount(price) && parseAmount(price).unit !== 'usd')) {
          ctx.addIssue({
            ...where,
            message: '`tool-result` needs dollar prices (x402 is paid in a USD token)',
          });
        }
        if (service.uses !== undefined || service.balance !== undefined) {
          ctx.addIssue({
            ...where,
            message: '`tool-result` sells single calls, not `uses` or a `balance`',
          });
        }
      }
    }
    for (const method of Object.keys(service.grpc?.methods ?? {})) {
      if (!pathWithin(method, service.path)) {
        ctx.addIssue({
          code: 'custom',
          path: ['grpc', 'methods', method],
          message: `is outside the service's path ${service.path}`,
        });
      }
    }
    const metered = service.websocket;
    if (
      metered !== undefined &&
      (metered.perPeriod !== undefined || metered.perMessage !== undefined) &&
      service.balance === undefined
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['websocket'],
        message: "`perPeriod` and `perMessage` draw from a balance: set the service's `balance`",
      });
    }
    if (!service.auth) return;
    if (service.price === undefined && service.mcp === undefined && service.llm === undefined) {
      ctx.addIssue({ code: 'custom', path: ['price'], message: 'is required unless `auth: off`' });
    } else if (
      service.price !== undefined &&
      service.pricing === undefined &&
      service.mcp === undefined &&
      service.grpc?.methods === undefined &&
      isAmount(service.price) &&
      isZero(service.price)
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['price'],
        message:
          'must be more than zero (zero is allowed only as the default of `pricing` rules or `grpc.methods`)',
      });
    }
    if (service.uses !== undefined && service.balance !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['balance'],
        message: 'a service sells uses or a balance, not both',
      });
    }
  });

const evmAddress = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, { error: 'must be a 0x address (20 bytes of hex)' });

/** The x402 offer added to every priced service: an EIP-3009 token on one EVM chain. */
const x402Schema = z
  .strictObject({
    network: z
      .string()
      .regex(/^eip155:\d+$/, { error: "must be a CAIP-2 EVM network such as 'eip155:8453'" }),
    asset: z.strictObject({
      address: evmAddress,
      decimals: z.number().int().min(0).max(36),
      name: z.string().min(1),
      version: z.string().min(1),
    }),
    payTo: evmAddress,
    facilitator: z.union(
      [
        z.strictObject({ url: z.url() }),
        z.strictObject({
          rpcUrl: z.url(),
          privateKey: z
            .string()
            .regex(/^(0x)?[0-9a-fA-F]{64}$/, { error: 'must be 32 bytes of hex' }),
        }),
      ],
      { error: 'must be {url} (a facilitator service) or {rpcUrl, privateKey} (self-hosted)' },
    ),
    settle: z.enum(['after', 'upfront']).exactOptional(),
    upto: z
      .union([z.literal(true), z.strictObject({ facilitatorAddress: evmAddress })], {
        error: 'must be true (the self-hosted facilitator settles) or {facilitatorAddress}',
      })
      .exactOptional(),
    batch: z
      .strictObject({
        receiverAuthorizerKey: z
          .string()
          .regex(/^(0x)?[0-9a-fA-F]{64}$/, { error: 'must be 32 bytes of hex' }),
        redeemEvery: timeout.exactOptional(),
        withdrawDelay: z.number().int().min(900).max(2_592_000).exactOptional(),
      })
      .exactOptional(),
  })
  .superRefine((x402, ctx) => {
    if (x402.upto === true && 'url' in x402.facilitator) {
      ctx.addIssue({
        code: 'custom',
        path: ['upto'],
        message:
          'give {facilitatorAddress}: the account of the remote facilitator that settles upto payments (its /supported names it)',
      });
    }
  });

const store = z
  .string()
  .min(1)
  .transform((text): StoreConfig => {
    if (/^postgres(ql)?:\/\//i.test(text)) return { kind: 'postgres', url: text };
    return { kind: 'sqlite', path: text.replace(/^sqlite:/i, '') };
  });

const listen = z
  .union([z.number().int().min(0).max(65_535), z.string()])
  .transform((value, ctx): ListenConfig => {
    if (typeof value === 'number') return { host: '127.0.0.1', port: value };
    const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
    const port = Number(match?.[3]);
    if (match === null || port > 65_535) {
      ctx.addIssue({
        code: 'custom',
        message: "must be a port or 'host:port' (e.g. '0.0.0.0:8402')",
      });
      return z.NEVER;
    }
    return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
  });

/** Limits on client connections (see http-server.ts). */
const connections = z
  .strictObject({
    headersTimeout: timeout.default(DEFAULT_CONNECTION_LIMITS.headersTimeout),
    requestTimeout: z
      .union([z.literal(0), timeout])
      .default(DEFAULT_CONNECTION_LIMITS.requestTimeout),
    keepAliveTimeout: timeout.default(DEFAULT_CONNECTION_LIMITS.keepAliveTimeout),
    max: z.number().int().positive().default(DEFAULT_CONNECTION_LIMITS.max),
  })
  .superRefine((limits, ctx) => {
    if (limits.requestTimeout !== 0 && limits.headersTimeout > limits.requestTimeout) {
      ctx.addIssue({
        code: 'custom',
        path: ['headersTimeout'],
        message: 'must not be longer than connections.requestTimeout',
      });
    }
  })
  .default(DEFAULT_CONNECTION_LIMITS);

const configSchema = z
  .strictObject({
    listen: listen.default({ host: '127.0.0.1', port: 8402 }),
    tls: z
      .strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) })
      .exactOptional(),
    h2c: z.boolean().default(false),
    discovery: z
      .strictObject({
        enabled: z.boolean().default(true),
        name: z.string().min(1).exactOptional(),
      })
      .default({ enabled: true }),
    dataDir: z.string().min(1).default('.tollway'),
    store: store.exactOptional(),
    lightning: z.string().min(1, {
      error:
        "must be a Lightning connection string such as 'lnd+https://…' or 'dev+http://127.0.0.1:8403?wallet=…&token=…'",
    }),
    secrets: z
      .strictObject({
        file: z.string().min(1).exactOptional(),
        env: z.string().min(1).exactOptional(),
      })
      .default({}),
    admin: z
      .strictObject({
        token: z.string().min(16, { error: 'must be at least 16 characters' }).exactOptional(),
        listen: listen.exactOptional(),
        overlayFile: z.string().min(1).exactOptional(),
        env: z
          .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'is not a variable name' }))
          .default([]),
      })
      .default({ env: [] }),
    metrics: z
      .strictObject({
        enabled: z.boolean().default(true),
        listen: listen.exactOptional(),
        public: z.boolean().default(false),
      })
      .default({ enabled: true, public: false }),
    tracing: z.strictObject({ enabled: z.boolean().default(false) }).default({ enabled: false }),
    paywall: z
      .strictObject({
        realm: z.string().min(1).exactOptional(),
        protocols: z
          .array(z.enum(['l402', 'mpp']))
          .min(1)
          .exactOptional(),
        l402Form: z.enum(['legacy', 'spec']).exactOptional(),
        compat: z.literal('aperture').exactOptional(),
        strict: z.boolean().exactOptional(),
        challengeExpiry: duration.exactOptional(),
        reservationTtl: duration.exactOptional(),
        balanceLeases: z.boolean().exactOptional(),
        sessions: z.strictObject({ idleTimeout: duration.exactOptional() }).exactOptional(),
        usdPerBtc: z
          .union([z.string().regex(/^\d+(\.\d+)?$/), z.number().int().positive()], {
            error: "must be a positive decimal such as '65000'",
          })
          .exactOptional(),
        cors: z
          .union([
            z.literal(false),
            z.strictObject({ origin: z.union([z.string(), z.array(z.string())]) }),
          ])
          .exactOptional(),
        trustProxy: z.union([z.boolean(), z.number().int().min(0)]).default(false),
        bodyLimit: z.number().int().min(0).default(1_048_576),
        freebies: freebies.exactOptional(),
        rateLimits: rateLimits.exactOptional(),
      })
      .default({ trustProxy: false, bodyLimit: 1_048_576 }),
    shutdownTimeout: timeout.default(10_000),
    connections,
    x402: x402Schema.exactOptional(),
    services: z.array(serviceSchema),
  })
  .superRefine((config, ctx) => {
    if (config.h2c && config.tls !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['h2c'],
        message: 'is cleartext HTTP/2; with `tls`, HTTP/2 is offered by ALPN already',
      });
    }
    if (config.paywall.usdPerBtc === undefined) {
      for (const [index, service] of config.services.entries()) {
        for (const { path, text } of dollarAmounts(service)) {
          ctx.addIssue({
            code: 'custom',
            path: ['services', index, ...path],
            message: `'${text}' is in dollars, and invoices are in sats: set \`paywall.usdPerBtc\` (for example \`usdPerBtc: '65000'\`), or write the price in sats`,
          });
        }
      }
    }
    const seen = new Set<string>();
    for (const [index, service] of config.services.entries()) {
      if (seen.has(service.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['services', index, 'name'],
          message: `"${service.name}" is used twice`,
        });
      }
      seen.add(service.name);
    }
  });

/** Where the gateway listens. */
export interface ListenConfig {
  host: string;
  port: number;
}

/** The store: a SQLite file, or a PostgreSQL URL (for several gateway instances). */
type StoreConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** A checked gateway config, with defaults filled in. */
export type GatewayConfig = z.output<typeof configSchema>;

/** One checked service of a {@link GatewayConfig}. */
export type ServiceConfig = z.output<typeof serviceSchema>;

/** One pricing rule of a service. */
export type PricingRule = z.output<typeof pricingRule>;

/** The `llm` block of a service: its model table and providers. */
export type LlmConfig = z.output<typeof llmSchema>;

/** The `mcp` block of a service: prices of MCP tools. */
export type McpPricing = z.output<typeof mcpPricing>;

/** The `websocket` block of a service: what an open socket draws from its balance. */
export type WebsocketPricing = z.output<typeof websocketPricing>;

/** The top-level `x402` block: the x402 offer of every priced service. */
export type X402Config = z.output<typeof x402Schema>;

/** Where `${NAME}` values come from. */
export type Env = Readonly<Record<string, string | undefined>>;

function configError(problems: string[], source: string | undefined): TollwayError {
  const where = source === undefined ? 'the gateway config' : source;
  return new TollwayError('invalid_config', `${where}:\n  ${problems.join('\n  ')}`, {
    details: { problems },
  });
}

/**
 * Which variables `${NAME}` may read: all of `env` (the config file), or only the names in
 * `allowed` (data sent through the admin API, limited to `admin.env`).
 */
interface Expansion {
  env: Env;
  allowed?: ReadonlySet<string>;
}

/** A variable that cannot be expanded, at a field path. */
interface VariableProblem {
  path: string;
  name: string;
  /** `unset`: no value and no default; `not_allowed`: outside `admin.env`. */
  reason: 'unset' | 'not_allowed';
}

/**
 * Expands `${NAME}` and `${NAME:-default}` in one string; `$$` is a literal `$`. Notes each
 * variable that is unset without a default, or that the expansion may not read.
 */
function expandString(
  text: string,
  expansion: Expansion,
  path: string,
  problems: VariableProblem[],
): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
    (whole, name: string | undefined, fallback: string | undefined) => {
      if (whole === '$$') return '$';
      const variable = name ?? '';
      if (expansion.allowed !== undefined && !expansion.allowed.has(variable)) {
        problems.push({ path, name: variable, reason: 'not_allowed' });
        return '';
      }
      const value = expansion.env[variable];
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      problems.push({ path, name: variable, reason: 'unset' });
      return '';
    },
  );
}

/** Expands every string of a parsed YAML tree, noting each variable problem with its field. */
function expandTree(
  value: unknown,
  expansion: Expansion,
  at: PropertyKey[],
  problems: VariableProblem[],
): unknown {
  if (typeof value === 'string') return expandString(value, expansion, formatPath(at), problems);
  if (Array.isArray(value)) {
    return value.map((item, index) => expandTree(item, expansion, [...at, index], problems));
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        expandTree(item, expansion, [...at, key], problems),
      ]),
    );
  }
  return value;
}

function describeVariableProblem({ path, name, reason }: VariableProblem): string {
  return reason === 'unset'
    ? `${path}: environment variable ${name} is not set (write \${${name}:-default} for a default)`
    : `${path}: \${${name}} is not in admin.env (the admin API may only read the environment variables the config file lists there)`;
}

/** Expands and checks `input` with `schema`; throws every problem, variable problems first. */
function check<T extends z.ZodType>(
  schema: T,
  input: unknown,
  expansion: Expansion,
  source: string | undefined,
): z.output<T> {
  const variables: VariableProblem[] = [];
  const parsed = schema.safeParse(expandTree(input, expansion, [], variables));
  const problems = variables.map(describeVariableProblem);
  const named = new Set(variables.map(({ path }) => path));
  const issues = parsed.success ? [] : parsed.error.issues;
  problems.push(
    ...describeIssues(
      schema,
      issues.filter((issue) => !named.has(formatPath(issue.path))),
    ),
  );
  if (problems.length > 0 || !parsed.success) throw configError(problems, source);
  return parsed.data;
}

/**
 * Checks a config object (parsed YAML or JSON): expands `${ENV}` references, applies defaults and
 * validates every field. Throws `invalid_config` listing every problem as `field.path: reason`.
 *
 * @example
 * ```ts
 * const config = parseGatewayConfig({ lightning: process.env.TOLLWAY_LIGHTNING, services: [{ name: 'api', upstream: 'http://127.0.0.1:8080', price: '10 sat' }] });
 * config.services[0]?.path; // '/'
 * ```
 */
export function parseGatewayConfig(
  input: unknown,
  options: { env?: Env; source?: string } = {},
): GatewayConfig {
  return check(configSchema, input ?? {}, { env: options.env ?? process.env }, options.source);
}

/**
 * Checks one service sent through the admin API (or kept in the overlay). Its `${NAME}` references
 * may only name the variables in `allowedEnv` (the config's `admin.env`): the operator's
 * environment belongs to the config file. Throws `invalid_config` naming each field.
 *
 * @example
 * ```ts
 * const service = parseServiceConfig({ name: 'llm', upstream: 'https://api.example.com', price: '5 sat' }, process.env, []);
 * ```
 */
export function parseServiceConfig(
  input: unknown,
  env: Env,
  allowedEnv: readonly string[],
): ServiceConfig {
  return check(serviceSchema, input, { env, allowed: new Set(allowedEnv) }, 'service');
}

/**
 * Reads and checks a YAML config file. Relative paths in it (`dataDir`, the SQLite file, secret and
 * CA files) are resolved against the file's folder. Throws `invalid_config` naming the file, and
 * the line and column of YAML syntax errors.
 *
 * @example
 * ```ts
 * const config = await loadGatewayConfig('tollway.yaml');
 * ```
 */
export async function loadGatewayConfig(
  file: string,
  env: Env = process.env,
): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new TollwayError('invalid_config', `${file}: cannot be read`, { cause });
  }
  const document = parseDocument(text);
  if (document.errors.length > 0) {
    throw configError(
      document.errors.map((error) => (error.message.split('\n')[0] ?? '').replace(/:$/, '')),
      file,
    );
  }
  const config = parseGatewayConfig(document.toJS(), { env, source: file });
  return resolveConfigPaths(config, resolve(file, '..'));
}

/**
 * Resolves the relative file paths of a config against `base` (the config file's folder).
 *
 * @example
 * ```ts
 * const config = resolveConfigPaths(parseGatewayConfig(object), '/etc/tollway');
 * ```
 */
function resolveConfigPaths(config: GatewayConfig, base: string): GatewayConfig {
  const at = (file: string) =>
    isAbsolute(file) || file === ':memory:' ? file : resolve(base, file);
  return {
    ...config,
    dataDir: at(config.dataDir),
    ...(config.store?.kind === 'sqlite'
      ? { store: { kind: 'sqlite', path: at(config.store.path) } }
      : {}),
    ...(config.tls === undefined
      ? {}
      : { tls: { certFile: at(config.tls.certFile), keyFile: at(config.tls.keyFile) } }),
    secrets: {
      ...config.secrets,
      ...(config.secrets.file === undefined ? {} : { file: at(config.secrets.file) }),
    },
    admin: {
      ...config.admin,
      ...(config.admin.overlayFile === undefined
        ? {}
        : { overlayFile: at(config.admin.overlayFile) }),
    },
    services: config.services.map((service) => resolveServicePaths(service, base)),
  };
}

/** Resolves a service's CA file against `base`. */
export function resolveServicePaths(service: ServiceConfig, base: string): ServiceConfig {
  const caFile = service.tls?.caFile;
  if (caFile === undefined || isAbsolute(caFile)) return service;
  return { ...service, tls: { ...service.tls, caFile: resolve(base, caFile) } };
}
