import ipaddr from 'ipaddr.js';

/**
 * Where a webhook may be sent: public unicast addresses only, unless the team allows private
 * targets. ipaddr.js (a well-kept library, the one proxy-addr uses) names each special range, so
 * nothing here lists CIDRs by hand: loopback, private (RFC 1918), link-local (169.254.0.0/16 —
 * cloud metadata — and fe80::/10), unique-local (fc00::/7), carrier-grade NAT, multicast,
 * unspecified, reserved, and the IPv6 forms that embed an IPv4 address (IPv4-mapped ::ffff:0:0/96
 * is unwrapped and judged as IPv4; NAT64, 6to4 and Teredo are refused outright).
 */
export function addressRefusal(ip: string, allowPrivateTargets: boolean): string | undefined {
  if (!ipaddr.isValid(ip)) return `${ip} is not an IP address`;
  // process() turns ::ffff:127.0.0.1 into 127.0.0.1, so a mapped address gets its IPv4 verdict.
  const address = ipaddr.process(ip);
  // The deprecated IPv4-compatible form ::a.b.c.d (::/96, RFC 4291 §2.5.5.1): ipaddr.js calls it
  // unicast, yet ::127.0.0.1 names loopback on some stacks. No public host is reached that way.
  const compatible =
    address.kind() === 'ipv6' &&
    address.match(ipaddr.parse('::'), 96) &&
    !address.match(ipaddr.parse('::'), 127);
  const range = compatible ? 'IPv4-compatible' : address.range();
  if (range === 'unicast') return undefined;
  if (allowPrivateTargets) return undefined;
  return `${ip} is a ${range} address; only public addresses are allowed (the team's allowPrivateTargets is off)`;
}

/** The URL's own rules: https only (http only with allowPrivateTargets), no credentials in it. */
export function urlRefusal(url: URL, allowPrivateTargets: boolean): string | undefined {
  if (url.protocol !== 'https:' && !(allowPrivateTargets && url.protocol === 'http:'))
    return `${url.protocol}// is not allowed: webhook URLs must be https (http only with allowPrivateTargets)`;
  if (url.username || url.password) return 'webhook URLs may not carry credentials';
  return undefined;
}

/** The host of a URL as an IP literal (brackets of IPv6 removed), or undefined for a name. */
export function ipLiteral(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return ipaddr.isValid(host) ? host : undefined;
}
