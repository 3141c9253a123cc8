// Pays for one request to a running example by hand, to show the L402 exchange: GET the URL, pay
// the invoice of its 402 with the wallet TOLLWAY_WALLET names, retry with the credential, print the
// status and the answer. (`npx tollway fetch <url>` does all of this, and more, for you.)
//
//   TOLLWAY_WALLET='dev+http://127.0.0.1:8403?wallet=you&token=…' node examples/pay.js http://127.0.0.1:3000/forecast
//
// `npx tollway dev node` prints such a TOLLWAY_WALLET, on the dev node the examples' invoices come from.
import { formatL402Credential, parseL402Challenges, parseMacaroon } from '@tollway/sdk/l402';
import { connectLightning } from '@tollway/sdk/lightning';

const url = process.argv[2] ?? 'http://127.0.0.1:3000/forecast';
const unpaid = await fetch(url);
if (unpaid.status !== 402) {
  console.error(`expected 402 Payment Required, got ${unpaid.status}`);
  process.exit(1);
}
const [offer] = parseL402Challenges(unpaid.headers.get('www-authenticate') ?? '');

if (!process.env.TOLLWAY_WALLET) {
  console.error('Set TOLLWAY_WALLET: run `npx tollway dev node` and copy the line it prints.');
  process.exit(64);
}
const wallet = await connectLightning(process.env.TOLLWAY_WALLET);
const paid = await wallet.payInvoice({ paymentRequest: offer.invoice });
await wallet.close();
console.error(`paid ${offer.invoice.slice(0, 24)}…, preimage ${paid.preimage}`);

const authorization = formatL402Credential({
  macaroons: [parseMacaroon(offer.macaroon)],
  preimage: Buffer.from(paid.preimage, 'hex'),
});
const response = await fetch(url, { headers: { authorization } });
console.log(response.status, await response.text());
process.exitCode = response.ok ? 0 : 1;
