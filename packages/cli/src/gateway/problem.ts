/**
 * The gateway's own answers (no service matches, the upstream failed, the admin API refused) as
 * JSON problem bodies, formatted by the SDK like every other Tollway answer.
 */
import type { ServerResponse } from 'node:http';
import { writePaywallResponse } from '@tollway/sdk/node';
import { createProblemResponse, type Problem } from '@tollway/sdk/server';

/**
 * Answers with `problem` (its status from the error catalogue unless given), never cached, with
 * `headers` added (a receipt saying nothing was charged).
 *
 * @example
 * ```ts
 * sendProblem(res, { code: 'not_found', detail: 'No service matches this host and path.' });
 * ```
 */
export function sendProblem(
  res: ServerResponse,
  problem: Problem,
  headers: ReadonlyArray<[string, string]> = [],
): void {
  const all: Array<[string, string]> = [['Cache-Control', 'no-store'], ...headers];
  writePaywallResponse(res, createProblemResponse(problem, all));
}
