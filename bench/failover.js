// Three `tollway serve` processes on one PostgreSQL, under load, while one of them is killed and
// restarted and PostgreSQL is restarted: what the instances serve together, and whether they stay
// exact through it. docs/guides/scaling.md reports a run.
//
// Parts: an embedded PostgreSQL (bench/support/postgres.js), the dev Lightning network in this
// process (the agent pays from here), a plain upstream in a child process that records which
// attempts reached it, and three gateways (the built bin) with three services:
//   /counted  sells tokens of USES uses, at 1 sat each;
//   /balance  sells a balance of BALANCE_SAT sat, each request drawing DRAW_SAT sat (so a token
//             pays for floor(BALANCE_SAT / DRAW_SAT) requests and keeps the rest);
//   /timed    sells a token valid for an hour (no count: its requests need no store).
// The client spreads requests round-robin over the instances in play. SESSIONS session loops
// each buy a token (402, pay, retry), alternating /counted and /balance, and spend it with
// WORKERS_PER_TOKEN requests in flight at once, on different instances, until the token has
// answered every request it paid for. A request that fails is sent again with the same
// credential to the next instance: at once after a connection error, after a short pause after a
// 503, and, while a use is held by a request that may still be running (402 exhausted with
// answers still owed), until the hold is released (paywall.reservationTtl, RESERVATION_TTL_S).
//
// Phases, one after the other in one run: the load on 1, 2 and 3 instances, in SCALING_ROUNDS
// short rounds (1, 2, 3, 1, 2, 3, ...) so that the drifts of a shared machine hit every count
// alike (the scaling curve: paid answers per second, with the cores that the gateways, PostgreSQL
// and this process used and how idle the whole machine was, from Linux's /proc); then
// FAILOVER_SECONDS on three instances, with one /timed token in use besides, during which one
// instance is killed (SIGKILL) and started again on its port, and PostgreSQL is stopped (a fast
// shutdown, as a service restart does) and started again. Then no new tokens are bought, the
// tokens in use are spent, and the checks run:
//   - every token answered exactly what it paid for (paid requests lost: fewer; over-served: more);
//   - after every hold could have expired, every token is refused once more (402 exhausted);
//   - every upstream hit of a token is an answer the client got, or an attempt that died with
//     its instance (forwarded, then the instance was killed before answering: not charged, so
//     the token answered it again later); no other hit;
//   - in the store: the uses and spending of each token are what it answered, nothing is held,
//     no balance went below zero, and every token's payment is recorded as a settlement.
// `exact` is true when all of them hold. Errors are counted by kind (connection refused, reset or
// closed, `hung` for no answer in HANG_MS, else status and problem code).
// `BALANCE_LEASES=0` turns `paywall.balanceLeases` off (on by default).
// Imports the built packages: run `npm run build` first. Takes about two minutes. The last line
// printed is one JSON object (see bench/run-all.js).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createDevNetwork, createDevServer } from '@tollway/sdk/lightning/dev';
import { createMasterSecret } from '@tollway/sdk/server';
import { createPostgresStore } from '@tollway/sdk/stores/postgres';
import { Pool } from 'undici';
import {
  answerCpuQuestions,
  listen,
  payL402,
  roleArguments,
  startRole,
  startServe,
} from './support/children.js';
import { freePort, startPostgres } from './support/postgres.js';

const INSTANCES = 3;
const SESSIONS = 8;
const WORKERS_PER_TOKEN = 4;
const USES = 20;
const BALANCE_SAT = 100;
const DRAW_SAT = 3;
const RESERVATION_TTL_S = 10;
const WARMUP_SECONDS = 3;
const SCALING_ROUNDS = 3;
const SCALING_SECONDS = 3;
const FAILOVER_SECONDS = 36;
/**
 * In the failover phase: when the last instance is killed and how long it stays down, when
 * PostgreSQL is stopped and how long it stays down.
 */
const KILL_AT_S = 6;
const INSTANCE_DOWN_S = 4;
const PG_STOP_AT_S = 18;
const PG_DOWN_S = 4;
/** /balance draws from leases (the default); `BALANCE_LEASES=0` holds and settles per request. */
const BALANCE_LEASES = process.env.BALANCE_LEASES !== '0';
/** A request with no answer for this long counts as hung. */
const HANG_MS = 10_000;
/** A token that makes no progress for this long has lost what it paid for. */
const STALL_MS = (RESERVATION_TTL_S + 10) * 1000;

const SERVICES = {
  counted: { paidFor: USES, drawMsat: 0n },
  balance: {
    paidFor: Math.floor(BALANCE_SAT / DRAW_SAT),
    drawMsat: BigInt(DRAW_SAT) * 1000n,
    balanceMsat: BigInt(BALANCE_SAT) * 1000n,
  },
  timed: {},
};

/** The upstream: answers every request, and tells which attempts (`X-Bench-Attempt`) reached it. */
async function upstreamChild() {
  const hits = [];
  const body = JSON.stringify({ city: 'Oslo', sky: 'clear', temperature: 7 });
  const url = await listen(
    createServer((req, res) => {
      const attempt = req.headers['x-bench-attempt'];
      if (attempt !== undefined) hits.push(Number(attempt));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    }),
  );
  answerCpuQuestions();
  process.on('message', (message) => {
    if (message === 'hits') process.send({ hits });
  });
  process.send({ url });
}

function askHits(upstream) {
  return new Promise((resolve) => {
    upstream.proc.once('message', (message) => resolve(message.hits));
    upstream.proc.send('hits');
  });
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The config of one instance: its own port and data directory, the shared store and node. */
function instanceConfig({ port, dataDir, database, lightning, upstream }) {
  return [
    `listen: 127.0.0.1:${port}`,
    `dataDir: ${dataDir}`,
    `store: ${database}`,
    `lightning: ${lightning}`,
    'secrets: { env: TOLLWAY_BENCH_SECRETS }',
    `paywall: { reservationTtl: ${RESERVATION_TTL_S}s, balanceLeases: ${BALANCE_LEASES}, rateLimits: { challenges: false, challengesTotal: false } }`,
    'metrics: { enabled: false }',
    'services:',
    `  - { name: counted, path: /counted, upstream: "${upstream}", price: 1 sat, uses: ${USES} }`,
    `  - { name: balance, path: /balance, upstream: "${upstream}", price: ${DRAW_SAT} sat, balance: ${BALANCE_SAT} sat }`,
    `  - { name: timed, path: /timed, upstream: "${upstream}", price: 1 sat, validFor: 1h }`,
    '',
  ].join('\n');
}

/** What the client saw, by kind: connection errors by their code, answers by status and code. */
function createTally() {
  const counts = {};
  return {
    counts,
    add(kind) {
      counts[kind] = (counts[kind] ?? 0) + 1;
    },
  };
}

const CONNECTION_ERRORS = {
  ECONNREFUSED: 'connection_refused',
  ECONNRESET: 'connection_reset',
  EPIPE: 'connection_reset',
  UND_ERR_SOCKET: 'connection_closed',
  UND_ERR_CLOSED: 'connection_closed',
  UND_ERR_HEADERS_TIMEOUT: 'hung',
  UND_ERR_BODY_TIMEOUT: 'hung',
};

/** The client: one undici pool per instance, the instances in play, and what it saw. */
function createClient(urls) {
  const pools = urls.map(
    (url) =>
      new Pool(url, {
        connections: SESSIONS * WORKERS_PER_TOKEN,
        headersTimeout: HANG_MS,
        bodyTimeout: HANG_MS,
      }),
  );
  const client = {
    inPlay: 1,
    tally: createTally(),
    /** When each paid answer came, and from which instance. */
    answeredAt: [],
    answeredBy: [],
    next: 0,
    /** The next instance in play, round-robin. */
    pick() {
      client.next = (client.next + 1) % client.inPlay;
      return client.next;
    },
    /** One attempt on instance `index`: `{ status, code, headers }` or `{ error }` (a kind). */
    async send(index, path, headers) {
      try {
        const response = await pools[index].request({ method: 'GET', path, headers });
        const text = await response.body.text();
        if (response.statusCode === 200) return { status: 200, headers: response.headers };
        const code = response.headers['content-type']?.includes('json')
          ? JSON.parse(text).code
          : undefined;
        return { status: response.statusCode, code, headers: response.headers };
      } catch (error) {
        return { error: CONNECTION_ERRORS[error.code] ?? `error_${error.code ?? error.name}` };
      }
    },
    close: () => Promise.all(pools.map((pool) => pool.destroy())),
  };
  return client;
}

/** Buys a token of `service` through the instances in play; a 402 is sent again elsewhere. */
async function buy(client, payer, service) {
  for (;;) {
    const answer = await client.send(client.pick(), `/${service}/buy`, {});
    if (answer.status === 402) {
      const { authorization, paymentHash } = await payL402(
        answer.headers['www-authenticate'],
        payer,
      );
      return { service, authorization, paymentHash, ...SERVICES[service] };
    }
    client.tally.add(answer.error ?? `buy_${answer.status}_${answer.code}`);
    await pause(50);
  }
}

/**
 * Spends `token` with WORKERS_PER_TOKEN requests in flight until it has answered all it paid
 * for, or made no progress for STALL_MS (then what is left is lost).
 */
async function spend(client, token, attempts) {
  token.answered = 0;
  token.minRemainingMsat = undefined;
  let progressAt = performance.now();
  const worker = async () => {
    let backoff = 25;
    while (token.answered < token.paidFor) {
      if (performance.now() - progressAt > STALL_MS) return;
      const id = String(attempts.length);
      const index = client.pick();
      attempts.push({ token, outcome: 'sent' });
      const answer = await client.send(index, `/${token.service}/${id}`, {
        authorization: token.authorization,
        'x-bench-attempt': id,
      });
      const attempt = attempts[Number(id)];
      if (answer.status === 200) {
        attempt.outcome = 'answered';
        token.answered += 1;
        progressAt = performance.now();
        client.answeredAt.push(progressAt);
        client.answeredBy.push(index);
        noteRemaining(token, answer.headers['tollway-remaining']);
        backoff = 25;
        continue;
      }
      attempt.outcome = answer.error === undefined ? 'refused' : 'died';
      const exhausted = answer.code === 'uses_exhausted' || answer.code === 'balance_exhausted';
      // The owed use is held by a request still running, or by one that died with its instance.
      client.tally.add(
        answer.error ?? (exhausted ? `402_${answer.code}_held` : `${answer.status}_${answer.code}`),
      );
      if (answer.error === 'connection_refused' || answer.error === 'connection_reset') continue;
      await pause(backoff);
      backoff = Math.min(backoff * 2, 400);
    }
  };
  await Promise.all(Array.from({ length: WORKERS_PER_TOKEN }, worker));
}

function noteRemaining(token, header) {
  if (token.service !== 'balance' || typeof header !== 'string') return;
  const msat = BigInt(header.split(' ')[0]);
  if (token.minRemainingMsat === undefined || msat < token.minRemainingMsat)
    token.minRemainingMsat = msat;
}

/** SESSIONS loops buying and spending tokens until `stop.now` is set; resolves when all are done. */
function runLoad(client, payer, tokens, attempts, stop) {
  const session = async (index) => {
    for (let round = 0; !stop.now; round += 1) {
      const token = await buy(client, payer, (index + round) % 2 === 0 ? 'counted' : 'balance');
      tokens.push(token);
      await spend(client, token, attempts);
    }
  };
  return Promise.all(Array.from({ length: SESSIONS }, (_, index) => session(index)));
}

/**
 * One time-bound token (no use count, no balance: its requests need no store) used one request at
 * a time until `stop.now` is set; when each answer came, and what was refused.
 */
async function useTimedToken(client, payer, stop) {
  const token = await buy(client, payer, 'timed');
  const answeredAt = [];
  const refused = createTally();
  while (!stop.now) {
    const answer = await client.send(client.pick(), '/timed/x', {
      authorization: token.authorization,
    });
    if (answer.status === 200) answeredAt.push(performance.now());
    else {
      refused.add(answer.error ?? `${answer.status}_${answer.code}`);
      await pause(25);
    }
  }
  return { answeredAt, refused: refused.counts };
}

/** Paid answers per second between `from` and `to` (performance.now() times). */
function rate(client, from, to) {
  return Math.round(answersBetween(client, from, to) / ((to - from) / 1000));
}

function answersBetween(client, from, to) {
  return client.answeredAt.filter((at) => at >= from && at < to).length;
}

/** CPU seconds a process has used so far (Linux /proc); 0 for one that is gone. */
function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds so far of each group of the run's processes, and the machine's total and idle. */
function cpuSnapshot(groups) {
  const [, ...all] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
  const snapshot = {
    total: all.reduce((sum, value) => sum + Number(value), 0),
    idle: Number(all[3]) + Number(all[4]),
  };
  for (const [name, pids] of Object.entries(groups))
    snapshot[name] = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  return snapshot;
}

/**
 * The load on 1..INSTANCES instances in SCALING_ROUNDS rounds: per count, paid answers per
 * second, the ratio to one instance, paid answers per CPU-second of the run's processes, the
 * cores that the gateways, PostgreSQL, this process (the client and the dev Lightning node) and
 * the upstream used, and the machine's idle share.
 */
async function measureScaling(client, gateways, postgres, upstream) {
  const groups = {
    gateways: gateways.map((gateway) => gateway.instance.proc.pid),
    postgres: postgres.processIds(),
    client: [process.pid],
    upstream: [upstream.proc.pid],
  };
  const fields = ['answers', 'ms', 'total', 'idle', ...Object.keys(groups)];
  const sums = Array.from({ length: INSTANCES + 1 }, () =>
    Object.fromEntries(fields.map((field) => [field, 0])),
  );
  for (let round = 0; round < SCALING_ROUNDS; round += 1) {
    for (let count = 1; count <= INSTANCES; count += 1) {
      client.inPlay = count;
      // The requests still running on the previous count's instances finish first.
      await pause(250);
      const from = performance.now();
      const before = cpuSnapshot(groups);
      await pause(SCALING_SECONDS * 1000);
      const after = cpuSnapshot(groups);
      const to = performance.now();
      const sum = sums[count];
      sum.answers += answersBetween(client, from, to);
      sum.ms += to - from;
      for (const field of fields.slice(2)) sum[field] += after[field] - before[field];
    }
  }
  const scaling = {};
  for (let count = 1; count <= INSTANCES; count += 1) {
    const sum = sums[count];
    const seconds = sum.ms / 1000;
    const rps = Math.round(sum.answers / seconds);
    const cores = (name) => Number((sum[name] / seconds).toFixed(2));
    const cpu = Object.keys(groups).reduce((total, name) => total + sum[name], 0);
    scaling[count] = {
      rps,
      ratio: Number((rps / (scaling[1]?.rps ?? rps)).toFixed(2)),
      per_cpu_second: Math.round(sum.answers / cpu),
      cores: Object.fromEntries(Object.keys(groups).map((name) => [name, cores(name)])),
      machine_idle: Number((sum.idle / sum.total).toFixed(2)),
    };
    console.error(`${count} instance(s):`, JSON.stringify(scaling[count]));
  }
  return scaling;
}

/** The failover phase's events, each at its time; returns what happened when. */
async function failover(gateways, postgres, startedAt) {
  const events = {};
  const at = (seconds) => pause(Math.max(0, startedAt + seconds * 1000 - performance.now()));
  const since = () => Math.round(performance.now() - startedAt);
  await at(KILL_AT_S);
  const victim = gateways[INSTANCES - 1];
  victim.instance.proc.kill('SIGKILL');
  await victim.instance.exited;
  events.killed_ms = since();
  await at(KILL_AT_S + INSTANCE_DOWN_S);
  victim.instance = await startServe(victim.config, victim.env);
  events.restarted_ms = since();
  await at(PG_STOP_AT_S);
  events.pg_stopping_ms = since();
  await postgres.restart(PG_DOWN_S * 1000);
  events.pg_started_ms = since();
  return events;
}

/** The first answer after `from` (from `instance`, or any), ms after it. */
function firstAnswerAfter(client, from, instance) {
  const index = client.answeredAt.findIndex(
    (at, i) => at >= from && (instance === undefined || client.answeredBy[i] === instance),
  );
  return index < 0 ? undefined : Math.round(client.answeredAt[index] - from);
}

/** The longest time between two paid answers from `from` on, ms. */
function longestGap(client, from) {
  let longest = 0;
  let last = from;
  for (const at of client.answeredAt) {
    if (at < from) continue;
    longest = Math.max(longest, at - last);
    last = at;
  }
  return Math.round(longest);
}

/** Probes every token once more: each must be refused as exhausted. */
async function probe(client, tokens, attempts) {
  const outcomes = createTally();
  for (const token of tokens) {
    const id = String(attempts.length);
    attempts.push({ token, outcome: 'probe' });
    const answer = await client.send(client.pick(), `/${token.service}/${id}`, {
      authorization: token.authorization,
      'x-bench-attempt': id,
    });
    outcomes.add(answer.error ?? `${answer.status}_${answer.code}`);
  }
  return outcomes.counts;
}

/** The store's account of every token: uses, spending, holds, and whether its payment is recorded. */
async function readStore(database, tokens) {
  const store = createPostgresStore({ connectionString: database });
  await store.init();
  try {
    const settled = new Set(
      (await store.listSettlements({ limit: 1_000_000 })).map((s) => s.reference),
    );
    const wrong = { usage: 0, held: 0, below_zero: 0, settlement_missing: 0 };
    for (const token of tokens) {
      const usage = await store.getUsage(token.paymentHash);
      const spent = BigInt(token.answered) * token.drawMsat;
      if (token.service === 'counted' ? usage.uses !== token.answered : usage.spentMsat !== spent)
        wrong.usage += 1;
      if (usage.heldUses !== 0 || usage.heldMsat !== 0n) wrong.held += 1;
      if (
        token.balanceMsat !== undefined &&
        (usage.spentMsat > token.balanceMsat || (token.minRemainingMsat ?? 0n) < 0n)
      )
        wrong.below_zero += 1;
      if (!settled.has(token.paymentHash)) wrong.settlement_missing += 1;
    }
    return wrong;
  } finally {
    await store.close();
  }
}

/** Every upstream hit of a counted or balance token, by what became of its attempt. */
function classifyHits(hits, attempts) {
  const byOutcome = { answered: 0, died: 0, other: 0 };
  for (const id of hits) {
    const outcome = attempts[id]?.outcome;
    if (outcome === 'answered' || outcome === 'died') byOutcome[outcome] += 1;
    else byOutcome.other += 1;
  }
  return byOutcome;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'tollway-bench-failover-'));
  const postgres = await startPostgres();
  const network = createDevNetwork({ path: ':memory:' });
  const shop = network.openWallet('shop');
  network.openWallet('agent', { balanceMsat: 10n ** 15n });
  const payer = network.backend('agent');
  const devServer = await createDevServer({ network });
  const upstream = await startRole(import.meta.url, 'upstream', {});
  // The server is the run's own: the gateways keep their tables in its `postgres` database.
  const database = postgres.url;
  const env = { TOLLWAY_BENCH_SECRETS: createMasterSecret() };
  const gateways = [];
  let client;
  try {
    for (let index = 0; index < INSTANCES; index += 1) {
      const config = join(dir, `gateway-${index}.yaml`);
      writeFileSync(
        config,
        instanceConfig({
          port: await freePort(),
          dataDir: join(dir, `gateway-${index}`),
          database,
          lightning: `dev+${devServer.url}?wallet=shop&token=${shop.token}`,
          upstream: upstream.url,
        }),
      );
      gateways.push({ config, env, instance: await startServe(config, env) });
    }
    client = createClient(gateways.map((gateway) => gateway.instance.url));
    const tokens = [];
    const attempts = [];
    const stop = { now: false };

    client.inPlay = INSTANCES;
    const load = runLoad(client, payer, tokens, attempts, stop);
    await pause(WARMUP_SECONDS * 1000);
    const scaling = await measureScaling(client, gateways, postgres, upstream);
    client.inPlay = INSTANCES;
    const scaledTally = { ...client.tally.counts };

    const failoverFrom = performance.now();
    const timed = useTimedToken(client, payer, stop);
    const events = await failover(gateways, postgres, failoverFrom);
    await pause(Math.max(0, failoverFrom + FAILOVER_SECONDS * 1000 - performance.now()));
    const failoverRps = rate(client, failoverFrom, performance.now());
    stop.now = true;
    await load;
    const pgDown = [failoverFrom + events.pg_stopping_ms, failoverFrom + events.pg_started_ms];
    const timedRun = await timed;
    const whilePgDown = {
      ms: Math.round(pgDown[1] - pgDown[0]),
      counted_and_balance_answers: answersBetween(client, ...pgDown),
      timed_answers: timedRun.answeredAt.filter((at) => at >= pgDown[0] && at < pgDown[1]).length,
      timed_refused: timedRun.refused,
    };
    const recovery = {
      restarted_instance_first_answer: firstAnswerAfter(
        client,
        failoverFrom + events.restarted_ms,
        INSTANCES - 1,
      ),
      pg_first_answer: firstAnswerAfter(client, failoverFrom + events.pg_started_ms),
      longest_gap: longestGap(client, failoverFrom),
    };
    console.error(`failover: ${failoverRps} paid answers/s`, events, recovery);

    // Every hold a dead request left expires within the reservation TTL; then each token is
    // refused once more, wherever it is sent.
    await pause(RESERVATION_TTL_S * 1000 + 1500);
    const probed = await probe(client, tokens, attempts);
    const store = await readStore(database, tokens);
    const hits = classifyHits(await askHits(upstream), attempts);
    const owed = tokens.reduce((sum, token) => sum + token.paidFor, 0);
    const answered = tokens.reduce((sum, token) => sum + token.answered, 0);
    const lost = tokens.reduce(
      (sum, token) => sum + Math.max(0, token.paidFor - token.answered),
      0,
    );
    const over = tokens.reduce(
      (sum, token) => sum + Math.max(0, token.answered - token.paidFor),
      0,
    );
    const exact =
      lost === 0 &&
      over === 0 &&
      Object.keys(probed).every((kind) => /^402_(uses|balance)_exhausted$/.test(kind)) &&
      hits.answered === answered &&
      hits.other === 0 &&
      Object.values(store).every((count) => count === 0);
    const result = {
      name: 'failover',
      value: scaling[INSTANCES].rps,
      unit: 'paid answers/s',
      scaling,
      failover_rps: failoverRps,
      events_ms: events,
      while_pg_down: whilePgDown,
      recovery_ms: recovery,
      tokens: tokens.length,
      answers: answered,
      exact,
      // Requests that hung, or failed without a typed problem (a 500, an unknown error).
      untyped_failures: Object.entries(client.tally.counts)
        .filter(([kind]) => /^(hung|error_|(buy_)?5\d\d_(internal_error|undefined))/.test(kind))
        .reduce((sum, [, count]) => sum + count, 0),
      paid_requests_lost: lost,
      over_served: over,
      exact_tokens: tokens.filter((token) => token.answered === token.paidFor).length,
      // Tokens that answered fewer or more than they paid for, by service.
      inexact_by_service: tokens
        .filter((token) => token.answered !== token.paidFor)
        .reduce((by, token) => {
          by[token.service] = (by[token.service] ?? 0) + 1;
          return by;
        }, {}),
      owed,
      probe: probed,
      upstream_hits: hits,
      store,
      errors_scaling: scaledTally,
      errors: client.tally.counts,
    };
    console.log(JSON.stringify(result));
  } finally {
    await client?.close();
    for (const gateway of gateways) gateway.instance.proc.kill('SIGTERM');
    await Promise.all(gateways.map((gateway) => gateway.instance.exited));
    upstream.proc.removeAllListeners('exit');
    upstream.proc.kill('SIGTERM');
    await devServer.close();
    await network.close();
    await postgres.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const child = roleArguments();
if (child !== undefined) await upstreamChild();
else await main();
