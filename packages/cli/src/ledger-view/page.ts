/**
 * The ledger view's page (the shared page kit: inline CSS and script, no build step): the kill
 * switch, what each budget window has left, spend over time grouped by origin, agent, task or
 * model, and the recent ledger entries. It reads the view's JSON API on its own origin and
 * computes nothing but sums of what the API gives. Internal to the ledger view.
 */
import { escapeHtml, renderPage } from '../page/kit.js';

/** What the page needs to know when it is served. */
export interface LedgerPageOptions {
  /** Nonce of the inline style and script (the page's CSP allows nothing else). */
  nonce: string;
  /** The budget whose windows are shown (`agent`). */
  budget: string;
}

const STYLE = `
.switch { display: flex; flex-wrap: wrap; align-items: center; gap: 12px 20px; margin-top: 16px;
  padding: 14px 16px; }
.switch.paused { border-color: #f1b5b0; background: #fff6f5; }
.tag.paused { background: #fde8e7; color: var(--danger); }
.tag.active { background: #e3f4ea; color: var(--ok); }
button.kill { font: inherit; font-weight: 600; border-radius: 8px; padding: 6px 16px; cursor: pointer;
  color: #fff; background: var(--danger); border: 1px solid var(--danger); }
button.kill.resume { background: var(--ok); border-color: var(--ok); }
.controls { display: flex; gap: 16px; align-items: center; margin: 0 0 10px; }
.controls label { color: var(--muted); font-size: 14px; }
select { font: inherit; font-size: 14px; padding: 2px 6px; }
td.negative { color: var(--ok); }
`;

// The page script, after the kit's helpers: plain ES2020, no template literals (this file wraps
// it in one).
const SCRIPT = `
const REFRESH_MS = 5000;
const WINDOW_NAMES = { hour: 'Last hour', day: 'Last 24 hours', month: 'Last 30 days', total: 'All time' };

function sum(rows, field) {
  return rows.reduce((total, row) => total + BigInt(row[field]), 0n);
}

function keyText(key) {
  return key === '' ? '(none)' : key;
}

function bucketLabel(start, bucket) {
  return bucket === 'hour' ? new Date(start).toISOString().slice(11, 16) : new Date(start).toISOString().slice(0, 10);
}

function renderPause(state) {
  const paused = state.paused;
  document.body.dataset.paused = String(paused);
  $('switch').className = 'panel switch' + (paused ? ' paused' : '');
  $('pause-state').className = 'tag ' + (paused ? 'paused' : 'active');
  $('pause-state').textContent = paused ? 'paused' : 'paying';
  $('pause-text').textContent = paused
    ? 'No agent using this ledger pays anything until you resume.'
    : 'Agents using this ledger pay within their budgets.' +
      (state.disabled ? ' (The kill switch of budget ' + state.budget + ' is on: it pays nothing.)' : '');
  const button = $('pause-button');
  button.textContent = paused ? 'Resume payments' : 'Pause all payments';
  button.className = 'kill' + (paused ? ' resume' : '');
  button.dataset.action = paused ? 'resume' : 'pause';
  button.disabled = false;
}

async function togglePause() {
  const button = $('pause-button');
  const action = button.dataset.action;
  button.disabled = true;
  try {
    const result = await api('POST', '/' + action);
    setNotice(result.paused ? 'Payments paused: every agent of this ledger now refuses to pay (payments_paused).' : 'Payments resumed.', false);
  } catch (error) {
    setNotice('Could not ' + action + ': ' + error.message, true);
  }
  await load();
}

function renderWindows(state) {
  table('windows', [
    { label: 'Window' }, { label: 'Limit', num: true }, { label: 'Spent', num: true },
    { label: 'Held', num: true }, { label: 'Left', num: true },
  ], state.windows.map((w) => [
    WINDOW_NAMES[w.window], w.limitMsat === null ? 'no limit' : sat(w.limitMsat), sat(w.spentMsat),
    sat(w.heldMsat), w.remainingMsat === null ? '—' : sat(w.remainingMsat),
  ]), 'No budget windows.');
}

function renderTotals(spend) {
  $('net').textContent = sat(sum(spend.groups, 'netMsat').toString());
  $('paid').textContent = sat(sum(spend.groups, 'paidMsat').toString());
  $('refunded').textContent = sat(sum(spend.groups, 'refundedMsat').toString());
  $('charged').textContent = sat(sum(spend.groups, 'chargedMsat').toString());
  const range = spend.bucket === 'hour' ? 'last 24 hours' : 'last 30 days';
  for (const node of document.querySelectorAll('.range')) node.textContent = range;
}

function renderChart(spend) {
  const bars = spend.buckets.map((b, i) => {
    const net = sum(b.rows, 'netMsat');
    const label = bucketLabel(b.start, spend.bucket);
    return {
      msat: net,
      title: label + ': ' + sat(net.toString()) + ' net',
      label: i % 6 === 0 || i === spend.buckets.length - 1 ? label : '',
    };
  });
  const max = barChart('chart', bars, 'Net spend per ' + spend.bucket + ', in sat');
  $('chart-empty').hidden = max !== 0n;
}

function renderGroups(spend, by) {
  table('spend-groups', [
    { label: by }, { label: 'Paid', num: true }, { label: 'Fees', num: true },
    { label: 'Refunded', num: true }, { label: 'Net', num: true }, { label: 'Calls', num: true },
    { label: 'Charged', num: true }, { label: 'Unsettled', num: true }, { label: 'Released', num: true },
  ], spend.groups.map((g) => [
    keyText(g.key), sat(g.paidMsat) + ' (' + g.purchases + ')', sat(g.feeMsat), sat(g.refundedMsat),
    sat(g.netMsat), String(g.calls), sat(g.chargedMsat), sat(g.unsettledMsat), String(g.released),
  ]), 'Nothing spent or charged in this range.');
}

function renderBuckets(spend) {
  const keys = spend.groups.map((g) => g.key);
  const rows = spend.buckets.filter((b) => b.rows.length > 0).reverse().map((b) => {
    const byKey = new Map(b.rows.map((row) => [row.key, row]));
    return [when(b.start)].concat(keys.map((key) => {
      const row = byKey.get(key);
      return row === undefined ? '—' : sat(row.netMsat);
    }));
  });
  table('spend-buckets', [{ label: spend.bucket === 'hour' ? 'Hour from' : 'Day from' }]
    .concat(keys.map((key) => ({ label: keyText(key), num: true }))), rows,
    'Nothing spent or charged in this range.');
}

function renderEntries(entries) {
  table('entries', [
    { label: 'Time' }, { label: 'Kind' }, { label: 'Status' }, { label: 'Origin' }, { label: 'Path' },
    { label: 'Protocol' }, { label: 'Amount', num: true }, { label: 'Fee', num: true },
    { label: 'Agent' }, { label: 'Task' }, { label: 'Model' }, { label: 'Account' },
  ], entries.map((e) => [
    when(e.time), e.kind, e.status, e.origin, new URL(e.url).pathname, e.protocol,
    sat(e.amountMsat), sat(e.feeMsat), e.tags.agent || '—', e.tags.task || '—', e.tags.model || '—',
    e.account ? shortHex(e.account) : '—',
  ]), 'No payments yet.');
}

let loading = false;
let again = false;
/** Reads the API and shows it; a load asked for while one runs runs after it (a new choice). */
async function load() {
  if (loading) {
    again = true;
    return;
  }
  loading = true;
  const by = $('by').value;
  const bucket = $('bucket').value;
  const query = '?by=' + encodeURIComponent(by) + '&bucket=' + encodeURIComponent(bucket);
  try {
    const [state, spend, entries] = await Promise.all([
      api('GET', '/budget'),
      api('GET', '/spend' + query),
      api('GET', '/entries?limit=50'),
    ]);
    renderPause(state);
    renderWindows(state);
    renderTotals(spend);
    renderChart(spend);
    renderGroups(spend, by);
    renderBuckets(spend);
    renderEntries(entries.entries);
    setStatus('Updated ' + new Date().toLocaleTimeString('en-GB') + ' · refreshes every 5 seconds', false);
    document.body.dataset.state = 'ready';
    document.body.dataset.view = by + '/' + bucket;
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    loading = false;
    if (again) {
      again = false;
      load();
    }
  }
}

$('pause-button').addEventListener('click', togglePause);
$('by').addEventListener('change', load);
$('bucket').addEventListener('change', load);
load();
setInterval(load, REFRESH_MS);
`;

/**
 * The ledger view's HTML document.
 *
 * @example
 * ```ts
 * res.end(renderLedgerPage({ nonce, budget: 'agent' }));
 * ```
 */
export function renderLedgerPage(options: LedgerPageOptions): string {
  const budget = escapeHtml(options.budget);
  return renderPage({
    title: 'Tollway agent ledger',
    nonce: options.nonce,
    style: STYLE,
    body: `<main>
  <header>
    <h1>Tollway agent ledger</h1>
    <span id="status" role="status" aria-live="polite">Loading…</span>
  </header>

  <section class="panel switch" id="switch" aria-label="Kill switch">
    <span class="tag" id="pause-state">…</span>
    <span id="pause-text"></span>
    <button type="button" class="kill" id="pause-button" disabled>…</button>
  </section>
  <p id="notice" role="status" aria-live="polite"></p>

  <h2>Budget left <small>rolling windows of budget <code>${budget}</code>, as tollway fetch and tollway mcp count them</small></h2>
  <div class="panel" id="windows"></div>

  <h2>Spend over time <small class="range">last 24 hours</small></h2>
  <div class="controls">
    <label>Grouped by <select id="by">
      <option value="origin">origin</option><option value="agent">agent</option>
      <option value="task">task</option><option value="model">model</option>
    </select></label>
    <label>Per <select id="bucket">
      <option value="hour">hour (last 24 hours)</option><option value="day">day (last 30 days)</option>
    </select></label>
  </div>
  <section class="cards" aria-label="Totals">
    <div class="card"><div class="label">Net spend</div><div class="value" id="net">…</div><div class="note">paid + fees − refunded, <span class="range">last 24 hours</span></div></div>
    <div class="card"><div class="label">Paid</div><div class="value" id="paid">…</div><div class="note">purchases: tokens, balances, deposits</div></div>
    <div class="card"><div class="label">Refunded</div><div class="value" id="refunded">…</div><div class="note">what closed sessions paid back</div></div>
    <div class="card"><div class="label">Charged</div><div class="value" id="charged">…</div><div class="note">what calls drew, as receipts said</div></div>
  </section>
  <div class="panel"><div class="chart" id="chart"></div><p class="empty" id="chart-empty" hidden>Nothing spent in this range.</p></div>
  <h2>By group <small class="range">last 24 hours</small></h2>
  <div class="panel" id="spend-groups"></div>
  <h2>Net spend per period and group</h2>
  <div class="panel" id="spend-buckets"></div>

  <h2>Recent payments and refunds <small>the ledger's newest 50 entries: purchases, draws, releases, refunds</small></h2>
  <div class="panel" id="entries"></div>

  <footer>Tollway · the agent's ledger, read from its SQLite file · amounts in sat (1 sat = 1000 msat); times in UTC buckets</footer>
</main>`,
    config: {
      apiBase: '/api',
      signIn:
        'Not signed in (or the view restarted with a new token): open the link tollway ledger --serve printed.',
    },
    script: SCRIPT,
  });
}
