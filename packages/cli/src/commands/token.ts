/**
 * `tollway token decode <token>` and `tollway token verify <token> --root-key <hex>`: an operator's
 * handle on L402 tokens. A token may be given as a bare macaroon (base64 or hex), as
 * `<macaroon>:<preimage>`, or as a whole `L402 …` / `LSAT …` Authorization value.
 */
import { readFile } from 'node:fs/promises';
import { bytesToHex, hexToBytes, isTollwayError, type TollwayErrorCode } from '@tollway/sdk';
import type { L402Credential, Macaroon } from '@tollway/sdk/l402';
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { UsageError } from '../usage.js';

/** `@tollway/sdk/l402`, loaded when a subcommand runs so that other commands start without it. */
type L402 = typeof import('@tollway/sdk/l402');

/** The preimage check of `@tollway/sdk/lightning`, loaded likewise. */
type PreimageMatches = typeof import('@tollway/sdk/lightning').preimageMatches;

/** Exit codes of `tollway token`: documented in docs/reference/cli.md. */
const EXIT_VALID = 0;
const EXIT_INVALID = 1;
const EXIT_USAGE = 64;

interface ParsedToken {
  macaroon: Macaroon;
  preimage?: Uint8Array;
}

/** Reads any of the accepted token forms; throws a TollwayError naming the problem. */
function readToken(l402: L402, input: string): ParsedToken {
  const text = input.trim();
  const hasScheme = /^(?:l402|lsat)\s/i.test(text);
  if (hasScheme || text.includes(':')) {
    const credential: L402Credential | undefined = l402.parseL402Credential(
      hasScheme ? text : `L402 ${text}`,
    );
    const macaroon = credential?.macaroons[0];
    if (credential !== undefined && macaroon !== undefined) {
      return { macaroon, preimage: credential.preimage };
    }
  }
  return { macaroon: l402.parseMacaroon(text) };
}

function describe(
  l402: L402,
  preimageMatches: PreimageMatches,
  token: ParsedToken,
): Record<string, unknown> {
  const { macaroon } = token;
  let identifier: Record<string, unknown>;
  try {
    const id = l402.decodeIdentifier(macaroon.identifier);
    identifier = {
      version: id.version,
      paymentHash: bytesToHex(id.paymentHash),
      tokenId: bytesToHex(id.tokenId),
    };
  } catch (error) {
    identifier = {
      hex: bytesToHex(macaroon.identifier),
      error: isTollwayError(error) ? error.code : 'invalid',
    };
  }
  const thirdParty = macaroon.caveats
    .filter((c) => c.verificationId !== undefined)
    .map((c) => ({ location: c.location ?? '', identifier: bytesToHex(c.identifier) }));
  const out: Record<string, unknown> = {
    location: macaroon.location,
    identifier,
    caveats: l402.firstPartyCaveats(macaroon),
    ...(thirdParty.length > 0 ? { thirdPartyCaveats: thirdParty } : {}),
    signature: bytesToHex(macaroon.signature),
  };
  if (token.preimage !== undefined) {
    out.preimage = bytesToHex(token.preimage);
    if (typeof identifier.paymentHash === 'string') {
      out.preimageMatchesPaymentHash = preimageMatches(
        bytesToHex(token.preimage),
        identifier.paymentHash,
      );
    }
  }
  return out;
}

/** The first service named by the token's `services` caveat, used when --service is not given. */
function firstService(l402: L402, macaroon: Macaroon): string | undefined {
  for (const text of l402.firstPartyCaveats(macaroon)) {
    try {
      const caveat = l402.parseCaveat(text);
      if (caveat.condition === 'services') return caveat.value.split(',')[0]?.split(':')[0];
    } catch {
      // A malformed caveat is reported by verification itself.
    }
  }
  return undefined;
}

interface VerifyFlags {
  rootKey?: string;
  masterSecret?: string;
  preimage?: string;
  service?: string;
  path?: string;
  method?: string;
  capability?: string;
  now?: string;
  strict?: boolean;
  json?: boolean;
}

type Verdict =
  | { ok: true; checked: string[] }
  | { ok: false; code: TollwayErrorCode | 'usage'; message: string };

/**
 * The master secrets of `--master-secret`: hex, `env:NAME` (one or several, comma-separated, as the
 * gateway's `secrets.env`), or `@file` (the gateway's secrets file: one per line, current first).
 */
async function readMasterSecrets(source: string): Promise<string[]> {
  const { readSecretList } = await import('../gateway/secrets.js');
  if (source.startsWith('env:')) {
    const value = process.env[source.slice(4)];
    if (value === undefined || value === '') {
      throw new UsageError(`--master-secret: $${source.slice(4)} is not set`);
    }
    return readSecretList(value, `$${source.slice(4)}`, /,/);
  }
  if (source.startsWith('@')) {
    let text: string;
    try {
      text = await readFile(source.slice(1), 'utf8');
    } catch (cause) {
      throw new UsageError(
        `--master-secret ${source}: ${cause instanceof Error ? cause.message : String(cause)}`,
      );
    }
    return readSecretList(text, source.slice(1), /\r?\n/);
  }
  return readSecretList(source, '--master-secret', /,/);
}

/**
 * The root keys to try, in order: `--root-key`, or those derived from each master secret for the
 * token's identifier, as the gateway and the paywall derive them.
 */
async function rootKeysFor(token: ParsedToken, flags: VerifyFlags): Promise<Uint8Array[]> {
  if ((flags.rootKey === undefined) === (flags.masterSecret === undefined)) {
    throw new UsageError(
      'give the root key (--root-key <hex>) or the master secret (--master-secret)',
    );
  }
  if (flags.rootKey !== undefined) return [hexToBytes(flags.rootKey)];
  const secrets = await readMasterSecrets(flags.masterSecret ?? '');
  const { createRootKeys } = await import('@tollway/sdk/server');
  const keys = createRootKeys(secrets);
  return secrets.map((_secret, index) => keys.rootKey(token.macaroon.identifier, index));
}

/**
 * The request fields the flags leave out but the token restricts (`tollway_paths`,
 * `tollway_methods`): filled with a value the token grants, so that a scoped token verifies, and
 * named in the verdict as not checked.
 */
function unchecked(
  l402: L402,
  macaroon: Macaroon,
  flags: VerifyFlags,
): { fill: { path?: string; method?: string }; notes: string[] } {
  const granted = new Map<string, string>();
  for (const text of l402.firstPartyCaveats(macaroon)) {
    try {
      const caveat = l402.parseCaveat(text);
      granted.set(caveat.condition, caveat.value);
    } catch {
      // A malformed caveat is reported by verification itself.
    }
  }
  const fill: { path?: string; method?: string } = {};
  const notes: string[] = [];
  const paths = granted.get(l402.tollwayConditions.paths);
  if (flags.path === undefined && paths !== undefined) {
    fill.path = paths.split(',')[0] ?? '/';
    notes.push(`not the path: give --path (the token grants ${paths})`);
  }
  const methods = granted.get(l402.tollwayConditions.methods);
  if (flags.method === undefined && methods !== undefined) {
    fill.method = methods.split(',')[0] ?? 'GET';
    notes.push(`not the method: give --method (the token grants ${methods})`);
  }
  return { fill, notes };
}

function verifyWith(
  l402: L402,
  token: ParsedToken,
  flags: VerifyFlags,
  rootKey: Uint8Array,
): Verdict {
  const preimage = flags.preimage === undefined ? token.preimage : hexToBytes(flags.preimage);
  const service = flags.service ?? firstService(l402, token.macaroon) ?? '';
  const now = flags.now === undefined ? Date.now() / 1000 : Number(flags.now);
  if (!Number.isFinite(now))
    return { ok: false, code: 'usage', message: '--now takes unix seconds' };
  const { fill, notes } = unchecked(l402, token.macaroon, flags);
  const request = {
    service,
    ...fill,
    ...(flags.path === undefined ? {} : { path: flags.path }),
    ...(flags.method === undefined ? {} : { method: flags.method }),
    ...(flags.capability === undefined ? {} : { capability: flags.capability }),
  };
  const strict = { strict: flags.strict === true };
  const caveatsChecked = `caveats (service ${service || 'none'})`;
  if (preimage !== undefined) {
    const result = l402.verifyL402(
      { scheme: 'L402', macaroons: [token.macaroon], preimage },
      { ...request, ...strict, now, resolveRootKey: () => rootKey },
    );
    return result.ok
      ? { ok: true, checked: ['preimage', 'signature', caveatsChecked, ...notes] }
      : { ok: false, code: result.code, message: result.message };
  }
  if (!l402.verifyMacaroonSignature(token.macaroon, rootKey)) {
    return {
      ok: false,
      code: 'invalid_signature',
      message: 'the macaroon signature does not verify',
    };
  }
  const caveats = l402.verifyCaveats(
    l402.firstPartyCaveats(token.macaroon),
    { ...request, now },
    strict,
  );
  return caveats.ok
    ? {
        ok: true,
        checked: ['signature', caveatsChecked, 'not the payment: no preimage given', ...notes],
      }
    : { ok: false, code: caveats.code, message: caveats.message };
}

/** Verifies with each root key in turn (master secrets rotate): the first that signs it decides. */
async function verify(l402: L402, token: ParsedToken, flags: VerifyFlags): Promise<Verdict> {
  let verdict: Verdict = { ok: false, code: 'invalid_signature', message: 'no root key' };
  for (const rootKey of await rootKeysFor(token, flags)) {
    verdict = verifyWith(l402, token, flags, rootKey);
    if (verdict.ok || verdict.code !== 'invalid_signature') return verdict;
  }
  return verdict;
}

/** Registers `tollway token …`. */
export function registerTokenCommands(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  const token = program.command('token').description('Inspect and verify L402 tokens (macaroons).');

  token
    .command('decode')
    .description('Print a token as JSON: location, identifier fields, caveats, signature.')
    .argument(
      '<token>',
      'macaroon (base64 or hex), <macaroon>:<preimage>, or "L402 <macaroon>:<preimage>"',
    )
    .action(async (input: string) => {
      const [l402, { preimageMatches }] = await Promise.all([
        import('@tollway/sdk/l402'),
        import('@tollway/sdk/lightning'),
      ]);
      try {
        const decoded = describe(l402, preimageMatches, readToken(l402, input));
        io.stdout(`${JSON.stringify(decoded, null, 2)}\n`);
      } catch (error) {
        io.stderr(`tollway token decode: ${errorText(error)}\n`);
        setExitCode(EXIT_INVALID);
      }
    });

  token
    .command('verify')
    .description(
      'Verify a token with its root key or master secret: signature, caveats and (with a preimage) the payment.',
    )
    .argument(
      '<token>',
      'macaroon (base64 or hex), <macaroon>:<preimage>, or "L402 <macaroon>:<preimage>"',
    )
    .option('--root-key <hex>', 'the root key the token was minted with (hex)')
    .option(
      '--master-secret <hex|env:NAME|@file>',
      "or the paywall's or gateway's master secret(s): hex, a variable, or its secrets file",
    )
    .option('--preimage <hex>', 'the payment preimage, when not part of the token')
    .option(
      '--service <name>',
      'service the request is for (default: the first in the services caveat)',
    )
    .option('--path <path>', 'request path to check against path caveats')
    .option('--method <method>', 'request method to check against method caveats')
    .option('--capability <name>', 'capability to check against <service>_capabilities')
    .option('--now <unix-seconds>', 'check expiry at this time instead of now')
    .option('--strict', 'reject caveats Tollway does not understand')
    .option('--json', 'print the verdict as JSON')
    .action(async (input: string, flags: VerifyFlags) => {
      const l402 = await import('@tollway/sdk/l402');
      let verdict: Verdict;
      try {
        verdict = await verify(l402, readToken(l402, input), flags);
      } catch (error) {
        if (error instanceof UsageError) {
          io.stderr(`tollway token verify: ${error.message}\n`);
          setExitCode(EXIT_USAGE);
          return;
        }
        verdict = {
          ok: false,
          code: isTollwayError(error) ? error.code : 'usage',
          message: errorText(error),
        };
      }
      if (flags.json === true) {
        io.stdout(`${JSON.stringify(verdict)}\n`);
      } else if (verdict.ok) {
        io.stdout(`valid: checked ${verdict.checked.join(', ')}\n`);
      } else {
        io.stdout(`invalid: ${verdict.code}: ${verdict.message}\n`);
      }
      setExitCode(verdict.ok ? EXIT_VALID : EXIT_INVALID);
    });
}

function errorText(error: unknown): string {
  if (isTollwayError(error)) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
