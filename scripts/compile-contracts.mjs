#!/usr/bin/env node
/**
 * Compiles the local-chain contracts in packages/sdk/contracts/*.sol with solc-js (the `solc` package,
 * pinned by the lockfile) and writes packages/sdk/contracts/artifacts.json: for each contract its
 * ABI, creation bytecode and runtime bytecode, plus the compiler version. The local chain of
 * `@tollway/sdk/x402/local-chain` deploys from that file, shipped in the package, instead of
 * compiling.
 *
 *   node scripts/compile-contracts.mjs          rewrite packages/sdk/contracts/artifacts.json
 *   node scripts/compile-contracts.mjs --check  exit 1 when the file differs from a fresh compile
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import solc from 'solc';

const root = new URL('../packages/sdk/contracts/', import.meta.url);
const artifactUrl = new URL('artifacts.json', root);

function compile() {
  const sources = {};
  for (const file of readdirSync(root)
    .filter((name) => name.endsWith('.sol'))
    .sort()) {
    sources[file] = { content: readFileSync(new URL(file, root), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'));
  const contracts = {};
  for (const file of Object.keys(sources)) {
    for (const [name, contract] of Object.entries(output.contracts[file])) {
      // Interfaces have no code to deploy.
      if (contract.evm.bytecode.object === '') continue;
      contracts[name] = {
        abi: contract.abi,
        bytecode: `0x${contract.evm.bytecode.object}`,
        deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
      };
    }
  }
  return { solc: solc.version(), contracts };
}

const fresh = compile();
if (process.argv.includes('--check')) {
  const committed = JSON.parse(readFileSync(artifactUrl, 'utf8'));
  if (JSON.stringify(committed) !== JSON.stringify(fresh)) {
    console.error(
      'packages/sdk/contracts/artifacts.json is stale: run `node scripts/compile-contracts.mjs`',
    );
    process.exit(1);
  }
} else {
  writeFileSync(artifactUrl, `${JSON.stringify(fresh, null, 2)}\n`);
}
