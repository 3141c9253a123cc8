// The secret check of the tracing tests finds a secret wherever a span could carry it, in each
// form it could take, so that those tests fail if one ever reaches a span.
import { type Span, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { randomBytes } from '../../src/internal/crypto.js';
import { collectSpans, leakedSecrets } from './tracing.js';

describe('leakedSecrets', () => {
  const collector = collectSpans();
  const tracer = trace.getTracer('test');
  const preimage = randomBytes(32);
  const hex = Buffer.from(preimage).toString('hex');

  const leaks: Array<[string, (span: Span) => void]> = [
    ['an attribute, as hex', (span) => span.setAttribute('proof', hex)],
    ['an attribute, as upper-case hex', (span) => span.setAttribute('proof', hex.toUpperCase())],
    [
      'an attribute, as base64',
      (span) => span.setAttribute('proof', Buffer.from(preimage).toString('base64')),
    ],
    [
      'an attribute list, inside a header value',
      (span) => span.setAttribute('headers', [`L402 abc:${hex}`]),
    ],
    ['an attribute name', (span) => span.setAttribute(`proof.${hex}`, true)],
    [
      'an event',
      (span) => span.addEvent('paid', { proof: Buffer.from(preimage).toString('base64url') }),
    ],
  ];

  it.each(leaks)('finds a secret in %s', (_where, leak) => {
    collector.reset();
    const span = tracer.startSpan('leaky');
    leak(span);
    span.end();
    expect(leakedSecrets(collector.spans(), { preimage })).toEqual(['preimage in leaky']);
    expect(leakedSecrets(collector.spans(), { preimage: hex })).toEqual(['preimage in leaky']);
  });

  it('finds none in a span without it', () => {
    collector.reset();
    tracer.startSpan('clean', { attributes: { 'tollway.payment.hash': 'ab'.repeat(32) } }).end();
    expect(leakedSecrets(collector.spans(), { preimage })).toEqual([]);
  });
});
