/**
 * The dashboard page: one self-contained HTML document (the shared page kit: inline CSS and
 * script, no build step, no CDN) that reads the gateway's admin JSON API from the same origin with the session cookie, and
 * shows revenue (total and per hour), recent payments, metered LLM usage by model (tokens and what
 * the calls were charged), services and prices, what services in shadow mode would have charged,
 * and tokens with a revoke button. Internal to the dashboard handler.
 */

import { escapeHtml, renderPage } from '../../page/kit.js';

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

const STYLE = `
.sandbox { background: repeating-linear-gradient(135deg, #ffd43b 0 18px, #fcc419 18px 36px);
  color: #1c1c1c; padding: 10px 24px; font-size: 15px; border-bottom: 2px solid #e0a800; }
.sandbox strong { letter-spacing: .08em; margin-right: .5em; }
.tag.revoked { background: #fde8e7; color: var(--danger); }
.tag.expired, .tag.used-up { background: #eceff3; color: var(--muted); }
.tag.active { background: #e3f4ea; color: var(--ok); }
button.revoke { font: inherit; font-size: 13px; color: var(--danger); background: #fff;
  border: 1px solid #f1b5b0; border-radius: 6px; padding: 2px 10px; cursor: pointer; }
button.revoke:hover { background: #fde8e7; }
`;

// The page script, after the kit's helpers: plain ES2020, no template literals (this file wraps
// it in one).
const SCRIPT = `
const HOUR = 3600 * 1000;
const REFRESH_MS = 5000;

function amount(value, unit) {
  return unit === 'msat' ? sat(value) : value + ' ' + unit;
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
  const bars = buckets.map((bucket, i) => {
    const hour = new Date(bucket.at).toTimeString().slice(0, 5);
    const last = i === buckets.length - 1;
    return {
      msat: bucket.msat,
      title: hour + ': ' + sat(bucket.msat.toString()) + ' from ' + bucket.count +
        (bucket.count === 1 ? ' payment' : ' payments'),
      label: last ? 'this hour' : i % 6 === 0 ? hour : '',
    };
  });
  const maxMsat = barChart('chart', bars, 'Revenue per hour over the last 24 hours, in sat');
  $('chart-empty').hidden = maxMsat !== 0n;
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
  const banner = options.sandbox
    ? `<div class="sandbox" role="note"><strong>SANDBOX</strong>This gateway is paid through the dev Lightning node: every amount below is play money, not real bitcoin.</div>`
    : '';
  return renderPage({
    title: `${options.sandbox ? 'SANDBOX · ' : ''}Tollway gateway dashboard`,
    nonce: options.nonce,
    style: STYLE,
    body: `${banner}
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
  <div class="panel"><div class="chart" id="chart"></div><p class="empty" id="chart-empty" hidden>No revenue in the last 24 hours.</p></div>

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
</main>`,
    config: {
      apiBase: options.apiBase,
      signIn:
        'Not signed in (or the admin token changed): open the dashboard link with ?token= again.',
    },
    script: SCRIPT,
  });
}
