/**
 * Request headers read from Node's raw list (`rawHeaders`: name, value, name, value, …), as the
 * Node-based adapters, Hono on `@hono/node-server` and the gateway see them. Node builds
 * `req.headers` on first access, and a Web `Headers` over a Node request reads through it: a cost
 * the paid path would otherwise be alone to pay (a plain handler reads no header). Internal to the
 * adapters; nothing here imports Node, so the Hono adapter may use it on any runtime.
 */
import type { HeaderReader } from '../server/types.js';

/** True when header `name` is `lower` (already lower case) but for letter case; allocates nothing. */
function isHeader(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  for (let i = 0; i < name.length; i++) {
    let code = name.charCodeAt(i);
    if (code >= 65 && code <= 90) code += 32;
    if (code !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A header view over a raw header list: repeated values joined with `, ` as a Web `Headers`
 * would (where `req.headers` keeps only the first value of some headers). A class, so a request
 * costs one small object.
 */
export class RawHeaderReader implements HeaderReader {
  readonly #raw: readonly string[];

  constructor(raw: readonly string[]) {
    this.#raw = raw;
  }

  get(name: string): string | null {
    const raw = this.#raw;
    const lower = name.toLowerCase();
    let value: string | null = null;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      if (!isHeader(raw[i]!, lower)) continue;
      value = value === null ? raw[i + 1]! : `${value}, ${raw[i + 1]}`;
    }
    return value;
  }

  has(name: string): boolean {
    return this.get(name) !== null;
  }
}

/**
 * Every `Authorization` line of a raw header list, kept apart (undefined when there is none): the
 * engine must see them all to refuse conflicting credentials.
 */
export function authorizationLines(raw: readonly string[]): string[] | undefined {
  let lines: string[] | undefined;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (isHeader(raw[i]!, 'authorization')) {
      lines ??= [];
      lines.push(raw[i + 1]!);
    }
  }
  return lines;
}
