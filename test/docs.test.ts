// The documentation against the code it describes:
// - docs/reference/cli.md names every command and every option of the `tollway` program, and no
//   option the program lacks (so `--help` and the page list the same things);
// - every `import … from '@tollway/sdk…'` in a code block of the README, the guides and the
//   reference type-checks against the SDK (the names exist on that subpath), and no code block
//   imports a file of this repository (a reader has the packages, not our test helpers);
// - the docs and the package descriptions promise no future work ("not paid yet", "will be
//   added"): they say what the code does today;
// - the paywall guide's command that makes a master secret prints one.
// Runnable examples and the guides' closing `tollway fetch` lines are run by test/examples.test.ts.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { createProgram } from '../packages/cli/src/main.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** A command of the `tollway` program (commander's `Command`). */
type Command = ReturnType<typeof createProgram>;
const cliReference = readFileSync(join(root, 'docs/reference/cli.md'), 'utf8');

/** Every command of the program with its full name (`wallet info`, `dev node`). */
function commands(program: Command): Array<{ name: string; command: Command }> {
  const found: Array<{ name: string; command: Command }> = [];
  const walk = (command: Command, prefix: string): void => {
    for (const sub of command.commands) {
      const name = `${prefix}${sub.name()}`;
      found.push({ name, command: sub });
      walk(sub, `${name} `);
    }
  };
  walk(program, '');
  return found;
}

/** The part of cli.md about a top-level command: from its `## ` heading to the next one. */
function section(topLevel: string): string {
  const start = cliReference.search(new RegExp(`^## \`tollway ${topLevel}\``, 'm'));
  if (start < 0) throw new Error(`cli.md has no "## \`tollway ${topLevel}\`" section`);
  const next = cliReference.slice(start + 3).search(/^## /m);
  const sections =
    next < 0 ? cliReference.slice(start) : cliReference.slice(start, start + 3 + next);
  // `tollway dev node` has its own section; it belongs to `dev` too.
  const nested = [...cliReference.matchAll(new RegExp(`^## \`tollway ${topLevel} [^\`]+\``, 'gm'))];
  return [sections, ...nested.map((m) => section(m[0].slice(12, -1)))].join('\n');
}

/** The long options of a command (`--max-cost`), without commander's own `--help`. */
function longOptions(command: Command): string[] {
  return command.options
    .map((option) => option.long ?? '')
    .filter((long) => long !== '' && long !== '--help');
}

describe('docs/reference/cli.md', () => {
  const program = createProgram(
    { stdout: () => undefined, stderr: () => undefined },
    () => undefined,
  );

  it('names every command and documents each of its options', () => {
    const missing: string[] = [];
    for (const { name, command } of commands(program)) {
      if (!cliReference.includes(`tollway ${name}`)) missing.push(`command tollway ${name}`);
      const text = section(name.split(' ')[0] ?? name);
      for (const long of longOptions(command)) {
        // `--no-pay` is written as commander declares it.
        if (!new RegExp(`${long}(?![a-z-])`).test(text)) missing.push(`tollway ${name} ${long}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('documents no option the program does not have', () => {
    const unknown: string[] = [];
    for (const { name, command } of commands(program).filter((c) => !c.name.includes(' '))) {
      const known = new Set([
        ...longOptions(command),
        ...command.commands.flatMap((sub) => longOptions(sub)),
      ]);
      // Option rows of the tables: | `--max-cost <amount>` | … |, | `-o, --output <file>` | … |
      for (const row of section(name).matchAll(/^\| `(?:-\w, )?(--[a-z0-9-]+)[^|]*\|/gm)) {
        const option = row[1] ?? '';
        if (!known.has(option) && !known.has(option.replace(/^--no-/, '--'))) {
          unknown.push(`tollway ${name} ${option}`);
        }
      }
    }
    expect(unknown).toEqual([]);
  });
});

/** The Markdown files whose code blocks readers copy. */
function documents(): string[] {
  const guides = readdirSync(join(root, 'docs/guides')).map((f) => `docs/guides/${f}`);
  const reference = readdirSync(join(root, 'docs/reference')).map((f) => `docs/reference/${f}`);
  return ['README.md', ...guides, ...reference].filter((f) => f.endsWith('.md'));
}

/** Every `import … from '@tollway/sdk…'` statement in the ts/js code blocks of `file`. */
function sdkImports(file: string): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const blocks = [...text.matchAll(/```(?:ts|js|typescript|javascript)\n([\s\S]*?)```/g)];
  return blocks.flatMap((block) =>
    [...(block[1] ?? '').matchAll(/^import\s+[^;]*?from\s+'@tollway\/sdk[^']*';/gms)].map(
      (m) => m[0],
    ),
  );
}

describe('imports in the documentation', () => {
  // A type-check of the whole program: about 35 s alone here, and past 60 s when other suites run
  // beside it on the 2 loaded cores.
  it('name what each @tollway/sdk subpath exports', () => {
    const config = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
    const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root);
    // One virtual module per import, the import turned into a re-export: it type-checks when every
    // name (value or type) exists on the subpath, with nothing left unused.
    const files = new Map<string, { doc: string; statement: string }>();
    for (const doc of documents()) {
      for (const statement of sdkImports(doc)) {
        files.set(join(root, 'test', `__doc_import_${files.size}.ts`), { doc, statement });
      }
    }
    expect(files.size).toBeGreaterThan(10);
    const source = (statement: string) =>
      statement
        .replace(/^import\s+(type\s+)?/, 'export $1')
        .replace(/^export (type )?\* as/, 'export $1* as');
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile;
    host.getSourceFile = (name, language, ...rest) => {
      const virtual = files.get(name);
      return virtual !== undefined
        ? ts.createSourceFile(name, source(virtual.statement), language)
        : getSourceFile.call(host, name, language, ...rest);
    };
    const fileExists = host.fileExists;
    host.fileExists = (name) => files.has(name) || fileExists.call(host, name);
    const program = ts.createProgram({ rootNames: [...files.keys()], options, host });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file !== undefined && files.has(d.file.fileName))
      .map((d) => {
        const virtual = files.get(d.file?.fileName ?? '');
        return `${virtual?.doc}: ${virtual?.statement.replace(/\s+/g, ' ')}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
      });
    expect(problems).toEqual([]);
  }, 240_000);
});

describe('the documentation, read as a newcomer', () => {
  it('imports packages in its code blocks, never files of this repository', () => {
    const local = documents().flatMap((doc) =>
      [
        ...readFileSync(join(root, doc), 'utf8').matchAll(/^import [^;]*from '(\.{1,2}\/[^']*)'/gm),
      ].map((m) => `${doc}: ${m[1]}`),
    );
    expect(local).toEqual([]);
  });

  it('promises no future work: it says what the code does today', () => {
    const promise = /not paid yet|will be added|as they land|does not take [^.]* yet/i;
    const texts = [
      ...documents().map((doc) => ({ where: doc, text: readFileSync(join(root, doc), 'utf8') })),
      ...['packages/sdk/package.json', 'packages/cli/package.json'].map((file) => ({
        where: file,
        text: (JSON.parse(readFileSync(join(root, file), 'utf8')) as { description: string })
          .description,
      })),
    ];
    expect(texts.filter(({ text }) => promise.test(text)).map(({ where }) => where)).toEqual([]);
    const cli = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8')) as {
      description: string;
    };
    for (const job of ['serve', 'dev', 'fetch', 'MCP', 'wallet', 'token']) {
      expect(cli.description).toContain(job);
    }
  });

  it("makes a master secret with the paywall guide's command", () => {
    const guide = readFileSync(join(root, 'docs/guides/paywall.md'), 'utf8');
    const command = /^node -e "([^"]*createMasterSecret[^"]*)"$/m.exec(guide)?.[1];
    if (command === undefined)
      throw new Error('paywall.md: no `node -e "…createMasterSecret…"` line');
    const printed = execFileSync(process.execPath, ['-e', command], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(printed).toMatch(/^[0-9a-f]{64}\n$/);
  });
});
