/**
 * What Tollway's local pages (the gateway dashboard, the agent's ledger view) share: the response
 * that serves one under a strict Content-Security-Policy, the JSON answers of its API, the HTML shell, the style, and the
 * helpers of the page script (elements, amounts in sat, tables, a bar chart, the JSON API). A page
 * is one self-contained document: inline CSS and script, no build step, no CDN, no framework.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What a page is made of. */
export interface PageParts {
  title: string;
  /** Nonce of the inline style and scripts (the CSP allows nothing else). */
  nonce: string;
  /** Style of this page, after the shared one. */
  style: string;
  /** The body's HTML (trusted: written by us, values escaped with {@link escapeHtml}). */
  body: string;
  /** What the script reads as `config` (JSON in the page); `apiBase` and `signIn` are required. */
  config: { apiBase: string; signIn: string } & Record<string, unknown>;
  /** The page's own script, run after the shared helpers. */
  script: string;
}

/**
 * Text for HTML element content and attribute values.
 *
 * @example
 * ```ts
 * escapeHtml('<b>'); // '&#60;b&#62;'
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
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
.chart { padding: 12px 12px 4px; }
.chart svg { width: 100%; height: auto; display: block; }
.chart .axis { fill: var(--muted); font-size: 11px; }
.chart .grid { stroke: var(--line); }
.chart .bar { fill: var(--bar); }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; background: #f9fafb; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:last-child td { border-bottom: none; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.empty { color: var(--muted); padding: 14px 12px; }
.tag { display: inline-block; padding: 0 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  background: #e8eef9; color: #1d4ed8; }
footer { color: var(--muted); font-size: 13px; margin-top: 32px; }
`;

// The shared part of the page script: plain ES2020, no template literals (this file wraps it in one).
const HELPERS = `
'use strict';
const config = JSON.parse(document.getElementById('tollway-config').textContent);
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

/** Millisatoshis (a decimal string or a bigint) as satoshis: "1,234 sat", "2.5 sat", "-15 sat". */
function sat(msat) {
  const value = BigInt(msat);
  const size = value < 0n ? -value : value;
  const whole = size / 1000n;
  const fraction = (size % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return (value < 0n ? '-' : '') + group.format(whole) + (fraction ? '.' + fraction : '') + ' sat';
}

function when(ms) {
  return new Date(ms).toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' });
}

function shortHex(hex) {
  return el('code', { text: hex.length > 16 ? hex.slice(0, 10) + '…' + hex.slice(-4) : hex, title: hex });
}

/** Calls the page's JSON API on its own origin with the session cookie; a JSON body when given. */
async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(config.apiBase + path, {
    method,
    credentials: 'same-origin',
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new Error(config.signIn);
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

/** The outcome of the last action, kept until the next one. */
function setNotice(text, isError) {
  const notice = $('notice');
  notice.textContent = text;
  notice.className = isError ? 'error' : '';
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

/**
 * Bars of msat amounts, one per bucket ({ msat: BigInt, title, label }), into the element 'id':
 * a label under every bucket that has one, the bar's title on hover; returns the largest amount.
 */
function barChart(id, buckets, ariaLabel) {
  const width = 720;
  const height = 200;
  const left = 64;
  const bottom = 24;
  const top = 12;
  const plotHeight = height - bottom - top;
  const maxMsat = buckets.reduce((max, b) => (b.msat > max ? b.msat : max), 0n);
  const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': ariaLabel });
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
      bar.append(svg('title', {}, bucket.title));
      chart.append(bar);
    }
    if (bucket.label) {
      const last = i === buckets.length - 1;
      chart.append(svg('text', { class: 'axis', x: last ? width : x + slot / 2, y: height - 6,
        'text-anchor': last ? 'end' : 'middle' }, bucket.label));
    }
  });
  $(id).replaceChildren(chart);
  return maxMsat;
}
`;

/**
 * The HTML document of a page: the shared style and script helpers, then the page's own.
 *
 * @example
 * ```ts
 * res.end(renderPage({ title: 'Ledger', nonce, style: '', body: '<main>…</main>', config, script }));
 * ```
 */
export function renderPage(parts: PageParts): string {
  const { nonce } = parts;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(parts.title)}</title>
<style nonce="${nonce}">${STYLE}${parts.style}</style>
</head>
<body>
${parts.body}
<script type="application/json" id="tollway-config">${scriptJson(parts.config)}</script>
<script nonce="${nonce}">${HELPERS}${parts.script}</script>
</body>
</html>
`;
}

/**
 * Writes a page made by `render` (given a fresh nonce) under a strict Content-Security-Policy:
 * its own inline style and script (by nonce), and requests to its own origin only.
 *
 * @example
 * ```ts
 * sendPage(req, res, (nonce) => renderPage({ ...parts, nonce }));
 * ```
 */
export function sendPage(
  req: IncomingMessage,
  res: ServerResponse,
  render: (nonce: string) => string,
): void {
  const nonce = randomBytes(18).toString('base64');
  const body = render(nonce);
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'content-security-policy': [
      "default-src 'none'",
      `script-src 'nonce-${nonce}'`,
      `style-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "img-src 'self' data:",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; '),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Answers `value` as JSON (bigints as decimal strings), never cached: what a page's API returns.
 *
 * @example
 * ```ts
 * sendJson(res, 200, { paused: true });
 * ```
 */
export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, (_key, item) =>
    typeof item === 'bigint' ? item.toString() : item,
  );
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
