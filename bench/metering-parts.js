// CPU time of the parts a metered LLM call adds in the gateway, each in one process, where a
// change of a few per cent shows (through `bench/metering.js` two gateway processes of one build
// differ by up to 10%):
//   filter  the usage-chunk filter over a streamed answer (the answer of bench/metering.js: 22
//           events with `"usage":null`, the usage-only chunk and `[DONE]`, in one read),
//   reader  the meter's answer reader over the same answer, to its usage,
//   commit  one `resizeHold` of a balance lease on the SQLite store (a temporary file): the group
//           commit that writes the charges of the calls settled in one turn (one per ~3.6 calls
//           in bench/metering.js).
// Nanoseconds of CPU per operation (process.cpuUsage), the median of rounds.
//
// `BASE=<checkout>` loads a second build (run `npm run build` there too) into the same process and
// alternates the two builds' rounds; each part's ratio, this build's CPU over the base's (below 1
// is cheaper), is printed and added to the JSON line as `cpu_vs_base`.
//
// Imports the built packages: run `npm run build` first. Takes about 10 seconds (20 with `BASE`).
// The last line printed is one JSON object (see bench/run-all.js).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROUNDS = 15;
const CALLS = { filter: 10_000, reader: 10_000, commit: 5_000 };
const here = new URL('..', import.meta.url).pathname;

/** The streamed answer of bench/metering.js's upstream, asked for usage: 20 pieces of content. */
function streamedAnswer() {
  const base =
    '"id":"chatcmpl-b","object":"chat.completion.chunk","created":1767225600,"model":"bench-model"';
  const event = (choices, usage) => `data: {${base},"choices":${choices},"usage":${usage}}\n\n`;
  let text = event(
    '[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]',
    'null',
  );
  for (let i = 1; i <= 20; i += 1) {
    text += event(`[{"index":0,"delta":{"content":"${i}\\n"},"finish_reason":null}]`, 'null');
  }
  text += event('[{"index":0,"delta":{},"finish_reason":"stop"}]', 'null');
  text += event('[]', '{"prompt_tokens":21,"completion_tokens":40,"total_tokens":61}');
  return Buffer.from(`${text}data: [DONE]\n\n`);
}

/** A balance lease's hold on a fresh SQLite store of `root`'s build, and its group commit. */
async function leaseCommit(root, dir) {
  const { createSqliteStore } = await import(join(root, 'packages/sdk/dist/stores/sqlite.js'));
  const store = createSqliteStore({ path: join(dir, `${root.replaceAll('/', '_')}.db`) });
  await store.init();
  const tokenId = 'account';
  const initialMsat = 10n ** 15n;
  const amountMsat = 1_000_000n;
  await store.saveToken({
    tokenId,
    paymentHash: 'hash',
    service: 'llm',
    tier: 0,
    createdAt: Date.now(),
    initialBalanceMsat: initialMsat,
  });
  let expiresAt = Date.now() + 60_000;
  const held = await store.hold(
    { id: 'lease', tokenId, balance: { amountMsat, initialMsat }, expiresAt },
    Date.now(),
  );
  if (!held.ok) throw new Error(`${root}: the lease's hold was refused`);
  // As a lease does: each commit charges what its calls cost and moves the expiry on.
  const commit = async () => {
    expiresAt += 1;
    const resized = await store.resizeHold(
      'lease',
      { chargeMsat: 1_000n, amountMsat, initialMsat, expiresAt },
      Date.now(),
    );
    if (resized?.ok !== true) throw new Error(`${root}: the lease's commit failed`);
  };
  return { commit, close: () => store.close() };
}

/** The parts of `root`'s build, each an async function doing one operation. */
async function partsOf(root, dir) {
  const { createUsageChunkFilter } = await import(
    join(root, 'packages/cli/dist/gateway/usage-chunk-filter.js')
  );
  const { createAnswerReader } = await import(join(root, 'packages/sdk/dist/llm/answer-reader.js'));
  const answer = streamedAnswer();
  const lease = await leaseCommit(root, dir);
  return {
    parts: {
      filter: async () => {
        const filter = createUsageChunkFilter();
        filter.write(answer);
        filter.end();
      },
      reader: async () => {
        const reader = createAnswerReader();
        reader.write(answer);
        if (reader.usage() === undefined) throw new Error(`${root}: no usage read`);
      },
      commit: lease.commit,
    },
    close: lease.close,
  };
}

/** CPU ns per call of `part`, over `calls` calls. */
async function cpuPerCall(part, calls) {
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i += 1) await part();
  const { user, system } = process.cpuUsage(before);
  return ((user + system) * 1000) / calls;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

const dir = mkdtempSync(join(tmpdir(), 'tollway-bench-metering-parts-'));
const roots = process.env.BASE === undefined ? [here] : [here, process.env.BASE];
const builds = [];
try {
  for (const root of roots) builds.push(await partsOf(root, dir));
  const result = {};
  for (const [name, calls] of Object.entries(CALLS)) {
    for (const build of builds) await cpuPerCall(build.parts[name], calls); // warm-up
    const samples = builds.map(() => []);
    for (let round = 0; round < ROUNDS; round += 1) {
      const order = round % 2 === 0 ? builds.keys() : [...builds.keys()].reverse();
      for (const index of order) {
        samples[index].push(await cpuPerCall(builds[index].parts[name], calls));
      }
    }
    result[name] = samples.map(median);
  }
  for (const [name, [ns, baseNs]] of Object.entries(result)) {
    const paired =
      baseNs === undefined
        ? ''
        : `  base ${Math.round(baseNs)} ns, ratio ${(ns / baseNs).toFixed(3)}`;
    console.error(
      `${name.padEnd(7)} ${Math.round(ns).toString().padStart(7)} ns of CPU per call${paired}`,
    );
  }
  const parts = Object.fromEntries(
    Object.entries(result).map(([name, [ns]]) => [name, Math.round(ns)]),
  );
  const vsBase =
    builds.length === 1
      ? {}
      : {
          cpu_vs_base: Object.fromEntries(
            Object.entries(result).map(([name, [ns, baseNs]]) => [
              name,
              Number((ns / baseNs).toFixed(3)),
            ]),
          ),
        };
  console.log(
    JSON.stringify({
      name: 'metering_parts',
      value: Object.values(parts).reduce((sum, ns) => sum + ns, 0),
      unit: 'ns',
      parts,
      ...vsBase,
    }),
  );
} finally {
  for (const build of builds) await build.close();
  rmSync(dir, { recursive: true, force: true });
}
