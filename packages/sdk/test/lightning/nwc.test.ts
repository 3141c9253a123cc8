import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTollwayError, type TollwayErrorCode } from '../../src/errors.js';
import { createNwcBackend, type NwcBackend, type NwcOptions } from '../../src/lightning/nwc.js';
import { wrapBackend } from '../../src/lightning/safe-backend.js';
import { type NostrRelayDouble, startNostrRelay } from '../doubles/nostr-relay.js';
import {
  type NwcWalletDouble,
  type NwcWalletOptions,
  startNwcWallet,
} from '../doubles/nwc-wallet.js';
import { describeBackendSuite } from './backend-suite.js';

const FAST: Partial<NwcOptions> = {
  requestTimeoutMs: 2_000,
  paymentTimeoutMs: 5_000,
  pollIntervalMs: 100,
};

async function codeOf(
  promise: Promise<unknown>,
): Promise<TollwayErrorCode | 'resolved' | 'not_tollway'> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return isTollwayError(error) ? error.code : 'not_tollway';
  }
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Setup {
  relay: NostrRelayDouble;
  wallet: NwcWalletDouble;
  backend: NwcBackend;
  close(): Promise<void>;
}

async function setup(
  walletOptions: Omit<NwcWalletOptions, 'relayUrl'> = {},
  backendOptions: Partial<NwcOptions> = {},
): Promise<Setup> {
  const relay = await startNostrRelay();
  const wallet = await startNwcWallet({ relayUrl: relay.url, ...walletOptions });
  const backend = createNwcBackend({ ...wallet.connection, ...FAST, ...backendOptions });
  return {
    relay,
    wallet,
    backend,
    async close() {
      await backend.close();
      await wallet.close();
      await relay.close();
    },
  };
}

describeBackendSuite('nwc', async () => {
  const { relay, wallet, backend, close } = await setup();
  return {
    backend,
    payIncoming: (paymentRequest, amountMsat) => wallet.payIncoming(paymentRequest, amountMsat),
    createExternalInvoice: (p) => wallet.createExternalInvoice(p),
    timesPaid: async (hash) => wallet.timesPaid(hash),
    setBalance: async (msat) => wallet.setBalance(msat),
    fault(mode) {
      wallet.fault(undefined);
      relay.dropSenderOf(undefined);
      if (mode === 'unauthorized') wallet.fault({ errorCode: 'UNAUTHORIZED' });
      if (mode === 'unavailable') wallet.fault({ errorCode: 'INTERNAL' });
      if (mode === 'garbage') wallet.fault('garbage');
      if (mode === 'wrong_preimage') wallet.fault('wrong_preimage');
      if (mode === 'drop') relay.dropSenderOf((event) => event.kind === 23194);
    },
    close,
  };
});

describe('NWC backend: NIP-47 specifics', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup();
  });
  afterAll(async () => {
    await s.close();
  });

  const paysOf = (wallet: NwcWalletDouble) =>
    wallet.requests.filter((r) => r.method === 'pay_invoice').length;

  it('sends NIP-44 v2 requests with p, expiration and encryption tags when the wallet offers it', async () => {
    const before = Date.now();
    await s.backend.getBalance();
    const request = s.relay.accepted.filter((e) => e.kind === 23194).at(-1);
    expect(request).toBeDefined();
    const tag = (name: string) => request?.tags.find((t) => t[0] === name)?.[1];
    expect(tag('p')).toBe(s.wallet.walletPubkey);
    expect(tag('encryption')).toBe('nip44_v2');
    expect(request?.content).not.toContain('?iv=');
    const expiration = Number(tag('expiration')) * 1000;
    expect(expiration).toBeGreaterThanOrEqual(before + 2_000 - 1_000);
    expect(expiration).toBeLessThanOrEqual(Date.now() + 2_000 + 1_000);
    const reply = s.relay.accepted.filter((e) => e.kind === 23195).at(-1);
    expect(reply?.tags).toContainEqual(['e', request?.id]);
  });

  it('resolves a pay reply that arrives after the timeout by lookup, never by paying again', async () => {
    s.wallet.setBalance(1_000_000n);
    // The reply comes ten times the deadline late, so that a loaded machine still sees the
    // deadline first.
    s.wallet.setPayDelays({ replyMs: 4_000 });
    try {
      const ext = await s.wallet.createExternalInvoice({ amountMsat: 20_000n });
      const started = Date.now();
      const raw = await codeOf(
        s.backend.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 400 }),
      );
      expect(raw).toBe('payment_timeout');
      expect(Date.now() - started).toBeLessThan(4_000);
      const status = await s.backend.lookupPayment(ext.paymentHash);
      expect(status).toMatchObject({
        state: 'succeeded',
        preimage: ext.preimage,
        amountMsat: 20_000n,
      });
      expect(status.feeMsat).toBe(1_000n);

      // Through the safety layer: the timeout is resolved by lookup_invoice, with one payment.
      const ext2 = await s.wallet.createExternalInvoice({ amountMsat: 30_000n });
      const paysBefore = paysOf(s.wallet);
      const ln = wrapBackend(s.backend, { pollIntervalMs: 50 });
      const paid = await ln.payInvoice({ paymentRequest: ext2.paymentRequest, timeoutMs: 400 });
      expect(paid.preimage).toBe(ext2.preimage);
      expect(s.wallet.timesPaid(ext2.paymentHash)).toBe(1);
      expect(paysOf(s.wallet) - paysBefore).toBe(1);
      await new Promise((r) => setTimeout(r, 1_600)); // the late reply lands on a closed subscription
      expect(s.wallet.timesPaid(ext2.paymentHash)).toBe(1);
    } finally {
      s.wallet.setPayDelays({});
    }
  });

  it('reports a payment that is still in flight as pending, then succeeded', async () => {
    s.wallet.setBalance(1_000_000n);
    s.wallet.setPayDelays({ settleMs: 700 });
    try {
      const ext = await s.wallet.createExternalInvoice({ amountMsat: 5_000n });
      expect(
        await codeOf(s.backend.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 200 })),
      ).toBe('payment_timeout');
      expect((await s.backend.lookupPayment(ext.paymentHash)).state).toBe('pending');
      await until(
        async () => (await s.backend.lookupPayment(ext.paymentHash)).state === 'succeeded',
      );
      expect(s.wallet.timesPaid(ext.paymentHash)).toBe(1);
    } finally {
      s.wallet.setPayDelays({});
    }
  });

  it('fails fast with payment_timeout when the relay drops mid-payment, then reconnects', async () => {
    s.wallet.setBalance(1_000_000n);
    s.wallet.setPayDelays({ settleMs: 300 });
    try {
      const ext = await s.wallet.createExternalInvoice({ amountMsat: 6_000n });
      const started = Date.now();
      const paying = codeOf(
        s.backend.payInvoice({ paymentRequest: ext.paymentRequest, timeoutMs: 10_000 }),
      );
      await until(() => s.wallet.requests.some((r) => r.params.invoice === ext.paymentRequest));
      const subscribed = s.wallet.subscriptions();
      s.relay.dropAll();
      expect(await paying).toBe('payment_timeout');
      // Failed on the drop, long before its deadline.
      expect(Date.now() - started).toBeLessThan(8_000);
      await until(() => s.wallet.subscriptions() > subscribed);
      await until(
        async () => (await s.backend.lookupPayment(ext.paymentHash)).state === 'succeeded',
      );
      expect((await s.backend.lookupPayment(ext.paymentHash)).preimage).toBe(ext.preimage);
      expect(s.wallet.timesPaid(ext.paymentHash)).toBe(1);
    } finally {
      s.wallet.setPayDelays({});
    }
  });

  it('keeps waiting for settlement across a relay drop', async () => {
    const created = await s.backend.createInvoice({ amountMsat: 2_000n, memo: 'across a drop' });
    const waiting = s.backend.waitForSettlement(created.paymentHash, { timeoutMs: 8_000 });
    await new Promise((r) => setTimeout(r, 150));
    const subscribed = s.wallet.subscriptions();
    s.relay.dropAll();
    await until(() => s.wallet.subscriptions() > subscribed);
    await s.wallet.payIncoming(created.paymentRequest);
    const status = await waiting;
    expect(status.state).toBe('settled');
    expect(status.amountPaidMsat).toBe(2_000n);
  });

  it('maps every NIP-47 error code to a Tollway code', async () => {
    const table: Array<[string, TollwayErrorCode]> = [
      ['RATE_LIMITED', 'backend_unavailable'],
      ['NOT_IMPLEMENTED', 'capability_unsupported'],
      ['INSUFFICIENT_BALANCE', 'insufficient_balance'],
      ['QUOTA_EXCEEDED', 'quota_exceeded'],
      ['RESTRICTED', 'unauthorized'],
      ['UNAUTHORIZED', 'unauthorized'],
      ['INTERNAL', 'backend_unavailable'],
      ['OTHER', 'backend_error'],
      ['PAYMENT_FAILED', 'payment_failed'],
      ['NOT_FOUND', 'invoice_not_found'],
      ['UNSUPPORTED_ENCRYPTION', 'capability_unsupported'],
      ['SOMETHING_NEW', 'backend_error'],
    ];
    const seen: Array<[string, string]> = [];
    try {
      for (const [walletCode] of table) {
        s.wallet.fault({ errorCode: walletCode });
        seen.push([walletCode, await codeOf(s.backend.getBalance())]);
      }
    } finally {
      s.wallet.fault(undefined);
    }
    expect(seen).toEqual(table);
    const error = await s.backend.lookupInvoice('00'.repeat(32)).catch((e: unknown) => e);
    expect(isTollwayError(error, 'invoice_not_found') && error.details).toMatchObject({
      walletCode: 'NOT_FOUND',
    });
  });

  it('turns wrong-shape and missing replies into typed errors', async () => {
    const quick = createNwcBackend({ ...s.wallet.connection, requestTimeoutMs: 300 });
    try {
      s.wallet.fault('wrong_shape');
      expect(await codeOf(quick.getBalance())).toBe('backend_error');
      expect(await codeOf(quick.createInvoice({ amountMsat: 1_000n }))).toBe('backend_error');
      s.wallet.fault('garbage');
      expect(await codeOf(quick.lookupInvoice('11'.repeat(32)))).toBe('backend_error');
      s.wallet.fault('silent');
      const started = Date.now();
      expect(await codeOf(quick.getBalance())).toBe('backend_unavailable');
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    } finally {
      s.wallet.fault(undefined);
      await quick.close();
    }
  });

  it('recovers the preimage by lookup when the pay reply omits it', async () => {
    s.wallet.setBalance(1_000_000n);
    const ext = await s.wallet.createExternalInvoice({ amountMsat: 3_000n });
    s.wallet.fault('no_preimage');
    try {
      const paid = await s.backend.payInvoice({ paymentRequest: ext.paymentRequest });
      expect(paid.preimage).toBe(ext.preimage);
      expect(s.wallet.timesPaid(ext.paymentHash)).toBe(1);
    } finally {
      s.wallet.fault(undefined);
    }
  });

  it('reads the connection budget and maps QUOTA_EXCEEDED', async () => {
    expect(await s.backend.getBudget()).toBeNull();
    s.wallet.setBalance(1_000_000n);
    s.wallet.setBudget(10_000n);
    try {
      expect(await s.backend.getBudget()).toEqual({
        usedMsat: 0n,
        totalMsat: 10_000n,
        renewalPeriod: 'never',
      });
      const first = await s.wallet.createExternalInvoice({ amountMsat: 8_000n });
      await s.backend.payInvoice({ paymentRequest: first.paymentRequest });
      expect((await s.backend.getBudget())?.usedMsat).toBe(9_000n);
      const second = await s.wallet.createExternalInvoice({ amountMsat: 2_000n });
      expect(await codeOf(s.backend.payInvoice({ paymentRequest: second.paymentRequest }))).toBe(
        'quota_exceeded',
      );
      expect(s.wallet.timesPaid(second.paymentHash)).toBe(0);
    } finally {
      s.wallet.setBudget(undefined);
    }
  });

  it('answers unauthorized for a key the wallet does not know', async () => {
    const stranger = createNwcBackend({ ...s.wallet.connection, ...FAST, secret: '42'.repeat(32) });
    try {
      expect(await codeOf(stranger.getBalance())).toBe('unauthorized');
    } finally {
      await stranger.close();
    }
  });

  it('is woken by a payment_received notification instead of waiting for the next poll', async () => {
    const slow = createNwcBackend({ ...s.wallet.connection, ...FAST, pollIntervalMs: 20_000 });
    try {
      const created = await slow.createInvoice({ amountMsat: 1_000n });
      const waiting = slow.waitForSettlement(created.paymentHash, { timeoutMs: 10_000 });
      await new Promise((r) => setTimeout(r, 200));
      const paidAt = Date.now();
      await s.wallet.payIncoming(created.paymentRequest);
      expect((await waiting).state).toBe('settled');
      expect(Date.now() - paidAt).toBeLessThan(5_000); // the poll interval is 20 s
    } finally {
      await slow.close();
    }
  });

  it('stops waiting when the signal aborts', async () => {
    const created = await s.backend.createInvoice({ amountMsat: 1_000n });
    const controller = new AbortController();
    const waiting = s.backend.waitForSettlement(created.paymentHash, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('caller gave up')), 100);
    await expect(waiting).rejects.toThrow('caller gave up');
  });

  it('releases its socket on close and refuses calls afterwards', async () => {
    const extra = createNwcBackend({ ...s.wallet.connection, ...FAST });
    const before = s.relay.connections();
    await extra.getBalance();
    expect(s.relay.connections()).toBe(before + 1);
    await extra.close();
    await until(() => s.relay.connections() === before);
    expect(await codeOf(extra.getBalance())).toBe('backend_unavailable');
  });
});

describe('NWC backend: wallets with fewer features', () => {
  it('falls back to NIP-04 for a wallet that only speaks NIP-04', async () => {
    const s = await setup({ encryption: ['nip04'] });
    try {
      s.wallet.setBalance(5_000n);
      expect(await s.backend.getBalance()).toEqual({ msat: 5_000n });
      const request = s.relay.accepted.find((e) => e.kind === 23194);
      expect(request?.content).toContain('?iv=');
      expect(request?.tags.some((t) => t[0] === 'encryption')).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('uses NIP-04 and tries every method when the wallet publishes no info event', async () => {
    const s = await setup({ noInfoEvent: true, methods: ['get_balance', 'get_info'] });
    try {
      expect((await s.backend.getInfo()).network).toBe('regtest');
      expect(s.relay.accepted.find((e) => e.kind === 23194)?.content).toContain('?iv=');
      expect(await codeOf(s.backend.getBudget())).toBe('capability_unsupported');
      expect(s.backend.capabilities).toEqual({ canReceive: false, canPay: false });
    } finally {
      await s.close();
    }
  });

  it('refuses methods a receive-only connection does not offer, without sending them', async () => {
    const s = await setup({ methods: ['make_invoice', 'lookup_invoice', 'get_info'] });
    try {
      await s.backend.getInfo();
      expect(s.backend.capabilities).toEqual({ canReceive: true, canPay: false });
      const ext = await s.wallet.createExternalInvoice({ amountMsat: 1_000n });
      expect(await codeOf(s.backend.payInvoice({ paymentRequest: ext.paymentRequest }))).toBe(
        'capability_unsupported',
      );
      expect(await codeOf(s.backend.getBalance())).toBe('capability_unsupported');
      expect(s.wallet.requests.map((r) => r.method)).toEqual(['get_info']);
    } finally {
      await s.close();
    }
  });
});
