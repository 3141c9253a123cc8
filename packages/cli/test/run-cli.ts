import { main } from '../src/main.js';

/** Runs the CLI in-process and captures what it prints. */
export async function runCli(
  ...argv: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (output) => {
      stdout += typeof output === 'string' ? output : Buffer.from(output).toString();
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}
