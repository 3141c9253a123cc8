// Pays for one request to a running example with the embedded dev Lightning node (play money):
// GET the URL, pay the L402 invoice of its 402 from the dev wallet "agent" (created and funded on
// first use), retry with the credential, print the status and the answer.
//
//   node examples/pay.js http://127.0.0.1:3000/forecast
//
// Run it with the same TOLLWAY_DIR as the example (default .tollway): both open the dev network's
// SQLite file there, so the agent pays the example's own dev node.
import { formatL402Credential, parseL402Challenges, parseMacaroon } from '@tollway/sdk/l402';
import { createDevNetwork } from '@tollway/sdk/lightning/dev';

const url = process.argv[2] ?? 'http://127.0.0.1:3000/forecast';
const unpaid = await fetch(url);
if (unpaid.status !== 402) {
  console.error(`expected 402 Payment Required, got ${unpaid.status}`);
  process.exit(1);
}
const [offer] = parseL402Challenges(unpaid.headers.get('www-authenticate') ?? '');

const network = createDevNetwork({
  path: `${process.env.TOLLWAY_DIR ?? '.tollway'}/dev-lightning.sqlite`,
});
network.openWallet('agent');
const paid = await network.backend('agent').payInvoice({ paymentRequest: offer.invoice });
await network.close();
console.error(`paid ${offer.invoice.slice(0, 24)}…, preimage ${paid.preimage}`);

const authorization = formatL402Credential({
  macaroons: [parseMacaroon(offer.macaroon)],
  preimage: Buffer.from(paid.preimage, 'hex'),
});
const response = await fetch(url, { headers: { authorization } });
console.log(response.status, await response.text());
process.exitCode = response.ok ? 0 : 1;
