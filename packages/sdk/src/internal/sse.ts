/**
 * One line of a server-sent event stream read as a field (the HTML standard's rule): the value of
 * `name:` without the one space that may follow the colon.
 */

/**
 * The value of field `name` on `line`, or undefined when the line is another field.
 *
 * @example
 * ```ts
 * sseField('data: {"a":1}', 'data'); // '{"a":1}'
 * ```
 */
export function sseField(line: string, name: string): string | undefined {
  if (!line.startsWith(name) || line.charCodeAt(name.length) !== 58) return undefined;
  return line.slice(line.charCodeAt(name.length + 1) === 32 ? name.length + 2 : name.length + 1);
}
