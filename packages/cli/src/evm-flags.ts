/**
 * The x402 flags `tollway fetch` and `tollway mcp` share: the EVM key that pays (`--evm-key`, or
 * `TOLLWAY_EVM_KEY`), the tokens it may pay (`--evm-asset`), the chain endpoint that lets it pay
 * batch-settlement channels (`--evm-rpc`, or `TOLLWAY_EVM_RPC`), the dollar rate that counts token
 * amounts against a budget in sats (`--usd-per-btc`) and the calls an agent expects
 * (`--expect-calls`), which size a channel's deposit. Malformed values are usage errors.
 */
import type { EvmWallet, X402Network } from '@tollway/sdk/x402';
import type { Command } from 'commander';
import { describeError } from './describe-error.js';
import { UsageError } from './usage.js';

/** The flags, as commander parses them. */
export interface EvmFlags {
  evmKey?: string;
  evmAsset: string[];
  evmRpc?: string;
  usdPerBtc?: string;
  expectCalls?: string;
}

/** Adds `--evm-key`, `--evm-asset`, `--evm-rpc` and `--usd-per-btc` to `command`. */
export function addEvmOptions(command: Command): Command {
  return command
    .option(
      '--evm-key <hex | env:NAME>',
      'EVM private key that pays x402 (default: $TOLLWAY_EVM_KEY)',
    )
    .option(
      '--evm-asset <network:address>',
      'token x402 may pay, as <caip2-network>:<tokenAddress>; repeatable',
      (value: string, all: string[]) => [...all, value],
      [],
    )
    .option(
      '--evm-rpc <url>',
      'EVM JSON-RPC endpoint: x402 then also pays batch-settlement offers (default: $TOLLWAY_EVM_RPC)',
    )
    .option(
      '--usd-per-btc <rate>',
      'USD per BTC: counts x402 token amounts (and dollar amounts) against prices and limits in sats',
    );
}

/** `<caip2-network>:<tokenAddress>`, e.g. `eip155:8453:0x833589fC…`. */
export function parseEvmAsset(text: string): { network: X402Network; address: string } {
  const colon = text.lastIndexOf(':');
  const network = text.slice(0, colon);
  const address = text.slice(colon + 1);
  if (colon < 1 || !/^eip155:\d+$/.test(network) || !/^0x[0-9a-fA-F]{40}$/.test(address)) {
    throw new UsageError(`--evm-asset takes <caip2-network>:<tokenAddress>, not "${text}"`);
  }
  return { network: network as X402Network, address };
}

/** The EVM key of `--evm-key` or `TOLLWAY_EVM_KEY`: hex, or `env:NAME` to read it from NAME. */
function readEvmKey(source: string | undefined): string | undefined {
  if (source === undefined || source === '') return undefined;
  if (!source.startsWith('env:')) return source;
  const key = process.env[source.slice(4)];
  if (key === undefined || key === '')
    throw new UsageError(`--evm-key: $${source.slice(4)} is not set`);
  return key;
}

/** `--evm-rpc` or `TOLLWAY_EVM_RPC`, checked: an http(s) URL; undefined when neither is set. */
function readEvmRpc(flags: EvmFlags): string | undefined {
  const url = flags.evmRpc ?? process.env.TOLLWAY_EVM_RPC;
  if (url === undefined || url === '') return undefined;
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new UsageError(
      `--evm-rpc takes an http(s) URL of an EVM JSON-RPC endpoint, not "${url}"`,
    );
  }
  return url;
}

/** The x402 wallet, or undefined when no EVM key is given (then nothing EVM is loaded). */
export async function openEvmWallet(flags: EvmFlags): Promise<EvmWallet | undefined> {
  const key = readEvmKey(flags.evmKey ?? process.env.TOLLWAY_EVM_KEY);
  if (key === undefined) {
    if (flags.evmRpc !== undefined) throw new UsageError('--evm-rpc needs --evm-key');
    return undefined;
  }
  const rpcUrl = readEvmRpc(flags);
  if (flags.evmAsset.length === 0) {
    throw new UsageError('--evm-key needs at least one --evm-asset <caip2-network>:<tokenAddress>');
  }
  const allowedAssets = flags.evmAsset.map(parseEvmAsset);
  const { createEvmWallet } = await import('@tollway/sdk/x402');
  try {
    // With an endpoint to read the chain, the wallet also pays batch-settlement offers.
    return createEvmWallet({
      privateKey: key,
      allowedAssets,
      ...(rpcUrl === undefined ? {} : { rpcUrl }),
    });
  } catch (error) {
    throw new UsageError(`--evm-key: ${describeError(error)}`);
  }
}

/** `--expect-calls`, checked: a whole number of calls from 1; undefined when not given. */
export function readExpectedCalls(flags: EvmFlags): number | undefined {
  if (flags.expectCalls === undefined) return undefined;
  const calls = Number(flags.expectCalls);
  if (!/^\d+$/.test(flags.expectCalls) || !Number.isSafeInteger(calls) || calls < 1) {
    throw new UsageError(
      `--expect-calls takes a whole number of calls, not "${flags.expectCalls}"`,
    );
  }
  return calls;
}

/** `--usd-per-btc`, checked: a positive decimal. */
export function readRate(flags: EvmFlags): string | undefined {
  if (flags.usdPerBtc === undefined) return undefined;
  const rate = flags.usdPerBtc.trim();
  if (!/^\d+(\.\d+)?$/.test(rate) || /^[0.]+$/.test(rate)) {
    throw new UsageError('--usd-per-btc takes a positive number of dollars');
  }
  return rate;
}
