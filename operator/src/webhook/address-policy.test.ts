import { describe, expect, it } from 'vitest';
import { addressRefusal, ipLiteral, urlRefusal } from './address-policy.ts';

describe('webhook address policy', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.8.9.10', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['fd00::1', 'uniqueLocal'],
    ['fc12::1', 'uniqueLocal'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['::ffff:10.0.0.1', 'private'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['224.0.0.1', 'multicast'],
    ['64:ff9b::7f00:1', 'rfc6052'],
    ['2002:7f00:1::', '6to4'],
    ['::127.0.0.1', 'loopback'],
    ['::7f00:1', 'IPv4-compatible'],
    ['::a9fe:a9fe', 'IPv4-compatible'],
  ])('refuses %s (%s) without the allowance, allows it with', (ip, range) => {
    expect(addressRefusal(ip, false)).toContain(`a ${range} address`);
    expect(addressRefusal(ip, true)).toBeUndefined();
  });

  it.each(['93.184.215.14', '2606:4700::1111', '::ffff:8.8.8.8'])('allows the public address %s', (ip) => {
    expect(addressRefusal(ip, false)).toBeUndefined();
  });

  it('refuses what is not an address', () => {
    expect(addressRefusal('example.com', false)).toBe('example.com is not an IP address');
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
