// What the benchmarks share to run their parts in child processes and to buy what they measure.
// `BENCH_CPU_PROF=<dir>` writes a V8 CPU profile (`--cpu-prof`) of each child whose role is named
// in `BENCH_CPU_PROF_ROLES` (comma-separated; default `gateway`) into <dir> when the bench ends.
import { fork, spawn } from 'node:child_process';
import { formatL402Credential, parseL402Challenges, parseMacaroon } from '@tollway/sdk/l402';

const TOLLWAY = new URL('../../packages/cli/bin/tollway.js', import.meta.url).pathname;

/** Listens on a free port of 127.0.0.1; resolves with the server's URL. */
export function listen(server) {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`));
  });
}

/**
 * Forks `script` with `--role <role> <options as JSON>` (read back by {@link roleArguments}); resolves
 * once the child sends `{ url }`, with `{ role, url, proc }`.
 */
export function startRole(script, role, options) {
  const profiled = (process.env.BENCH_CPU_PROF_ROLES ?? 'gateway').split(',').includes(role);
  const execArgv =
    process.env.BENCH_CPU_PROF !== undefined && profiled
      ? [...process.execArgv, '--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
      : process.execArgv;
  const proc = fork(new URL(script).pathname, ['--role', role, JSON.stringify(options)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${role} exited with ${code}`)));
    proc.once('message', ({ url }) => resolve({ role, url, proc }));
  });
}

/** In a child started by {@link startRole}: its role and options; undefined in the parent. */
export function roleArguments() {
  const at = process.argv.indexOf('--role');
  if (at < 0) return undefined;
  // A profile is written only when the process exits on its own: the parent's SIGTERM ends it so.
  if (process.execArgv.includes('--cpu-prof')) process.once('SIGTERM', () => process.exit(0));
  return { role: process.argv[at + 1], options: JSON.parse(process.argv[at + 2] ?? '{}') };
}

/** In a child: answers the parent's `'cpu'` messages with the CPU time it has used, ms. */
export function answerCpuQuestions() {
  process.on('message', (message) => {
    if (message === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send({ cpuMs: (user + system) / 1000 });
    }
  });
}

/** The CPU time a child of {@link startRole} has used so far, ms. */
export function cpuMs(target) {
  return new Promise((resolve) => {
    target.proc.once('message', (message) => resolve(message.cpuMs));
    target.proc.send('cpu');
  });
}

/**
 * Starts `tollway serve --config <config>` (the built bin) with `env` added; resolves once it
 * prints its URL, with `{ url, proc, exited }`.
 */
export function startServe(config, env) {
  const proc = spawn(process.execPath, [TOLLWAY, 'serve', '--config', config], {
    env: { ...process.env, ...env, TOLLWAY_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) =>
    proc.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  let output = '';
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (chunk) => {
      output += chunk.toString('utf8');
      const url = /tollway gateway on (http:\/\/\S+)/.exec(output)?.[1];
      if (url !== undefined) resolve({ url, proc, exited });
    });
    proc.stderr.on('data', (chunk) => {
      output += chunk.toString('utf8');
    });
    void exited.then((code) => reject(new Error(`tollway serve exited with ${code}:\n${output}`)));
  });
}

/**
 * Pays the L402 offer of a 402's `WWW-Authenticate` header with `payer` (a Lightning backend, such
 * as a dev wallet); the credential and the offer's payment hash.
 */
export async function payL402(header, payer) {
  const offer = parseL402Challenges(header ?? '').find((c) => c.scheme === 'L402');
  if (offer === undefined) throw new Error(`no L402 offer in: ${header}`);
  const paid = await payer.payInvoice({ paymentRequest: offer.invoice });
  return {
    authorization: formatL402Credential({
      macaroons: [parseMacaroon(offer.macaroon)],
      preimage: Uint8Array.from(Buffer.from(paid.preimage, 'hex')),
    }),
    paymentHash: paid.paymentHash,
  };
}
