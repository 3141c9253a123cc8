/**
 * Real Chromium for page tests, through playwright-core and the system's `/usr/bin/chromium`.
 *
 * Without the binary a page test is skipped, loudly, on a developer's machine, and FAILS under CI:
 * CI installs Chromium (`.ci/run`), so a missing one there is a broken machine, not a reason to skip.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** Where Debian's `chromium` package puts the browser. */
const CHROMIUM_PATH = '/usr/bin/chromium';

/** Flags that work on this machine (no sandbox as root, no GPU, nothing phoning home). */
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** `CI=true` (or any value but `false`/`0`/empty) means a continuous-integration run. */
function isCi(env: NodeJS.ProcessEnv): boolean {
  const value = env.CI;
  return value !== undefined && value !== '' && value !== 'false' && value !== '0';
}

/**
 * Whether page tests can run: true when Chromium is at `path`. When it is not, throws under CI
 * and otherwise warns loudly, naming the fix, and returns false (the caller skips).
 */
export function requireChromium(
  path = CHROMIUM_PATH,
  env: NodeJS.ProcessEnv = process.env,
  warn: (message: string) => void = console.warn,
): boolean {
  if (existsSync(path)) return true;
  const message = `Chromium is not installed at ${path}; install it with: apt-get install -y chromium`;
  if (isCi(env)) throw new Error(`${message} (CI is set, so page tests must run)`);
  warn(`\n${'!'.repeat(100)}\n!!! SKIPPING PAGE TESTS: ${message}\n${'!'.repeat(100)}\n`);
  return false;
}

/** A headless Chromium with a fresh profile; `close()` also deletes the profile. */
export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Launches headless Chromium with a fresh `--user-data-dir`. */
export async function launchChromium(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'tollway-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
