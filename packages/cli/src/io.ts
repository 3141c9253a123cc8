/** Where CLI output goes; tests may pass their own. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** The real process streams. */
export const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};
