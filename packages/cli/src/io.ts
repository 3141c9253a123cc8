/** Where CLI output goes; tests may pass their own. */
export interface Io {
  /** Text, or bytes written as they are (a response body). */
  stdout(output: string | Uint8Array): void;
  stderr(text: string): void;
}

/** The real process streams. */
export const processIo: Io = {
  stdout: (output) => process.stdout.write(output),
  stderr: (text) => process.stderr.write(text),
};
