/**
 * An in-process trace collector for tests: a tracer provider of the OpenTelemetry SDK, registered
 * as the global one, exporting every ended span to memory; and the checks tests make of what it
 * collected (the tree of spans, and that no secret appears in any of them).
 */
import { trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { bytesToHex } from '../../src/internal/bytes.js';

/** The spans collected so far, and a way to start afresh. */
export interface Collector {
  spans(): ReadableSpan[];
  reset(): void;
}

/**
 * Registers a tracer provider that keeps every ended span in memory as the global one (replacing
 * any registered before in this process).
 *
 * @example
 * ```ts
 * const collector = collectSpans();
 * // … requests …
 * expect(collector.spans().map((span) => span.name)).toContain('tollway.request');
 * ```
 */
export function collectSpans(): Collector {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.disable();
  trace.setGlobalTracerProvider(provider);
  return { spans: () => exporter.getFinishedSpans(), reset: () => exporter.reset() };
}

/** A span and the spans under it, by name, as the tests compare them. */
export interface SpanTree {
  name: string;
  children: SpanTree[];
}

/** The tree of spans under `root` (children ordered by start). */
export function treeOf(root: ReadableSpan, spans: readonly ReadableSpan[]): SpanTree {
  const children = spans
    .filter((span) => span.parentSpanContext?.spanId === root.spanContext().spanId)
    .sort((a, b) => compareTime(a.startTime, b.startTime));
  return { name: root.name, children: children.map((child) => treeOf(child, spans)) };
}

function compareTime(a: readonly [number, number], b: readonly [number, number]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/** The spans named `name`. */
export function spansNamed(spans: readonly ReadableSpan[], name: string): ReadableSpan[] {
  return spans.filter((span) => span.name === name);
}

/**
 * The forms a secret may take in text: as given, lower- and upper-case hex of its bytes, base64
 * and base64url. Strings are taken as they are (and, when hex, as bytes too).
 */
function formsOf(secret: string | Uint8Array): string[] {
  if (typeof secret === 'string') {
    const forms = [secret];
    if (/^(?:[0-9a-fA-F]{2})+$/.test(secret)) {
      forms.push(...formsOf(Uint8Array.from(Buffer.from(secret, 'hex'))));
    }
    return forms;
  }
  const hex = bytesToHex(secret);
  const buffer = Buffer.from(secret);
  return [hex, hex.toUpperCase(), buffer.toString('base64'), buffer.toString('base64url')];
}

/** Every text of a span a secret could hide in: its name, attributes, events and links. */
function textsOf(span: ReadableSpan): string[] {
  const texts = [span.name, span.status.message ?? ''];
  const attributeTexts = (attributes: ReadableSpan['attributes']) =>
    Object.entries(attributes).flatMap(([key, value]) => [key, JSON.stringify(value)]);
  texts.push(...attributeTexts(span.attributes));
  for (const event of span.events) {
    texts.push(event.name, ...attributeTexts(event.attributes ?? {}));
  }
  for (const link of span.links) texts.push(...attributeTexts(link.attributes ?? {}));
  return texts;
}

/**
 * Where any of `secrets` (named) appears in `spans`, in any of its forms: `'<secret name> in
 * <span name>'` for each, so an empty list means none leaked. Secrets shorter than 8 characters
 * are refused: they would match by chance.
 */
export function leakedSecrets(
  spans: readonly ReadableSpan[],
  secrets: Readonly<Record<string, string | Uint8Array>>,
): string[] {
  const found: string[] = [];
  for (const [name, secret] of Object.entries(secrets)) {
    const forms = formsOf(secret);
    if (forms.some((form) => form.length < 8)) throw new Error(`secret ${name} is too short`);
    for (const span of spans) {
      const texts = textsOf(span);
      if (texts.some((text) => forms.some((form) => text.includes(form)))) {
        found.push(`${name} in ${span.name}`);
      }
    }
  }
  return found;
}
