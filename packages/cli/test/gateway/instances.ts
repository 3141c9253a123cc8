/**
 * `tollway serve` processes (the built CLI) for tests that need several gateway instances or
 * need to kill one. Needs `npm run build` (CI builds before testing).
 */
import { type ChildProcess, spawn } from 'node:child_process';

const BIN = new URL('../../bin/tollway.js', import.meta.url).pathname;

/** A running `tollway serve` process. */
export interface Instance {
  url: string;
  process: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts `tollway serve --config <config>` and resolves with its URL once it prints it. */
export function startInstance(config: string, env: NodeJS.ProcessEnv): Promise<Instance> {
  const child = spawn(process.execPath, [BIN, 'serve', '--config', config], {
    env: { ...process.env, ...env, TOLLWAY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const url = /tollway gateway on (http:\/\/\S+)/.exec(output)?.[1];
      if (url !== undefined) resolve({ url, process: child, exited });
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    void exited.then((code) => reject(new Error(`tollway serve exited with ${code}:\n${output}`)));
  });
}
