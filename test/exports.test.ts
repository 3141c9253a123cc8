/**
 * The public surface of every entry point, pinned: each subpath of @tollway/sdk exports exactly
 * these names (types aside), so an export added, renamed or dropped by accident fails here. A
 * deliberate change updates this list in the same commit. The tollway CLI package exports nothing:
 * it is a bin.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const PINNED: Record<string, string[]> = {
  '@tollway/sdk': [
    'MAX_MICRO_USD',
    'MAX_MSAT',
    'TollwayError',
    'bytesToHex',
    'errorCodes',
    'errorStatus',
    'fail',
    'fixedRate',
    'formatAmount',
    'formatMsat',
    'formatTokenAmount',
    'formatUsd',
    'hexToBytes',
    'isTollwayError',
    'msatToSat',
    'msatToUsd',
    'ok',
    'parseAmount',
    'parseTokenAmount',
    'parseUsdPerBtc',
    'satToMsat',
    'usdToMsat',
  ],
  '@tollway/sdk/l402': [
    'MAX_MACAROON_BYTES',
    'MAX_MACAROON_CAVEATS',
    'addFirstPartyCaveat',
    'balanceSatisfier',
    'capabilitiesSatisfier',
    'computeMacaroonSignature',
    'createMacaroon',
    'createServiceCaveats',
    'createTokenId',
    'decodeIdentifier',
    'decodeMacaroon',
    'defaultSatisfiers',
    'encodeIdentifier',
    'encodeMacaroon',
    'firstPartyCaveats',
    'formatCaveat',
    'formatL402Challenges',
    'formatL402Credential',
    'formatMacaroon',
    'methodsSatisfier',
    'parseCaveat',
    'parseL402Challenges',
    'parseL402Credential',
    'parseMacaroon',
    'pathsSatisfier',
    'priceSatisfier',
    'servicesSatisfier',
    'tollwayConditions',
    'usesSatisfier',
    'validUntilSatisfier',
    'verifyCaveats',
    'verifyL402',
    'verifyMacaroonSignature',
  ],
  '@tollway/sdk/mpp': [
    'canonicalizeJson',
    'createChallengeId',
    'createPaymentChallenge',
    'decodeBase64Url',
    'decodeChargeRequest',
    'encodeBase64Url',
    'encodeChargeRequest',
    'formatPaymentChallenge',
    'formatPaymentCredential',
    'formatPaymentReceipt',
    'parsePaymentChallenges',
    'parsePaymentCredential',
    'parsePaymentReceipt',
    'verifyChallengeId',
    'verifyPaymentCredential',
  ],
  '@tollway/sdk/x402': [
    'X402_HEADERS',
    'X402_MAX_BODY_LENGTH',
    'X402_MAX_HEADER_LENGTH',
    'X402_MCP_KEYS',
    'createEvmWallet',
    'createFacilitatorClient',
    'createFacilitatorHandler',
    'createMcpPaymentRequiredResult',
    'createSelfHostedFacilitator',
    'formatPaymentRequiredHeader',
    'formatPaymentRequiredV1Body',
    'formatPaymentResponseHeader',
    'formatPaymentSignatureHeader',
    'formatXPaymentHeader',
    'formatXPaymentResponseHeader',
    'isX402Network',
    'mcpToolUrl',
    'networkFromV1',
    'networkToV1',
    'parseExactEvmPayload',
    'parsePaymentRequiredHeader',
    'parsePaymentRequiredV1Body',
    'parsePaymentResponseHeader',
    'parsePaymentSignatureHeader',
    'parseXPaymentHeader',
    'parseXPaymentResponseHeader',
    'readMcpPayment',
    'readMcpPaymentRequired',
    'readMcpPaymentResponse',
    'withMcpPaymentResponse',
  ],
  '@tollway/sdk/x402/local-chain': [
    'AnvilUnavailableError',
    'MULTICALL3_ADDRESS',
    'PAYER_FUNDS',
    'WATCHDOG',
    'anvilBinary',
    'readLocalChainArtifacts',
    'startLocalChain',
  ],
  '@tollway/sdk/client': [
    'assertConsistentPrices',
    'chooseOffer',
    'createBudget',
    'createMemoryClientStore',
    'createPayingFetch',
    'createSqliteClientStore',
    'defaultAgentDbPath',
    'getPayment',
    'parseOffers',
    'rankOffers',
  ],
  '@tollway/sdk/lightning': [
    'connectLightning',
    'createPreimage',
    'decodeInvoice',
    'encodeInvoice',
    'formatNwcUri',
    'isInvoiceExpired',
    'parseLightningConnection',
    'parseNwcUri',
    'preimageMatches',
    'wrapBackend',
  ],
  '@tollway/sdk/lightning/nwc': ['createNwcBackend', 'formatNwcUri', 'parseNwcUri'],
  '@tollway/sdk/llm': [
    'createAnswerReader',
    'createLlmPricing',
    'createStreamUsage',
    'usageOfAnswer',
  ],
  '@tollway/sdk/lightning/dev': [
    'DEFAULT_DEV_BALANCE_MSAT',
    'DEV_NODE_ALIAS',
    'DEV_SANDBOX_HEADER',
    'createDevBackend',
    'createDevNetwork',
    'createDevServer',
    'createDevWallet',
  ],
  '@tollway/sdk/server': [
    'clientNetwork',
    'createMasterSecret',
    'createPaywall',
    'createProblemResponse',
    'createRootKeys',
    'createX402Offer',
    'formatProblem',
  ],
  '@tollway/sdk/money': [
    'MAX_MICRO_USD',
    'MAX_MSAT',
    'fixedRate',
    'formatAmount',
    'formatMsat',
    'formatTokenAmount',
    'formatUsd',
    'msatToSat',
    'msatToUsd',
    'parseAmount',
    'parseTokenAmount',
    'parseUsdPerBtc',
    'satToMsat',
    'usdToMsat',
  ],
  '@tollway/sdk/errors': [
    'TollwayError',
    'errorCodes',
    'errorStatus',
    'fail',
    'isTollwayError',
    'ok',
  ],
  '@tollway/sdk/stores/memory': ['createMemoryStore'],
  '@tollway/sdk/stores/sqlite': ['createSqliteStore'],
  '@tollway/sdk/stores/postgres': ['createPostgresStore'],
  '@tollway/sdk/node': [
    'createPaywallRequest',
    'readJsonBody',
    'withPaywall',
    'writePaywallResponse',
  ],
  '@tollway/sdk/express': ['requirePayment'],
  '@tollway/sdk/fastify': ['paywallPlugin', 'requirePayment'],
  '@tollway/sdk/hono': ['requirePayment'],
};

const packageJson = (path: string) =>
  JSON.parse(readFileSync(new URL(`../packages/${path}/package.json`, import.meta.url), 'utf8'));

describe('exports', () => {
  it('pins every subpath of @tollway/sdk', () => {
    const subpaths = Object.keys(packageJson('sdk').exports).map((subpath) =>
      subpath === '.' ? '@tollway/sdk' : `@tollway/sdk/${subpath.slice(2)}`,
    );
    expect(subpaths.sort()).toEqual(Object.keys(PINNED).sort());
  });

  for (const [entry, names] of Object.entries(PINNED)) {
    it(`${entry} exports exactly its pinned names`, async () => {
      expect(Object.keys(await import(entry)).sort()).toEqual(names);
    });
  }

  it('the tollway package exports no module', () => {
    const cli = packageJson('cli');
    expect([cli.exports, cli.main, cli.module]).toEqual([undefined, undefined, undefined]);
    expect(Object.keys(cli.bin)).toEqual(['tollway']);
  });
});
