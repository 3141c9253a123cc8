/**
 * The gateway dashboard, served by the admin surface at `GET /_tollway/dashboard` once the admin
 * credential has been checked (a browser signs in once with `?token=`, which sets a session cookie).
 * The page reads the admin JSON API of the same origin; nothing is computed here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendPage } from '../../page/kit.js';
import { version as packageVersion } from '../../version.js';
import { renderDashboardPage } from './page.js';

/** What the dashboard needs from the gateway that serves it. */
export interface DashboardContext {
  /** True when the gateway is paid through the dev Lightning node: the page shows a SANDBOX banner. */
  sandbox: boolean;
  /** Path of the admin JSON API on the same origin. Default `/_tollway`. */
  apiBase?: string;
  /** The gateway's version for the footer. Default: this package's version. */
  version?: string;
}

/**
 * Writes the dashboard page. The caller has already checked the admin credential. The page runs
 * under a strict Content-Security-Policy: its own inline style and script (by nonce), and requests
 * to its own origin only.
 *
 * @example
 * ```ts
 * if (path === '/dashboard') return dashboardHandler(req, res, { sandbox: lightning.kind === 'dev' });
 * ```
 */
export function dashboardHandler(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: DashboardContext,
): void {
  sendPage(req, res, (nonce) =>
    renderDashboardPage({
      apiBase: ctx.apiBase ?? '/_tollway',
      sandbox: ctx.sandbox,
      nonce,
      version: ctx.version ?? packageVersion,
    }),
  );
}
