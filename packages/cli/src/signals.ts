/** Waiting for the signals that stop (or reload) a command that serves. */

/**
 * Resolves on the first of `signals`, with its name.
 *
 * @example
 * ```ts
 * await nextSignal(['SIGINT', 'SIGTERM']);
 * ```
 */
export function nextSignal(signals: readonly NodeJS.Signals[]): Promise<NodeJS.Signals> {
  return new Promise((done) => {
    const handler = (signal: NodeJS.Signals): void => {
      for (const name of signals) process.off(name, handler);
      done(signal);
    };
    for (const name of signals) process.on(name, handler);
  });
}
