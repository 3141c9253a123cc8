/**
 * x402 messages captured from real runs of the x402 TypeScript SDK 2.27 (a 402 from @x402/express,
 * a payment from @x402/fetch on a local chain) and the v1 example of the x402 v1 specification.
 * Test data only.
 */

/** A `PAYMENT-REQUIRED` header value sent by @x402/express 2.27 on eip155:31337. */
export const PAYMENT_REQUIRED_HEADER =
  'eyJ4NDAyVmVyc2lvbiI6MiwiZXJyb3IiOiJQYXltZW50IHJlcXVpcmVkIiwicmVzb3VyY2UiOnsidXJsIjoiaHR0cDovLzEyNy4wLjAuMTo0NTU1L3BhaWQiLCJkZXNjcmlwdGlvbiI6ImxvY2FsIHRlc3QiLCJtaW1lVHlwZSI6IiJ9LCJhY2NlcHRzIjpbeyJzY2hlbWUiOiJleGFjdCIsIm5ldHdvcmsiOiJlaXAxNTU6MzEzMzciLCJhbW91bnQiOiIxMDAwMCIsImFzc2V0IjoiMHg1RmJEQjIzMTU2NzhhZmVjYjM2N2YwMzJkOTNGNjQyZjY0MTgwYWEzIiwicGF5VG8iOiIweDNDNDRDZERkQjZhOTAwZmEyYjU4NWRkMjk5ZTAzZDEyRkE0MjkzQkMiLCJtYXhUaW1lb3V0U2Vjb25kcyI6NjAsImV4dHJhIjp7Im5hbWUiOiJVU0QgQ29pbiIsInZlcnNpb24iOiIyIn19XX0=';

/** The JSON of a `PAYMENT-SIGNATURE` header sent by @x402/fetch 2.27. */
export const PAYMENT_SIGNATURE_JSON = {
  x402Version: 2,
  payload: {
    authorization: {
      from: '0xe431cA76aFFaEe665084E981331f6baada998331',
      to: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
      value: '10000',
      validAfter: '0',
      validBefore: '1795557423',
      nonce: '0xae40ae135ef80ad9f51b27a182efd5abb4669416384967009145e356a8dd212d',
    },
    signature:
      '0x43da1fa63cc7ac65f663439d302474c0f2f41d7ae774d8cdbbd336e74263f324257290fa37922f7d1a0904ceae01f09c05d90a04af60c2dea6924ff47733884e1c',
  },
  resource: {
    url: 'http://127.0.0.1:14021/weather',
    description: 'Weather report',
    mimeType: 'application/json',
  },
  accepted: {
    scheme: 'exact',
    network: 'eip155:31337',
    amount: '10000',
    asset: '0x5fbdb2315678afecb367f032d93f642f64180aa3',
    payTo: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
    maxTimeoutSeconds: 60,
    extra: { name: 'USD Coin', version: '2' },
  },
};

/** The 402 body of the x402 v1 specification's example. */
export const PAYMENT_REQUIRED_V1_BODY = JSON.stringify({
  x402Version: 1,
  error: 'X-PAYMENT header is required',
  accepts: [
    {
      scheme: 'exact',
      network: 'base-sepolia',
      maxAmountRequired: '10000',
      asset: '0x036CbD53842c5426634e7929541eC2318f3dCF7e',
      payTo: '0x209693Bc6afc0C5328bA36FaF03C514EF312287C',
      resource: 'https://api.example.com/premium-data',
      description: 'Access to premium market data',
      mimeType: 'application/json',
      outputSchema: null,
      maxTimeoutSeconds: 60,
      extra: { name: 'USDC', version: '2' },
    },
  ],
});
