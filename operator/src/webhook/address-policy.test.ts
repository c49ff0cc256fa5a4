import { describe, expect, it } from 'vitest';
import { addressRefusal, ipLiteral, refusedRange, type TargetPolicy, urlRefusal } from './address-policy.ts';

const team = (allowPrivateTargets: boolean, more: Partial<TargetPolicy> = {}): TargetPolicy => ({
  allowPrivateTargets,
  ...more,
});

describe('webhook address policy', () => {
  it.each([
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['fd00::1', 'uniqueLocal'],
    ['fc12::1', 'uniqueLocal'],
    ['::ffff:10.0.0.1', 'private'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['240.0.0.1', 'reserved'],
  ])('refuses %s (%s) without the allowance, allows it with', (ip, range) => {
    expect(addressRefusal(ip, team(false))).toContain(
      `a ${range} address; only public addresses are allowed`,
    );
    expect(addressRefusal(ip, team(true))).toBeUndefined();
  });

  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::127.0.0.1', 'loopback'],
    ['169.254.169.254', 'linkLocal'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['224.0.0.1', 'multicast'],
    ['64:ff9b::a9fe:a9fe', 'rfc6052'],
    ['2002:7f00:1::', '6to4'],
    ['2001::1', 'teredo'],
    ['::7f00:1', 'IPv4-compatible'],
    ['::a9fe:a9fe', 'IPv4-compatible'],
  ])('refuses %s (%s) without the allowance, and with it too', (ip, range) => {
    expect(addressRefusal(ip, team(false))).toContain(
      `a ${range} address; only public addresses are allowed`,
    );
    expect(addressRefusal(ip, team(true))).toMatch(
      new RegExp(
        `^${ip.replace(/[.:]/g, '\\$&')} is a ${range} address.*; webhooks may never reach it, even with allowPrivateTargets$`,
      ),
    );
  });

  it('says where cloud metadata lives when refusing link-local', () => {
    expect(addressRefusal('169.254.169.254', team(true))).toBe(
      '169.254.169.254 is a linkLocal address (where cloud metadata services answer); webhooks may never reach it, even with allowPrivateTargets',
    );
  });

  it('lets the operator (never a team) treat loopback as private: link-local stays refused', () => {
    expect(addressRefusal('127.0.0.1', team(true, { allowLoopback: true }))).toBeUndefined();
    expect(addressRefusal('127.0.0.1', team(false, { allowLoopback: true }))).toContain(
      'only public addresses',
    );
    expect(addressRefusal('169.254.169.254', team(true, { allowLoopback: true }))).toContain(
      'never reach it',
    );
  });

  it('refuses the control plane with or without the allowance, naming the address and why', () => {
    const refused = [
      refusedRange('10.96.0.1', "the Kubernetes API server's service address (KUBERNETES_SERVICE_HOST)"),
      refusedRange('93.184.215.0/28', 'in 93.184.215.0/28, refused by the operator'),
      refusedRange('fd00:10::/64', 'in fd00:10::/64, refused by the operator'),
    ];
    expect(addressRefusal('10.96.0.1', team(true, { refused }))).toBe(
      "10.96.0.1 is the Kubernetes API server's service address (KUBERNETES_SERVICE_HOST); webhooks may never reach it, even with allowPrivateTargets",
    );
    expect(addressRefusal('::ffff:10.96.0.1', team(true, { refused }))).toContain(
      "API server's service address",
    );
    // A public control plane endpoint is refused even to a team without the allowance.
    expect(addressRefusal('93.184.215.5', team(false, { refused }))).toBe(
      '93.184.215.5 is in 93.184.215.0/28, refused by the operator; webhooks may never reach it, even with allowPrivateTargets',
    );
    expect(addressRefusal('fd00:10::7', team(true, { refused }))).toContain('in fd00:10::/64');
    // Neighbours pass.
    expect(addressRefusal('10.96.0.2', team(true, { refused }))).toBeUndefined();
    expect(addressRefusal('93.184.215.16', team(false, { refused }))).toBeUndefined();
  });

  it('reads a refused range from an address or a CIDR, and names what is neither', () => {
    expect(refusedRange(' 10.0.0.1 ', 'x').cidr[1]).toBe(32);
    expect(refusedRange('::1', 'x').cidr[1]).toBe(128);
    expect(refusedRange('10.0.0.0/8', 'x').cidr[1]).toBe(8);
    expect(() => refusedRange('10.0.0.0/33', 'x')).toThrow(
      '"10.0.0.0/33" is neither an IP address nor a CIDR',
    );
    expect(() => refusedRange('kubernetes', 'x')).toThrow('"kubernetes" is neither');
  });

  it.each(['93.184.215.14', '2606:4700::1111', '::ffff:8.8.8.8'])('allows the public address %s', (ip) => {
    expect(addressRefusal(ip, team(false))).toBeUndefined();
  });

  it('refuses what is not an address', () => {
    expect(addressRefusal('example.com', team(false))).toBe('example.com is not an IP address');
  });

  it('allows https only, http with the allowance, never credentials in the URL', () => {
    expect(urlRefusal(new URL('https://hooks.example.com/x'), false)).toBeUndefined();
    expect(urlRefusal(new URL('http://hooks.example.com/x'), false)).toMatch(/must be https/);
    expect(urlRefusal(new URL('http://127.0.0.1:8080/x'), true)).toBeUndefined();
    expect(urlRefusal(new URL('ftp://hooks.example.com/x'), true)).toMatch(/ftp:\/\/ is not allowed/);
    expect(urlRefusal(new URL('https://u:p@hooks.example.com/'), false)).toMatch(/credentials/);
  });

  it('finds IP literals, IPv6 in brackets and IPv4 spelt oddly included', () => {
    expect(ipLiteral(new URL('https://[::1]:8443/'))).toBe('::1');
    // WHATWG URL parsing normalises 0x7f.1 to 127.0.0.1 before the check sees it.
    expect(ipLiteral(new URL('https://0x7f.1/'))).toBe('127.0.0.1');
    expect(ipLiteral(new URL('https://hooks.example.com/'))).toBeUndefined();
  });
});
