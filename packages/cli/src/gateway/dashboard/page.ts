/**
 * The dashboard page: one self-contained HTML document (inline CSS and script, no build step, no
 * CDN) that reads the gateway's admin JSON API from the same origin with the session cookie, and
 * shows revenue (total and per hour), recent payments, metered LLM usage by model (tokens and what
 * the calls were charged), services and prices, what services in shadow mode would have charged,
 * and tokens with a revoke button. Internal to the dashboard handler.
 */

/** What the page needs to know when it is served. */
export interface DashboardPageOptions {
  /** Where the admin API lives, e.g. `/_tollway`. */
  apiBase: string;
  /** The backend is the dev Lightning node: show the SANDBOX banner. */
  sandbox: boolean;
  /** Nonce of the inline style and script (the page's CSP allows nothing else). */
  nonce: string;
  /** The gateway's version, shown in the footer. */
  version: string;
}

/** JSON safe to put inside a `<script>` element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026');
}

const STYLE = `
:root { color-scheme: light; --ink: #1c2430; --muted: #5a6675; --line: #dde3ea; --card: #fff;
  --bg: #f4f6f9; --accent: #2f6fde; --bar: #3b82f6; --danger: #b42318; --ok: #137a3f; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); background: var(--bg); }
.sandbox { background: repeating-linear-gradient(135deg, #ffd43b 0 18px, #fcc419 18px 36px);
  color: #1c1c1c; padding: 10px 24px; font-size: 15px; border-bottom: 2px solid #e0a800; }
.sandbox strong { letter-spacing: .08em; margin-right: .5em; }
main { max-width: 1120px; margin: 0 auto; padding: 20px 24px 48px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; }
h1 { font-size: 24px; margin: 8px 0 0; }
h2 { font-size: 18px; margin: 32px 0 10px; }
h2 small { font-weight: normal; color: var(--muted); font-size: 14px; }
#status { color: var(--muted); font-size: 14px; }
#status.error, #notice.error { color: var(--danger); font-weight: 600; }
#notice { margin: -4px 0 10px; color: var(--ok); font-weight: 600; }
#notice:empty { display: none; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px;
  margin-top: 16px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card .label { color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 26px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
.card .note { color: var(--muted); font-size: 13px; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow-x: auto; }
#chart { padding: 12px 12px 4px; }
#chart svg { width: 100%; height: auto; display: block; }
#chart .axis { fill: var(--muted); font-size: 11px; }
#chart .grid { stroke: var(--line); }
#chart .bar { fill: var(--bar); }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; background: #f9fafb; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: none; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.empty { color: var(--muted); padding: 14px 12px; }
.tag { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  background: #e8eef9; color: #1d4ed8; }
.tag.revoked { background: #fde8e7; color: var(--danger); }
.tag.expired, .tag.used-up { background: #eceff3; color: var(--muted); }
.tag.active { background: #e3f4ea; color: var(--ok); }
button.revoke { font: inherit; font-size: 13px; color: var(--danger); background: #fff;
  border: 1px solid #f1b5b0; border-radius: 6px; padding: 2px 10px; cursor: pointer; }
button.revoke:hover { background: #fde8e7; }
footer { color: var(--muted); font-size: 13px; margin-top: 32px; }
`;

// The page script: plain ES2020, no template literals (this file wraps it in one).
const SCRIPT = `
'use strict';
const config = JSON.parse(document.getElementById('tollway-config').textContent);
const HOUR = 3600 * 1000;
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

function el(tag, props, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === 'text') node.textContent = value;
    else if (key === 'className') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children || []) node.append(child);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const group = new Intl.NumberFormat('en-US');

/** Millisatoshis (a decimal string) as satoshis: "1,234 sat", "2.5 sat". */
function sat(msat) {
  const value = BigInt(msat);
  const whole = value / 1000n;
  const fraction = (value % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return group.format(whole) + (fraction ? '.' + fraction : '') + ' sat';
}

function amount(value, unit) {
  return unit === 'msat' ? sat(value) : value + ' ' + unit;
}

function when(ms) {
  return new Date(ms).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

function shortHex(hex) {
  return el('code', { text: hex.length > 16 ? hex.slice(0, 10) + '…' + hex.slice(-4) : hex, title: hex });
}

async function api(method, path) {
  const response = await fetch(config.apiBase + path, {
    method,
    credentials: 'same-origin',
    headers: { accept: 'application/json' },
  });
  if (response.status === 401) {
    throw new Error('Not signed in (or the admin token changed): open the dashboard link with ?token= again.');
  }
  if (!response.ok) {
    let detail = '';
    try { detail = (await response.json()).detail || ''; } catch (error) { detail = ''; }
    throw new Error(method + ' ' + path + ' answered ' + response.status + (detail ? ': ' + detail : ''));
  }
  return response.status === 204 ? undefined : response.json();
}

function setStatus(text, isError) {
  const status = $('status');
  status.textContent = text;
  status.className = isError ? 'error' : '';
}

/** The outcome of the last action (a revocation), kept until the next one. */
function setNotice(text, isError) {
  const notice = $('notice');
  notice.textContent = text;
  notice.className = isError ? 'error' : '';
}

function sumMsat(rows) {
  let total = 0n;
  let count = 0;
  for (const row of rows) {
    if (row.unit !== 'msat') continue;
    total += BigInt(row.amount);
    count += row.count;
  }
  return { total, count };
}

function renderTotals(allTime, lastDay, tokens) {
  const all = sumMsat(allTime.totals);
  const day = sumMsat(lastDay.rows);
  const others = allTime.totals.filter((row) => row.unit !== 'msat');
  $('revenue-total').textContent = sat(all.total.toString());
  $('revenue-other').textContent = others.length === 0
    ? 'Lightning payments, all time'
    : 'Lightning; also ' + others.map((row) => amount(row.amount, row.unit)).join(', ');
  $('revenue-day').textContent = sat(day.total.toString());
  $('payments-count').textContent = group.format(all.count);
  const active = tokens.filter((token) => tokenState(token) === 'active').length;
  $('tokens-active').textContent = group.format(active);
}

function renderChart(lastDay, now) {
  const start = Math.floor(now / HOUR) * HOUR - 23 * HOUR;
  const buckets = Array.from({ length: 24 }, (_, i) => ({ at: start + i * HOUR, msat: 0n, count: 0 }));
  for (const row of lastDay.rows) {
    const index = Math.floor((row.bucket - start) / HOUR);
    const bucket = buckets[index];
    if (bucket === undefined || row.unit !== 'msat') continue;
    bucket.msat += BigInt(row.amount);
    bucket.count += row.count;
  }
  const width = 720;
  const height = 200;
  const left = 64;
  const bottom = 24;
  const top = 12;
  const plotHeight = height - bottom - top;
  const maxMsat = buckets.reduce((max, b) => (b.msat > max ? b.msat : max), 0n);
  const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img',
    'aria-label': 'Revenue per hour over the last 24 hours, in sat' });
  chart.append(svg('line', { class: 'grid', x1: left, x2: width, y1: top, y2: top }));
  chart.append(svg('line', { class: 'grid', x1: left, x2: width, y1: top + plotHeight, y2: top + plotHeight }));
  chart.append(svg('text', { class: 'axis', x: left - 6, y: top + 4, 'text-anchor': 'end' },
    maxMsat === 0n ? '—' : sat(maxMsat.toString())));
  chart.append(svg('text', { class: 'axis', x: left - 6, y: top + plotHeight + 4, 'text-anchor': 'end' }, '0 sat'));
  const slot = (width - left) / buckets.length;
  buckets.forEach((bucket, i) => {
    const x = left + i * slot;
    if (bucket.msat > 0n) {
      const barHeight = Math.max(2, Math.round((Number(bucket.msat) / Number(maxMsat)) * plotHeight));
      const bar = svg('rect', { class: 'bar', x: x + 3, width: slot - 6, y: top + plotHeight - barHeight,
        height: barHeight, rx: 2 });
      const hour = new Date(bucket.at).toTimeString().slice(0, 5);
      bar.append(svg('title', {}, hour + ': ' + sat(bucket.msat.toString()) + ' from ' + bucket.count +
        (bucket.count === 1 ? ' payment' : ' payments')));
      chart.append(bar);
    }
    if (i % 6 === 0 || i === buckets.length - 1) {
      const last = i === buckets.length - 1;
      chart.append(svg('text', { class: 'axis', x: last ? width : x + slot / 2, y: height - 6,
        'text-anchor': last ? 'end' : 'middle' }, last ? 'this hour' : new Date(bucket.at).toTimeString().slice(0, 5)));
    }
  });
  $('chart').replaceChildren(chart);
  $('chart-empty').hidden = maxMsat !== 0n;
}

function table(id, headings, rows, emptyText) {
  const target = $(id);
  if (rows.length === 0) {
    target.replaceChildren(el('p', { className: 'empty', text: emptyText }));
    return;
  }
  const head = el('tr', {}, headings.map((h) => el('th', { text: h.label, className: h.num ? 'num' : '' })));
  const body = rows.map((cells) => el('tr', {}, cells.map((cell, i) => {
    const td = el('td', { className: headings[i].num ? 'num' : '' });
    td.append(cell);
    return td;
  })));
  target.replaceChildren(el('table', {}, [el('thead', {}, [head]), el('tbody', {}, body)]));
}

function renderPayments(payments) {
  table('payments', [
    { label: 'Time' }, { label: 'Service' }, { label: 'Protocol' }, { label: 'Amount', num: true },
    { label: 'Payment hash' }, { label: 'Token' },
  ], payments.map((p) => [
    when(p.settledAt), p.service, p.protocol.toUpperCase(), amount(p.amount, p.unit),
    shortHex(p.reference), p.tokenId ? shortHex(p.tokenId) : '—',
  ]), 'No payments yet. Pay for a request and it appears here.');
}

function describePrice(service) {
  const c = service.config;
  if (c.auth === false) return 'free';
  if (c.llm) return describeLlm(c.llm);
  if (c.mcp) {
    const tools = Object.entries(c.mcp.tools).map(([tool, price]) => 'tool ' + tool + ': ' + price);
    return tools.join('; ') + '; other tools: ' + (c.price || 'free') + '; other MCP messages free';
  }
  const parts = [];
  for (const rule of c.pricing || []) {
    const where = [rule.method ? [].concat(rule.method).join('/') : '', rule.path || ''].filter(Boolean).join(' ');
    if (rule.prices && rule.field) {
      for (const [key, value] of Object.entries(rule.prices)) {
        parts.push(rule.field + ' = ' + key + ': ' + value + (where ? ' (' + where + ')' : ''));
      }
    } else if (rule.price) {
      parts.push((where || 'matching requests') + ': ' + rule.price);
    }
  }
  if (parts.length === 0) return c.price + ' per token';
  return parts.join('; ') + '; otherwise ' + c.price;
}

function describeLlm(llm) {
  const models = Object.entries(llm.models).map(([name, m]) =>
    name + ': ' + m.input + ' in, ' + (m.cachedInput ? m.cachedInput + ' cached, ' : '') + m.output + ' out');
  if (llm.defaultPrices) models.push('other models: ' + llm.defaultPrices.input + ' in, ' + llm.defaultPrices.output + ' out');
  return 'per million tokens, ' + models.join('; ');
}

function describeGrant(c) {
  if (c.auth === false) return 'no payment needed';
  const parts = [];
  if (c.balance) parts.push('a prepaid balance of ' + c.balance);
  if (c.uses) parts.push(c.uses + (c.uses === 1 ? ' request' : ' requests'));
  const validFor = typeof c.validFor === 'number' ? c.validFor + ' s' : c.validFor;
  parts.push(validFor ? 'valid for ' + validFor : 'no expiry');
  return parts.join(', ');
}

function renderServices(services) {
  table('services', [
    { label: 'Service' }, { label: 'Path' }, { label: 'Price' }, { label: 'A payment buys' },
  ], services.map((s) => [
    s.name, el('code', { text: s.config.path }),
    describePrice(s) + (s.config.shadow ? ' (shadow mode: not charged)' : ''),
    describeGrant(s.config),
  ]), 'No services configured.');
}

function renderModels(models) {
  table('models', [
    { label: 'Service' }, { label: 'Model' }, { label: 'Calls', num: true },
    { label: 'Tokens in', num: true }, { label: 'Cached in', num: true },
    { label: 'Tokens out', num: true }, { label: 'Charged', num: true },
  ], models.map((m) => [
    m.service, el('code', { text: m.model }), group.format(m.calls),
    group.format(BigInt(m.inputTokens)), group.format(BigInt(m.cachedInputTokens)),
    group.format(BigInt(m.outputTokens)), sat(m.chargedMsat),
  ]), 'No metered LLM calls on this gateway instance since it started.');
}

function renderShadow(totals, services) {
  const byName = new Map(totals.map((t) => [t.service, t]));
  const names = services.filter((s) => s.config.shadow).map((s) => s.name);
  for (const t of totals) if (!names.includes(t.service)) names.push(t.service);
  table('shadow', [
    { label: 'Service' }, { label: 'Passed unpaid', num: true },
    { label: 'Would have charged', num: true },
  ], names.map((name) => {
    const t = byName.get(name) || { requests: 0, wouldChargeMsat: '0' };
    return [name, String(t.requests), amount(t.wouldChargeMsat, 'msat')];
  }), 'No service is in shadow mode.');
}

function tokenState(token) {
  if (token.revoked) return 'revoked';
  if (token.expiresAt && token.expiresAt <= Date.now()) return 'expired';
  if (token.maxUses && token.uses >= token.maxUses) return 'used up';
  return 'active';
}

async function revoke(token) {
  const id = token.tokenId;
  if (!window.confirm('Revoke token ' + id.slice(0, 10) + '… of ' + token.service +
    '? Requests carrying it will be refused from now on.')) return;
  try {
    await api('DELETE', '/tokens/' + id + '?reason=' + encodeURIComponent('revoked from the dashboard'));
    setNotice('Token ' + id.slice(0, 10) + '… of ' + token.service + ' revoked.', false);
  } catch (error) {
    setNotice('Could not revoke: ' + error.message, true);
    return;
  }
  await load();
}

function renderTokens(tokens) {
  table('tokens', [
    { label: 'Token' }, { label: 'Service' }, { label: 'Bought' }, { label: 'Expires' },
    { label: 'Uses' }, { label: 'Status' }, { label: '' },
  ], tokens.map((t) => {
    const state = tokenState(t);
    const action = state === 'revoked'
      ? ''
      : el('button', { className: 'revoke', type: 'button', text: 'Revoke',
          'aria-label': 'Revoke token ' + t.tokenId.slice(0, 10) });
    if (action) action.addEventListener('click', () => revoke(t));
    const used = t.maxUses ? t.uses + ' of ' + t.maxUses + ' used' : 'unlimited';
    return [shortHex(t.tokenId), t.service, when(t.createdAt), t.expiresAt ? when(t.expiresAt) : 'never',
      t.initialBalanceMsat ? sat(t.spentMsat) + ' of ' + sat(t.initialBalanceMsat) + ' spent' : used,
      el('span', { className: 'tag ' + state.replace(' ', '-'), text: state }), action];
  }), 'No tokens yet. A token is minted each time someone pays.');
}

let loading = false;
async function load() {
  if (loading) return;
  loading = true;
  const now = Date.now();
  try {
    const [allTime, lastDay, payments, services, tokens, models, shadow] = await Promise.all([
      api('GET', '/revenue?bucket=day'),
      api('GET', '/revenue?bucket=hour&since=' + (Math.floor(now / HOUR) * HOUR - 23 * HOUR)),
      api('GET', '/payments?limit=20'),
      api('GET', '/services'),
      api('GET', '/tokens?limit=100'),
      api('GET', '/models'),
      api('GET', '/shadow'),
    ]);
    renderTotals(allTime, lastDay, tokens.tokens);
    renderChart(lastDay, now);
    renderPayments(payments.payments);
    renderServices(services.services);
    renderModels(models.models);
    renderShadow(shadow.services, services.services);
    renderTokens(tokens.tokens);
    setStatus('Updated ' + new Date(now).toLocaleTimeString('en-GB') + ' · refreshes every 5 seconds', false);
    document.body.dataset.state = 'ready';
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    loading = false;
  }
}

load();
setInterval(load, REFRESH_MS);
`;

/**
 * The dashboard HTML document.
 *
 * @example
 * ```ts
 * res.end(renderDashboardPage({ apiBase: '/_tollway', sandbox: true, nonce, version: '0.1.0' }));
 * ```
 */
export function renderDashboardPage(options: DashboardPageOptions): string {
  const { nonce } = options;
  const banner = options.sandbox
    ? `<div class="sandbox" role="note"><strong>SANDBOX</strong>This gateway is paid through the dev Lightning node: every amount below is play money, not real bitcoin.</div>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${options.sandbox ? 'SANDBOX · ' : ''}Tollway gateway dashboard</title>
<style nonce="${nonce}">${STYLE}</style>
</head>
<body>
${banner}
<main>
  <header>
    <h1>Tollway gateway</h1>
    <span id="status" role="status" aria-live="polite">Loading…</span>
  </header>

  <section class="cards" aria-label="Totals">
    <div class="card"><div class="label">Revenue, all time</div><div class="value" id="revenue-total">…</div><div class="note" id="revenue-other"></div></div>
    <div class="card"><div class="label">Revenue, last 24 hours</div><div class="value" id="revenue-day">…</div><div class="note">since this hour yesterday</div></div>
    <div class="card"><div class="label">Payments, all time</div><div class="value" id="payments-count">…</div><div class="note">settled, counted once each</div></div>
    <div class="card"><div class="label">Active tokens</div><div class="value" id="tokens-active">…</div><div class="note">not revoked, not expired</div></div>
  </section>

  <h2>Revenue per hour <small>last 24 hours, in sat</small></h2>
  <div class="panel"><div id="chart"></div><p class="empty" id="chart-empty" hidden>No revenue in the last 24 hours.</p></div>

  <h2>Recent payments <small>newest first</small></h2>
  <div class="panel" id="payments"></div>

  <h2>LLM usage by model <small>metered calls on this instance since it started; balances are bought above</small></h2>
  <div class="panel" id="models"></div>

  <h2>Services and prices</h2>
  <div class="panel" id="services"></div>

  <h2>Shadow mode <small>requests let through unpaid by this instance since it started, and what they would have cost</small></h2>
  <div class="panel" id="shadow"></div>

  <h2>Tokens <small>what buyers hold; revoking refuses a token at once</small></h2>
  <p id="notice" role="status" aria-live="polite"></p>
  <div class="panel" id="tokens"></div>

  <footer>Tollway ${escapeHtml(options.version)} · data from the admin API at <code>${escapeHtml(options.apiBase)}</code> · amounts in sat (1 sat = 1000 msat)</footer>
</main>
<script type="application/json" id="tollway-config">${scriptJson({ apiBase: options.apiBase })}</script>
<script nonce="${nonce}">${SCRIPT}</script>
</body>
</html>
`;
}

/** Text for HTML element content and attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
