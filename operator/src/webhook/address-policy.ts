import ipaddr from 'ipaddr.js';

/** An address range no webhook may reach, and what it is (for the delivery error). */
export interface RefusedRange {
  cidr: [ipaddr.IPv4 | ipaddr.IPv6, number];
  what: string;
}

/** Where a team's webhook may go: the team's own choice, bounded by the operator's. */
export interface TargetPolicy {
  /** The team's `allowPrivateTargets` (its own Secret). */
  allowPrivateTargets: boolean;
  /**
   * Operator-wide, never a team's: loopback counts as private rather than always refused. Only
   * for an operator run outside a cluster (a laptop, the integration tests' receivers on
   * 127.0.0.1); in a pod, loopback is the operator itself.
   */
  allowLoopback?: boolean;
  /** Operator-wide: the control plane (the API server's service IP, refused CIDRs), refused always. */
  refused?: RefusedRange[];
}

/**
 * Ranges refused even for a team that allows private targets: its Secret is the team's to write,
 * so it may open its own network, never the cluster's or the cloud's. Link-local holds the cloud
 * metadata service (169.254.169.254) and fe80::/10; loopback, unspecified (0.0.0.0/8 and ::
 * connect to the host itself), broadcast and multicast are no receiver; the IPv6 forms that embed
 * an IPv4 address (NAT64, 6to4, Teredo, the IPv4-compatible ::a.b.c.d) can carry any of those.
 */
const ALWAYS_REFUSED = new Set([
  'loopback',
  'linkLocal',
  'unspecified',
  'broadcast',
  'multicast',
  'rfc6052',
  '6to4',
  'teredo',
  'IPv4-compatible',
]);

/** A CIDR or a single address as a refused range; throws naming the value when it is neither. */
export function refusedRange(value: string, what: string): RefusedRange {
  const v = value.trim();
  if (ipaddr.isValidCIDR(v)) return { cidr: ipaddr.parseCIDR(v), what };
  if (ipaddr.isValid(v)) {
    const a = ipaddr.parse(v);
    return { cidr: [a, a.kind() === 'ipv4' ? 32 : 128], what };
  }
  throw new Error(`${JSON.stringify(value)} is neither an IP address nor a CIDR`);
}

/**
 * Where a webhook may be sent: public unicast addresses only, unless the team allows private
 * targets. ipaddr.js (a well-kept library, the one proxy-addr uses) names each special range, so
 * nothing here lists CIDRs by hand: loopback, private (RFC 1918), link-local (169.254.0.0/16 —
 * cloud metadata — and fe80::/10), unique-local (fc00::/7), carrier-grade NAT, multicast,
 * unspecified, reserved, and the IPv6 forms that embed an IPv4 address (IPv4-mapped ::ffff:0:0/96
 * is unwrapped and judged as IPv4; NAT64, 6to4 and Teredo are refused outright). With the
 * allowance, ALWAYS_REFUSED and the control plane (`policy.refused`) still are.
 */
export function addressRefusal(ip: string, policy: TargetPolicy): string | undefined {
  if (!ipaddr.isValid(ip)) return `${ip} is not an IP address`;
  // process() turns ::ffff:127.0.0.1 into 127.0.0.1, so a mapped address gets its IPv4 verdict.
  const address = ipaddr.process(ip);
  for (const r of policy.refused ?? [])
    if (address.kind() === r.cidr[0].kind() && address.match(r.cidr))
      return `${ip} is ${r.what}; webhooks may never reach it, even with allowPrivateTargets`;
  // The deprecated IPv4-compatible form ::a.b.c.d (::/96, RFC 4291 §2.5.5.1): ipaddr.js calls it
  // unicast, yet ::127.0.0.1 names loopback on some stacks. No public host is reached that way.
  const compatible =
    address.kind() === 'ipv6' &&
    address.match(ipaddr.parse('::'), 96) &&
    !address.match(ipaddr.parse('::'), 127);
  const range = compatible ? 'IPv4-compatible' : address.range();
  if (range === 'unicast') return undefined;
  if (!policy.allowPrivateTargets)
    return `${ip} is a ${range} address; only public addresses are allowed (the team's allowPrivateTargets is off)`;
  if (ALWAYS_REFUSED.has(range) && !(range === 'loopback' && policy.allowLoopback)) {
    const metadata =
      range === 'linkLocal' && address.kind() === 'ipv4' ? ' (where cloud metadata services answer)' : '';
    return `${ip} is a ${range} address${metadata}; webhooks may never reach it, even with allowPrivateTargets`;
  }
  return undefined;
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
