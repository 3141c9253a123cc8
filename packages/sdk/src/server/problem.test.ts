import { describe, expect, it } from 'vitest';
import { errorStatus, type TollwayErrorCode } from '../errors.js';
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

  it("takes the status from the code's row of the catalogue, with its reason phrase", () => {
    for (const [code, status] of Object.entries(errorStatus)) {
      const response = createProblemResponse({ code: code as TollwayErrorCode, detail: 'd' }, []);
      const body = JSON.parse(response.body);
      expect([code, response.status, body.status]).toEqual([code, status, status]);
      expect(body.title, code).not.toBe('Error');
    }
    expect(JSON.parse(formatProblem({ code: 'not_found', detail: 'x' }))).toMatchObject({
      title: 'Not Found',
      status: 404,
    });
  });

  it('lets the place that answers give its own status', () => {
    const response = createProblemResponse(
      { status: 401, code: 'invalid_base64', detail: 'x' },
      [],
    );
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body)).toMatchObject({ title: 'Unauthorized', status: 401 });
  });
});
