/**
 * Config problems as a person reads them: the YAML path, the reason, and a suggestion where one
 * helps — the field a misspelled key probably meant, the forms a value may take. Built from zod's
 * issues and the schema they came from.
 */
import type { z } from 'zod';

/** `services[1].upstream` from a zod / walk path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const key of path) {
    if (typeof key === 'number') text += `[${key}]`;
    else text += text === '' ? String(key) : `.${String(key)}`;
  }
  return text === '' ? '(config)' : text;
}

/** The definition fields of zod's schema kinds that this module walks. */
interface Definition {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: readonly z.ZodType[];
}

function definition(schema: z.ZodType): Definition {
  return (schema as unknown as { _zod: { def: Definition } })._zod.def;
}

/** The schemas a value at `path` may match (several below a union). */
function schemasAt(schema: z.ZodType, path: readonly PropertyKey[]): z.ZodType[] {
  let current = [schema];
  for (const key of path) current = current.flatMap((s) => children(s, key));
  return current.flatMap(unwrap);
}

/** `schema` without its optional / default / transform wrappers, unions spread. */
function unwrap(schema: z.ZodType): z.ZodType[] {
  const def = definition(schema);
  const inner = def.innerType ?? def.in;
  if (inner !== undefined) return unwrap(inner);
  if (def.type === 'union') return (def.options ?? []).flatMap(unwrap);
  return [schema];
}

function children(schema: z.ZodType, key: PropertyKey): z.ZodType[] {
  return unwrap(schema).flatMap((s) => {
    const def = definition(s);
    if (def.type === 'object') {
      const child = def.shape?.[String(key)];
      return child === undefined ? [] : [child];
    }
    if (def.type === 'array' && def.element !== undefined) return [def.element];
    if (def.type === 'record' && def.valueType !== undefined) return [def.valueType];
    return [];
  });
}

/** The fields an object at `path` may have. */
function fieldsAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  return schemasAt(schema, path).flatMap((s) => Object.keys(definition(s).shape ?? {}));
}

/**
 * Edit distance of two short strings, counting a swap of neighbours as one edit (optimal string
 * alignment). Hand-written: a dozen lines, for a handful of field names.
 */
function distance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, at(i - 2, j - 2) + 1);
      }
      (rows[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * Where in the schema a field named `key` exists, as a path (`paywall`, `services[]`): for a key
 * written at the wrong level. Breadth first, so the shallowest place is found.
 */
function homeOf(schema: z.ZodType, key: string): string | undefined {
  let level: Array<{ schema: z.ZodType; path: string }> = [{ schema, path: '' }];
  for (let depth = 0; depth < 6 && level.length > 0; depth++) {
    const next: typeof level = [];
    for (const { schema: node, path } of level) {
      for (const s of unwrap(node)) {
        const def = definition(s);
        if (def.type === 'object') {
          if (def.shape?.[key] !== undefined) return path;
          for (const [name, child] of Object.entries(def.shape ?? {})) {
            next.push({ schema: child, path: path === '' ? name : `${path}.${name}` });
          }
        } else if (def.type === 'array' && def.element !== undefined) {
          next.push({ schema: def.element, path: `${path}[]` });
        }
      }
    }
    level = next;
  }
  return undefined;
}

/** Field lists longer than this are left to the reference page. */
const MAX_LISTED_FIELDS = 8;

/** What to write instead of an unknown `key` at `path`. */
function suggestion(schema: z.ZodType, path: readonly PropertyKey[], key: string): string {
  const fields = fieldsAt(schema, path);
  const meant = closest(key, fields);
  if (meant !== undefined) return `did you mean \`${meant}\`?`;
  const home = homeOf(schema, key);
  if (home !== undefined) {
    return `\`${key}\` belongs ${home === '' ? 'at the top level' : `in \`${home}\``}`;
  }
  return fields.length <= MAX_LISTED_FIELDS
    ? `the fields here are ${fields.map((f) => `\`${f}\``).join(', ')}`
    : 'see docs/reference/config.md for the fields here';
}

/** The field `key` most probably meant, when one is close (case ignored). */
function closest(key: string, fields: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3));
  for (const field of fields) {
    const d = distance(key.toLowerCase(), field.toLowerCase());
    if (d <= bestDistance) {
      best = field;
      bestDistance = d;
    }
  }
  return best;
}

/** `a`, `a or b`, `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length <= 1
    ? (items[0] ?? '')
    : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

const ARTICLE: Record<string, string> = {
  string: 'text',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
};

/** What a value of zod's `expected` kind looks like in YAML. */
function kind(expected: unknown): string {
  return ARTICLE[String(expected)] ?? String(expected);
}

/** zod's own default messages start so; messages the schema gives are kept as they are. */
const DEFAULT_MESSAGE = /^Invalid (input|option)/;

type Issue = z.core.$ZodIssue;

/** The reason of one issue (not its path), in words a config author reads. */
function reason(issue: Issue): string {
  if (!DEFAULT_MESSAGE.test(issue.message)) return issue.message;
  if (issue.code === 'invalid_type') {
    return issue.message.endsWith('received undefined')
      ? 'is required'
      : `must be ${kind(issue.expected)}`;
  }
  if (issue.code === 'invalid_union') {
    const forms = issue.errors.map((branch) => {
      const first = branch[0];
      if (first === undefined) return 'another form';
      return first.code === 'invalid_type' && DEFAULT_MESSAGE.test(first.message)
        ? kind(first.expected)
        : first.message;
    });
    return `must be ${orList([...new Set(forms)])}`;
  }
  if (issue.code === 'invalid_value') {
    return `must be ${orList(issue.values.map((v) => JSON.stringify(v)))}`;
  }
  return issue.message;
}

/**
 * Every problem of a failed parse as `path: reason[; suggestion]`, one per line: an unknown key is
 * reported at its own path with the field it probably meant, the place where such a field
 * belongs, or the fields allowed there.
 */
export function describeIssues(schema: z.ZodType, issues: readonly Issue[]): string[] {
  const problems: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push(
          `${formatPath([...issue.path, key])}: unknown field; ${suggestion(schema, issue.path, key)}`,
        );
      }
    } else {
      problems.push(`${formatPath(issue.path)}: ${reason(issue)}`);
    }
  }
  return problems;
}
