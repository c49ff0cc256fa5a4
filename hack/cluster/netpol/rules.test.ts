import { describe, expect, it } from 'vitest';
import { buildRuleset, matches, type Namespace, type NetworkPolicy, type Pod, transition } from './rules.ts';

/**
 * The rules are checked by what they do to packets: a small interpreter of the iptables subset
 * buildRuleset emits (the integration suite runs the same rules in the real kernel).
 */
type Packet = { src: string; dst: string; proto?: string; port: number };

function ipInCidr(ip: string, cidr: string): boolean {
  const [base, bits = '32'] = cidr.split('/');
  const n = (a: string) => a.split('.').reduce((acc, o) => (acc << 8) + Number(o), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (n(ip) & mask) === (n(base!) & mask);
}

function verdict(text: string, pkt: Packet, chain = 'EPNP'): 'allowed' | 'rejected' {
  const rules = text.split('\n').filter((l) => l.startsWith('-A '));
  let mark = 0;
  const run = (name: string): 'return' | 'reject' => {
    for (const r of rules.filter((l) => l.startsWith(`-A ${name} `))) {
      const t = r.split(' ');
      const arg = (flag: string) => {
        const i = t.indexOf(flag);
        return i >= 0 ? t[i + 1] : undefined;
      };
      if (r.includes('--ctstate')) continue; // new connections only
      const s = arg('-s');
      const d = arg('-d');
      const p = arg('-p');
      const dport = arg('--dport');
      const m = r.includes('-m mark') ? arg('--mark') : undefined;
      if (s && !ipInCidr(pkt.src, s)) continue;
      if (d && !ipInCidr(pkt.dst, d)) continue;
      if (p && p !== (pkt.proto ?? 'tcp')) continue;
      if (dport) {
        const [lo, hi = lo] = dport.split(':').map(Number);
        if (pkt.port < lo! || pkt.port > hi!) continue;
      }
      if (m && (mark & 0x100000) === 0) continue;
      const target = arg('-j')!;
      if (target === 'RETURN') return 'return';
      if (target === 'REJECT') return 'reject';
      if (target === 'MARK') {
        mark = arg('--set-xmark')!.startsWith('0x100000') ? mark | 0x100000 : mark & ~0x100000;
        continue;
      }
      if (run(target) === 'reject') return 'reject';
    }
    return 'return';
  };
  return run(chain) === 'reject' ? 'rejected' : 'allowed';
}

const pod = (
  ns: string,
  name: string,
  ip: string,
  labels: Record<string, string> = {},
  ports: Pod['spec'] = {},
): Pod => ({
  metadata: { namespace: ns, name, labels },
  spec: ports,
  status: { podIP: ip, phase: 'Running' },
});
const ns = (name: string, labels: Record<string, string> = {}): Namespace => ({
  metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } },
});
const np = (namespace: string, name: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({
  metadata: { namespace, name },
  spec,
});

// Two candidate namespaces with Épreuve's policies, a platform namespace, DNS.
const namespaces = [ns('cand-a'), ns('cand-b'), ns('epreuve-system'), ns('kube-system')];
const pods = [
  pod(
    'cand-a',
    'db',
    '10.1.0.2',
    { app: 'db' },
    { containers: [{ ports: [{ name: 'pg', containerPort: 5432 }] }] },
  ),
  pod('cand-a', 'seed', '10.1.0.3', { app: 'seed' }),
  pod('cand-b', 'db', '10.1.0.4', { app: 'db' }),
  pod('epreuve-system', 'api', '10.1.0.5', { app: 'api' }),
  pod('kube-system', 'coredns', '10.1.0.6', { 'k8s-app': 'kube-dns' }),
];
const candidatePolicies = (n: string, dnsOnly = false): NetworkPolicy[] => [
  np(n, 'default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
  np(n, 'allow-same-namespace', {
    podSelector: {},
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ podSelector: {} }] }],
    egress: [{ to: [{ podSelector: {} }] }],
  }),
  np(n, 'allow-platform-ingress', {
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [
      { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'epreuve-system' } } }] },
    ],
  }),
  ...(dnsOnly
    ? [
        np(n, 'allow-dns', {
          podSelector: {},
          policyTypes: ['Egress'],
          egress: [
            {
              to: [
                {
                  namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
                  podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
                },
              ],
              ports: [
                { protocol: 'UDP', port: 53 },
                { protocol: 'TCP', port: 53 },
              ],
            },
          ],
        }),
      ]
    : []),
];

describe('buildRuleset with Épreuve’s candidate namespace policies', () => {
  const { text } = buildRuleset(
    [...candidatePolicies('cand-a', true), ...candidatePolicies('cand-b')],
    pods,
    namespaces,
  );
  it.each([
    ['a sandbox to another in its namespace', { src: '10.1.0.3', dst: '10.1.0.2', port: 5432 }, 'allowed'],
    ['assessment A to assessment B', { src: '10.1.0.2', dst: '10.1.0.4', port: 5432 }, 'rejected'],
    ['assessment B to assessment A', { src: '10.1.0.4', dst: '10.1.0.2', port: 5432 }, 'rejected'],
    ['the platform to a sandbox', { src: '10.1.0.5', dst: '10.1.0.2', port: 5432 }, 'allowed'],
    ['a sandbox to the platform', { src: '10.1.0.2', dst: '10.1.0.5', port: 8080 }, 'rejected'],
    ['a sandbox to the internet', { src: '10.1.0.2', dst: '192.0.2.10', port: 443 }, 'rejected'],
    ['a sandbox to the node', { src: '10.1.0.2', dst: '10.1.0.1', port: 10250 }, 'rejected'],
    [
      'a dns-only sandbox to cluster DNS',
      { src: '10.1.0.2', dst: '10.1.0.6', proto: 'udp', port: 53 },
      'allowed',
    ],
    [
      'a dns-only sandbox to DNS on another port',
      { src: '10.1.0.2', dst: '10.1.0.6', proto: 'udp', port: 54 },
      'rejected',
    ],
    [
      'a no-egress sandbox to cluster DNS',
      { src: '10.1.0.4', dst: '10.1.0.6', proto: 'udp', port: 53 },
      'rejected',
    ],
    [
      'the platform to DNS (not isolated)',
      { src: '10.1.0.5', dst: '10.1.0.6', proto: 'udp', port: 53 },
      'allowed',
    ],
  ])('%s: %s', (_label, pkt, expected) => {
    expect(verdict(text, pkt as Packet)).toBe(expected);
  });
});

describe('buildRuleset semantics', () => {
  const two = [
    pod(
      'a',
      'web',
      '10.2.0.2',
      { app: 'web' },
      { containers: [{ ports: [{ name: 'http', containerPort: 8080 }] }] },
    ),
    pod('a', 'cli', '10.2.0.3', { app: 'cli' }),
    pod('b', 'x', '10.2.0.4', { team: 'x' }),
  ];
  const nss = [ns('a'), ns('b', { env: 'test' })];

  it('leaves pods no policy selects alone', () => {
    const { text } = buildRuleset([], two, nss);
    expect(verdict(text, { src: '10.2.0.4', dst: '10.2.0.2', port: 1 })).toBe('allowed');
  });

  it('isolates only in the directions a policy names, defaulting to Ingress (and Egress when it has egress rules)', () => {
    const ingressOnly = buildRuleset(
      [np('a', 'p', { podSelector: { matchLabels: { app: 'web' } } })],
      two,
      nss,
    ).text;
    expect(verdict(ingressOnly, { src: '10.2.0.3', dst: '10.2.0.2', port: 8080 })).toBe('rejected');
    expect(verdict(ingressOnly, { src: '10.2.0.2', dst: '10.2.0.3', port: 1 })).toBe('allowed');
    const withEgress = buildRuleset(
      [np('a', 'p', { podSelector: { matchLabels: { app: 'web' } }, egress: [] })],
      two,
      nss,
    ).text;
    expect(verdict(withEgress, { src: '10.2.0.2', dst: '10.2.0.3', port: 1 })).toBe('rejected');
  });

  it('resolves named ports against the destination pod, and honours endPort', () => {
    const { text } = buildRuleset(
      [
        np('a', 'p', {
          podSelector: { matchLabels: { app: 'web' } },
          ingress: [{ ports: [{ port: 'http' }, { port: 9000, endPort: 9010 }] }],
        }),
      ],
      two,
      nss,
    );
    expect(verdict(text, { src: '10.2.0.3', dst: '10.2.0.2', port: 8080 })).toBe('allowed');
    expect(verdict(text, { src: '10.2.0.3', dst: '10.2.0.2', port: 9005 })).toBe('allowed');
    expect(verdict(text, { src: '10.2.0.3', dst: '10.2.0.2', port: 9011 })).toBe('rejected');
    expect(verdict(text, { src: '10.2.0.3', dst: '10.2.0.2', proto: 'udp', port: 8080 })).toBe('rejected');
  });

  it('resolves a named port of an egress rule without peers against every pod that declares it', () => {
    // Upstream "should allow egress access on one named port": the port names a destination's
    // container port, so only pods that have it match (never an address outside the cluster).
    const { text } = buildRuleset(
      [
        np('a', 'p', {
          podSelector: { matchLabels: { app: 'cli' } },
          policyTypes: ['Egress'],
          egress: [{ ports: [{ port: 'http' }] }],
        }),
        np('a', 'q', {
          podSelector: { matchLabels: { app: 'web' } },
          policyTypes: ['Egress'],
          egress: [{ to: [{ ipBlock: { cidr: '10.2.0.0/24' } }], ports: [{ port: 'http' }] }],
        }),
      ],
      two,
      nss,
    );
    expect(verdict(text, { src: '10.2.0.3', dst: '10.2.0.2', port: 8080 })).toBe('allowed');
    expect(verdict(text, { src: '10.2.0.3', dst: '10.2.0.4', port: 8080 })).toBe('rejected');
    expect(verdict(text, { src: '10.2.0.3', dst: '192.0.2.1', port: 8080 })).toBe('rejected');
    expect(verdict(text, { src: '10.2.0.2', dst: '10.2.0.2', port: 8080 })).toBe('allowed');
    expect(verdict(text, { src: '10.2.0.2', dst: '10.2.0.4', port: 8080 })).toBe('rejected');
  });

  it('moves from one ruleset to the next in one restore, deleting chains no longer built', () => {
    const before = buildRuleset([np('a', 'deny', { podSelector: {} })], two, nss);
    const after = buildRuleset([], two, nss);
    const text = transition(after, before.chains);
    const stale = before.chains.filter((c) => c !== 'EPNP');
    expect(stale.length).toBeGreaterThan(0);
    for (const c of stale) expect(text).toContain(`:${c} - [0:0]\n-X ${c}\n`);
    expect(text.split('\n')).not.toContain('-X EPNP');
    expect(text.endsWith('COMMIT\n')).toBe(true);
    expect(transition(after, after.chains)).toBe(after.text);
  });

  it('combines namespaceSelector and podSelector in one peer as AND, separate peers as OR', () => {
    const and = buildRuleset(
      [
        np('a', 'p', {
          podSelector: {},
          ingress: [
            {
              from: [
                {
                  namespaceSelector: { matchLabels: { env: 'test' } },
                  podSelector: { matchLabels: { team: 'y' } },
                },
              ],
            },
          ],
        }),
      ],
      two,
      nss,
    ).text;
    expect(verdict(and, { src: '10.2.0.4', dst: '10.2.0.2', port: 1 })).toBe('rejected');
    const or = buildRuleset(
      [
        np('a', 'p', {
          podSelector: {},
          ingress: [
            {
              from: [
                { namespaceSelector: { matchLabels: { env: 'test' } } },
                { podSelector: { matchLabels: { team: 'y' } } },
              ],
            },
          ],
        }),
      ],
      two,
      nss,
    ).text;
    expect(verdict(or, { src: '10.2.0.4', dst: '10.2.0.2', port: 1 })).toBe('allowed');
  });

  it('applies ipBlock with its exceptions', () => {
    const { text } = buildRuleset(
      [
        np('a', 'p', {
          podSelector: { matchLabels: { app: 'cli' } },
          policyTypes: ['Egress'],
          egress: [
            { to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.2.0.0/24'] } }], ports: [{ port: 443 }] },
          ],
        }),
      ],
      two,
      nss,
    );
    expect(verdict(text, { src: '10.2.0.3', dst: '10.9.9.9', port: 443 })).toBe('allowed');
    expect(verdict(text, { src: '10.2.0.3', dst: '10.9.9.9', port: 80 })).toBe('rejected');
    expect(verdict(text, { src: '10.2.0.3', dst: '10.2.0.2', port: 443 })).toBe('rejected');
  });

  it('ignores pods without an address, on the host network, or finished', () => {
    const odd: Pod[] = [
      { metadata: { namespace: 'a', name: 'pending' }, status: { phase: 'Pending' } },
      { ...pod('a', 'host', '10.2.0.9'), spec: { hostNetwork: true } },
      { ...pod('a', 'done', '10.2.0.8'), status: { podIP: '10.2.0.8', phase: 'Succeeded' } },
    ];
    const { chains } = buildRuleset([np('a', 'deny', { podSelector: {} })], odd, nss);
    expect(chains).toEqual(['EPNP']);
  });

  it('names chains stably and within iptables’ 28 characters', () => {
    const a = buildRuleset(candidatePolicies('cand-a'), pods, namespaces);
    const b = buildRuleset(candidatePolicies('cand-a'), [...pods].reverse(), namespaces);
    expect(new Set(a.chains)).toEqual(new Set(b.chains));
    for (const c of a.chains) expect(c.length).toBeLessThanOrEqual(28);
  });
});

describe('matches', () => {
  it.each([
    [{ matchExpressions: [{ key: 'a', operator: 'In' as const, values: ['1', '2'] }] }, { a: '2' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn' as const, values: ['1'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' as const }] }, { b: '1' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' as const }] }, { b: '1' }, true],
    [
      { matchLabels: { a: '1' }, matchExpressions: [{ key: 'b', operator: 'Exists' as const }] },
      { a: '1' },
      false,
    ],
    [{}, { anything: 'x' }, true],
  ])('%j on %j → %s', (selector, labels, expected) => {
    expect(matches(selector, labels as Record<string, string>)).toBe(expected);
  });
});
