/**
 * The `tollway` command. Each subcommand lives in `commands/<name>.ts` and registers itself here.
 * `main` never calls `process.exit`: it returns the exit code, so tests and the bin share one path.
 */
import { Command, CommanderError } from 'commander';
import { registerDevCommand } from './commands/dev.js';
import { registerDiscoverCommand } from './commands/discover.js';
import { registerFacilitatorCommand } from './commands/facilitator.js';
import { registerFetchCommand } from './commands/fetch.js';
import { registerLedgerCommand } from './commands/ledger.js';
import { registerMcpCommand } from './commands/mcp.js';
import { registerServeCommand } from './commands/serve.js';
import { registerTokenCommands } from './commands/token.js';
import { registerWalletCommands } from './commands/wallet.js';
import { type Io, processIo } from './io.js';
import { version } from './version.js';

/**
 * The `tollway` program with every command registered; commands report their exit code through
 * `setExitCode`. `main` runs it; tests read its commands and options.
 */
export function createProgram(io: Io, setExitCode: (code: number) => void): Command {
  const program = new Command('tollway')
    .description('HTTP 402 payments for APIs and AI agents (L402, MPP, x402).')
    .version(version, '-V, --version')
    // Options belong to the command they follow (`tollway dev node --port` is the node's port).
    .enablePositionalOptions()
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });
  registerDevCommand(program, io, setExitCode);
  registerDiscoverCommand(program, io, setExitCode);
  registerFacilitatorCommand(program, io, setExitCode);
  registerFetchCommand(program, io, setExitCode);
  registerLedgerCommand(program, io, setExitCode);
  registerMcpCommand(program, io, setExitCode);
  registerServeCommand(program, io, setExitCode);
  registerTokenCommands(program, io, setExitCode);
  registerWalletCommands(program, io, setExitCode);
  return program;
}

/** Runs the CLI with `argv` (without `node` and the script) and returns the process exit code. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  let code = 0;
  const program = createProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return error.exitCode === 0 ? 0 : 64;
    }
    io.stderr(`tollway: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}
