/** Where CLI output goes; tests may pass their own. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  /** True when stdout is a terminal (absent: not one, as for a pipe or a test capture). */
  stdoutIsTty?: boolean;
}

/** The real process streams. */
export const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  stdoutIsTty: process.stdout.isTTY === true,
};
