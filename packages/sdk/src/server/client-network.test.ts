import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientNetwork, UNKNOWN_NETWORK } from './client-network.js';

describe('clientNetwork', () => {
  it('masks IPv4 to /24 and IPv6 to /48', () => {
    expect(clientNetwork('203.0.113.7')).toBe('203.0.113.0/24');
    expect(clientNetwork('2001:db8:1:2::7')).toBe('2001:db8:1::/48');
    expect(clientNetwork('2001:0DB8:0001:ffff:0:0:0:1')).toBe('2001:db8:1::/48');
    expect(clientNetwork('[2001:db8::1]')).toBe('2001:db8:0::/48');
    expect(clientNetwork('fe80::1%eth0')).toBe('fe80:0:0::/48');
    expect(clientNetwork('::')).toBe('0:0:0::/48');
  });

  it('treats IPv4-mapped IPv6 as IPv4', () => {
    expect(clientNetwork('::ffff:203.0.113.7')).toBe('203.0.113.0/24');
    expect(clientNetwork('::ffff:cb00:7107')).toBe('203.0.113.0/24');
  });

  it('puts what is not an address in one shared network', () => {
    for (const text of [
      '',
      'localhost',
      '256.1.1.1',
      '1.2.3',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      ':1',
    ]) {
      expect(clientNetwork(text)).toBe(UNKNOWN_NETWORK);
    }
  });

  it('gives every address of a /24 the same network, and other /24s another', () => {
    const octet = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(octet, octet, octet, octet, octet, (a, b, c, d, e) => {
        expect(clientNetwork(`${a}.${b}.${c}.${d}`)).toBe(clientNetwork(`${a}.${b}.${c}.${e}`));
        expect(clientNetwork(`${a}.${b}.${c}.${d}`)).not.toBe(
          clientNetwork(`${a}.${b}.${(c + 1) % 256}.${d}`),
        );
      }),
    );
  });

  it('reads compressed and full IPv6 forms alike', () => {
    const group = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(fc.array(group, { minLength: 8, maxLength: 8 }), (groups) => {
        const full = groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
        const short = groups.map((g) => g.toString(16)).join(':');
        expect(clientNetwork(short)).toBe(clientNetwork(full));
        expect(clientNetwork(full)).not.toBe(UNKNOWN_NETWORK);
      }),
    );
  });

  it('never throws, whatever the text', () => {
    fc.assert(fc.property(fc.string(), (text) => typeof clientNetwork(text) === 'string'));
  });
});
