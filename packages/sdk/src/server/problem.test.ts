import { describe, expect, it } from 'vitest';
import { createProblemResponse, formatProblem, PAYMENT_REQUIRED_TYPE } from './problem.js';

describe('formatProblem', () => {
  it('writes RFC 9457 members, the code and extensions', () => {
    expect(
      JSON.parse(
        formatProblem({
          status: 402,
          code: 'payment_required',
          detail: 'Pay.',
          extensions: { offers: [] },
        }),
      ),
    ).toEqual({
      type: PAYMENT_REQUIRED_TYPE,
      title: 'Payment Required',
      status: 402,
      code: 'payment_required',
      detail: 'Pay.',
      offers: [],
    });
    expect(
      JSON.parse(formatProblem({ status: 429, code: 'rate_limited', detail: 'Later.' })),
    ).toMatchObject({
      type: 'about:blank',
      title: 'Too Many Requests',
    });
  });

  it('makes a response with the problem content type', () => {
    const response = createProblemResponse({ status: 400, code: 'invalid_json', detail: 'x' }, [
      ['A', 'b'],
    ]);
    expect(response.status).toBe(400);
    expect(response.headers).toEqual([
      ['A', 'b'],
      ['Content-Type', 'application/problem+json'],
    ]);
  });
});
