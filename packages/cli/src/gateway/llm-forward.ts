/**
 * One call to an `llm` service on its way upstream: the provider its model is routed to, the body
 * to send (changed when the call needs it, see llm.ts), and how its metered answer is read and
 * counted in the per-model metrics.
 */
import { isTollwayError } from '@tollway/sdk';
import type { PaywallRequest, Problem } from '@tollway/sdk/server';
import type { MeteredCall } from './metered-answer.js';
import type { GatewayMetrics } from './metrics.js';
import type { LlmService, Service } from './services.js';

/** Where a call goes and how its answer is read, or why it cannot go. */
export type LlmForward =
  | { ok: true; upstream: Service; body: Uint8Array | undefined; metered: MeteredCall }
  | { ok: false; problem: Problem };

/** Where a call goes, given the service, its LLM side, the request and its canonical path. */
export interface LlmForwardInput {
  service: Service;
  llm: LlmService;
  request: PaywallRequest;
  path: string;
  metrics: GatewayMetrics;
  /** Told of a meter that failed to end. */
  onError(error: unknown): void;
}

/**
 * Plans one call: reads its JSON body (already read and parsed when the engine priced it), routes
 * it by model, and prepares the body and the reading of its answer.
 *
 * @example
 * ```ts
 * const call = await planLlmForward({ service, llm: service.llm, request, path, metrics, onError });
 * if (call.ok) await forward({ ...request, service: call.upstream, body: call.body, metered: call.metered });
 * ```
 */
export async function planLlmForward(input: LlmForwardInput): Promise<LlmForward> {
  const { service, llm, metrics } = input;
  let body: unknown;
  try {
    body = await input.request.jsonBody?.();
  } catch (error) {
    if (!isTollwayError(error)) throw error;
    return { ok: false, problem: { code: error.code, detail: error.message } };
  }
  const call = llm.routing.plan(body, input.path);
  const upstream = call.provider === undefined ? service : llm.providers.get(call.provider);
  // The config check makes every model's provider one of `llm.providers`.
  if (upstream === undefined) throw new Error(`${service.name}: no provider ${call.provider}`);
  return {
    ok: true,
    upstream,
    body: call.body,
    metered: {
      dropsUsageChunk: call.dropsUsageChunk,
      onCharged: (msat) => metrics.llmCharged(service.name, call.model, msat),
      onError: input.onError,
    },
  };
}
