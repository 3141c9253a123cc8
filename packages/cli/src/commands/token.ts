/**
 * `tollway token decode <token>` and `tollway token verify <token> --root-key <hex>`: an operator's
 * handle on L402 tokens. A token may be given as a bare macaroon (base64 or hex), as
 * `<macaroon>:<preimage>`, or as a whole `L402 …` / `LSAT …` Authorization value.
 */
import { bytesToHex, hexToBytes, isTollwayError, type TollwayErrorCode } from '@tollway/sdk';
import type { L402Credential, Macaroon } from '@tollway/sdk/l402';
import type { Command } from 'commander';
import type { Io } from '../io.js';

/** `@tollway/sdk/l402`, loaded when a subcommand runs so that other commands start without it. */
type L402 = typeof import('@tollway/sdk/l402');

/** The preimage check of `@tollway/sdk/lightning`, loaded likewise. */
type PreimageMatches = typeof import('@tollway/sdk/lightning').preimageMatches;

/** Exit codes of `tollway token`: documented in docs/reference/cli.md. */
const EXIT_VALID = 0;
const EXIT_INVALID = 1;

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
  rootKey: string;
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

function verify(l402: L402, token: ParsedToken, flags: VerifyFlags): Verdict {
  const rootKey = hexToBytes(flags.rootKey);
  const preimage = flags.preimage === undefined ? token.preimage : hexToBytes(flags.preimage);
  const service = flags.service ?? firstService(l402, token.macaroon) ?? '';
  const now = flags.now === undefined ? Date.now() / 1000 : Number(flags.now);
  if (!Number.isFinite(now))
    return { ok: false, code: 'usage', message: '--now takes unix seconds' };
  const request = {
    service,
    ...(flags.path === undefined ? {} : { path: flags.path }),
    ...(flags.method === undefined ? {} : { method: flags.method }),
    ...(flags.capability === undefined ? {} : { capability: flags.capability }),
  };
  const strict = { strict: flags.strict === true };
  if (preimage !== undefined) {
    const result = l402.verifyL402(
      { scheme: 'L402', macaroons: [token.macaroon], preimage },
      { ...request, ...strict, now, resolveRootKey: () => rootKey },
    );
    return result.ok
      ? { ok: true, checked: ['preimage', 'signature', `caveats (service ${service || 'none'})`] }
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
        checked: [
          'signature',
          `caveats (service ${service || 'none'})`,
          'not the payment: no preimage given',
        ],
      }
    : { ok: false, code: caveats.code, message: caveats.message };
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
      'Verify a token with its root key: signature, caveats and (with a preimage) the payment.',
    )
    .argument(
      '<token>',
      'macaroon (base64 or hex), <macaroon>:<preimage>, or "L402 <macaroon>:<preimage>"',
    )
    .requiredOption('--root-key <hex>', 'the root key the token was minted with (hex)')
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
        verdict = verify(l402, readToken(l402, input), flags);
      } catch (error) {
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
