/**
 * The gateway's own answers (no service matches, the upstream failed, the admin API refused) as
 * JSON problem bodies, formatted by the SDK like every other Tollway answer.
 */
import type { ServerResponse } from 'node:http';
import { writePaywallResponse } from '@tollway/sdk/node';
import { createProblemResponse, type Problem } from '@tollway/sdk/server';

/**
 * Answers with `problem` (its status from the error catalogue unless given), never cached.
 *
 * @example
 * ```ts
 * sendProblem(res, { code: 'not_found', detail: 'No service matches this host and path.' });
 * ```
 */
export function sendProblem(res: ServerResponse, problem: Problem): void {
  writePaywallResponse(res, createProblemResponse(problem, [['Cache-Control', 'no-store']]));
}
