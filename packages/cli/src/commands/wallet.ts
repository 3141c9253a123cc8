/**
 * `tollway wallet …`: a Lightning wallet on the command line, against any backend a connection string
 * names (`--wallet` or `TOLLWAY_WALLET`): info, balance, create and pay invoices, look up payments,
 * decode invoices, and create wallets on a dev node. `@tollway/sdk/lightning` is loaded when a
 * subcommand runs, so that other commands start without it.
 */
import { formatMsat, isTollwayError } from '@tollway/sdk';
import type { LightningBackend } from '@tollway/sdk/lightning';
import type { Command } from 'commander';
import type { Io } from '../io.js';
import { readMsatFlag, UsageError } from '../usage.js';

/** Exit codes of `tollway wallet`: documented in docs/reference/cli.md. */
const EXIT_FAILED = 1;
const EXIT_USAGE = 64;

interface WalletFlags {
  wallet?: string;
  json?: boolean;
}

/** JSON with bigints as decimal strings. */
function toJson(value: unknown): string {
  return `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

/** A wallet amount in msat: `21` (sats), `'21 sat'`, `'2500 msat'`; dollars are a usage error. */
function parseMsat(text: string, what: string): bigint {
  return readMsatFlag(text, what, 'a Lightning wallet counts in sats');
}

/** Registers `tollway wallet …`. */
export function registerWalletCommands(
  program: Command,
  io: Io,
  setExitCode: (code: number) => void,
): void {
  const wallet = program
    .command('wallet')
    .description('Use a Lightning wallet: dev node, LND, Core Lightning, LNbits, phoenixd or NWC.');

  /** Runs `body` with a connected backend, printing typed errors as `<code>: <message>`. */
  function withBackend(
    flags: WalletFlags,
    body: (ln: LightningBackend) => Promise<void>,
  ): Promise<void> {
    const source = flags.wallet ?? process.env.TOLLWAY_WALLET;
    if (source === undefined || source === '') {
      io.stderr(
        'tollway wallet: name a wallet with --wallet <connection string> or TOLLWAY_WALLET\n',
      );
      setExitCode(EXIT_USAGE);
      return Promise.resolve();
    }
    return run(async () => {
      const { connectLightning } = await import('@tollway/sdk/lightning');
      const ln = await connectLightning(source);
      try {
        await body(ln);
      } finally {
        await ln.close();
      }
    });
  }

  async function run(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (error) {
      if (error instanceof UsageError) {
        io.stderr(`tollway wallet: ${error.message}\n`);
        setExitCode(EXIT_USAGE);
        return;
      }
      io.stderr(
        `tollway wallet: ${isTollwayError(error) ? `${error.code}: ${error.message}` : String(error)}\n`,
      );
      setExitCode(EXIT_FAILED);
    }
  }

  const walletOption = [
    '--wallet <connection>',
    'connection string (default: $TOLLWAY_WALLET)',
  ] as const;

  wallet
    .command('info')
    .description('Show the node or wallet: network, public key, what it can do, balance.')
    .option(...walletOption)
    .action((flags: WalletFlags) =>
      withBackend(flags, async (ln) => {
        const info = await ln.getInfo();
        const balance = await ln.getBalance().catch(() => undefined);
        io.stdout(
          toJson({
            kind: ln.kind,
            ...info,
            ...ln.capabilities,
            ...(balance ? { balanceMsat: balance.msat } : {}),
          }),
        );
      }),
    );

  wallet
    .command('balance')
    .description('Print the spendable balance.')
    .option(...walletOption)
    .option('--json', 'print {"balanceMsat": "…"}')
    .action((flags: WalletFlags) =>
      withBackend(flags, async (ln) => {
        const { msat } = await ln.getBalance();
        io.stdout(flags.json ? toJson({ balanceMsat: msat }) : `${formatMsat(msat)}\n`);
      }),
    );

  wallet
    .command('invoice')
    .description('Create an invoice to receive a payment.')
    .argument('<amount>', 'e.g. 21, "21 sat" or "2500 msat"')
    .option('--memo <text>', 'description shown to the payer')
    .option('--expiry <seconds>', 'seconds until the invoice expires', '3600')
    .option('--wait', 'wait until it is paid and print the settlement')
    .option(...walletOption)
    .action(
      (amount: string, flags: WalletFlags & { memo?: string; expiry: string; wait?: boolean }) =>
        withBackend(flags, async (ln) => {
          const created = await ln.createInvoice({
            amountMsat: parseMsat(amount, '<amount>'),
            expirySeconds: Number(flags.expiry),
            ...(flags.memo !== undefined ? { memo: flags.memo } : {}),
          });
          io.stdout(toJson(created));
          if (flags.wait) {
            const status = await ln.waitForSettlement(created.paymentHash, {
              timeoutMs: created.expiresAt - Date.now(),
            });
            io.stdout(toJson(status));
            if (status.state !== 'settled') setExitCode(EXIT_FAILED);
          }
        }),
    );

  wallet
    .command('pay')
    .description('Pay a BOLT11 invoice. Never pays the same invoice twice.')
    .argument('<invoice>', 'BOLT11 payment request')
    .option('--amount <amount>', 'amount for an amountless invoice')
    .option('--max-fee <amount>', 'routing fee ceiling, e.g. "10 sat"')
    .option('--timeout <seconds>', 'how long to wait for the outcome', '60')
    .option(...walletOption)
    .action(
      (
        invoice: string,
        flags: WalletFlags & { amount?: string; maxFee?: string; timeout: string },
      ) =>
        withBackend(flags, async (ln) => {
          const paid = await ln.payInvoice({
            paymentRequest: invoice,
            timeoutMs: Number(flags.timeout) * 1000,
            ...(flags.amount !== undefined
              ? { amountMsat: parseMsat(flags.amount, '--amount') }
              : {}),
            ...(flags.maxFee !== undefined
              ? { maxFeeMsat: parseMsat(flags.maxFee, '--max-fee') }
              : {}),
          });
          io.stdout(toJson(paid));
        }),
    );

  wallet
    .command('lookup')
    .description('Show what the wallet knows of a payment hash: as an invoice, or as a payment.')
    .argument('<payment-hash>', '64 hex characters')
    .option(...walletOption)
    .action((hash: string, flags: WalletFlags) =>
      withBackend(flags, async (ln) => {
        const invoice = await ln.lookupInvoice(hash).catch((error: unknown) => {
          if (isTollwayError(error, 'invoice_not_found')) return undefined;
          throw error;
        });
        io.stdout(toJson(invoice ? { invoice } : { payment: await ln.lookupPayment(hash) }));
      }),
    );

  wallet
    .command('decode')
    .description('Decode a BOLT11 invoice (signature checked) without any wallet.')
    .argument('<invoice>', 'BOLT11 payment request')
    .action((invoice: string) =>
      run(async () => {
        const { decodeInvoice } = await import('@tollway/sdk/lightning');
        io.stdout(toJson(decodeInvoice(invoice)));
      }),
    );

  wallet
    .command('create')
    .description(
      'Create a wallet funded with play money on a dev node: by default the one `tollway dev` or `tollway dev node` runs from this folder.',
    )
    .argument('<name>', 'wallet name')
    .option(
      '--dev-url <url>',
      "the dev node URL, e.g. http://127.0.0.1:8403 (default: this folder's)",
    )
    .option('--admin-token <token>', "the dev node's admin token (default: this folder's)")
    .action((name: string, flags: { devUrl?: string; adminToken?: string }) =>
      run(async () => {
        const node = await devNodeOf(flags);
        const { createDevWallet } = await import('@tollway/sdk/lightning/dev');
        const created = await createDevWallet({ ...node, name }).catch((error: unknown) => {
          if (isTollwayError(error, 'backend_unavailable') && flags.devUrl === undefined) {
            throw new UsageError(
              `no dev node answers at ${node.url}, where \`tollway dev\` in this folder last ran one: start it again`,
            );
          }
          throw error;
        });
        io.stdout(toJson(created));
      }),
    );
}

/**
 * The dev node to create a wallet on: the flags, or else the node `tollway dev` or `tollway dev
 * node` runs from this folder (recorded in `.tollway/dev-node.json`).
 */
async function devNodeOf(flags: {
  devUrl?: string;
  adminToken?: string;
}): Promise<{ url: string; adminToken: string }> {
  if (flags.devUrl !== undefined && flags.adminToken !== undefined) {
    return { url: flags.devUrl, adminToken: flags.adminToken };
  }
  if (flags.devUrl !== undefined || flags.adminToken !== undefined) {
    throw new UsageError('give both --dev-url and --admin-token, or neither');
  }
  const { readDevNodeAddress } = await import('../dev/node.js');
  const running = await readDevNodeAddress(process.cwd());
  if (running === undefined) {
    throw new UsageError(
      'no dev node runs from this folder: start `npx tollway dev node` (or `npx tollway dev`) here, or give --dev-url and --admin-token',
    );
  }
  return running;
}
