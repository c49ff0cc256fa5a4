import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compare,
  containerPorts,
  expectedTable,
  largeCidr,
  pairs,
  splitPod,
  substitute,
  validations,
  type World,
} from './replay.ts';
import { KNOWN_FAILURES, UPSTREAM_CASES, type UpstreamCase } from './upstream-cases.ts';

const world: World = {
  namespaces: { x: 'n-x', y: 'n-y', z: 'n-z' },
  ip: (p) => ({ 'x/a': '10.244.0.2', 'x/b': '10.244.0.3', 'y/a': '10.244.0.4' })[p] ?? '',
};
const cell = (t: ReturnType<typeof expectedTable>, f: string, to: string) => t.get(f)?.get(to);

describe('expectedTable (upstream reachability.go)', () => {
  const pods = ['x/a', 'x/b', 'y/a'];
  it('starts all-allowed and applies the operations in order', () => {
    const t = expectedTable(pods, [
      { op: 'ExpectAllIngress', pod: 'x/a', connected: false },
      { op: 'Expect', from: 'x/b', to: 'x/a', connected: true },
    ]);
    expect([cell(t, 'y/a', 'x/a'), cell(t, 'x/b', 'x/a'), cell(t, 'x/a', 'y/a')]).toEqual([
      false,
      true,
      true,
    ]);
  });
  it('matches peers by namespace, by pod, or both; empty matches all', () => {
    const t = expectedTable(pods, [
      { op: 'ExpectPeer', from: { ns: 'x' }, to: { pod: 'a' }, connected: false },
    ]);
    expect([
      cell(t, 'x/b', 'x/a'),
      cell(t, 'x/b', 'y/a'),
      cell(t, 'y/a', 'x/a'),
      cell(t, 'x/a', 'x/b'),
    ]).toEqual([false, false, true, true]);
    const egress = expectedTable(pods, [{ op: 'ExpectAllEgress', pod: 'y/a', connected: false }]);
    expect([cell(egress, 'y/a', 'x/a'), cell(egress, 'x/a', 'y/a')]).toEqual([false, true]);
  });
  it('refuses a pod outside the model', () => {
    expect(() => expectedTable(pods, [{ op: 'Expect', from: 'z/a', to: 'x/a', connected: true }])).toThrow(
      /z\/a → x\/a, not in the model/,
    );
  });
  it('compare ignores loopback and lists wrong cells', () => {
    const t = expectedTable(pods, [{ op: 'ExpectAllIngress', pod: 'x/a', connected: false }]);
    expect(compare(t, () => true)).toEqual([
      { from: 'x/b', to: 'x/a', expected: false },
      { from: 'y/a', to: 'x/a', expected: false },
    ]);
    expect(pairs(pods)).toHaveLength(6);
  });
});

describe('placeholders and the model', () => {
  it('fills names, IPs and upstream’s /4, and names what it cannot fill', () => {
    expect(substitute(['{{ns:z}}', '{{ip:x/b}}', '{{cidr4:y/a}}'], world)).toEqual([
      'n-z',
      '10.244.0.3',
      '0.0.0.0/4',
    ]);
    expect(largeCidr('172.20.1.1')).toBe('160.0.0.0/4');
    expect(() => substitute('{{ns:w}}', world)).toThrow(/unknown namespace placeholder w/);
    expect(() => splitPod('w/a')).toThrow(/bad model pod w\/a/);
  });
  it('names container ports like model.go', () => {
    expect(containerPorts({ ports: [80, 81], protocols: ['TCP', 'UDP'] }).map((p) => p.name)).toEqual([
      'serve-80-tcp',
      'serve-81-tcp',
      'serve-80-udp',
      'serve-81-udp',
    ]);
  });
});

describe('validations', () => {
  const base: UpstreamCase = { name: 't', pods: ['x/a', 'x/b'], ports: [80], protocols: ['TCP'], steps: [] };
  const deny = { metadata: { name: 'd' }, spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [] } };
  it('carries policies, updates, deletions and label changes to each validation', () => {
    const snaps = [
      ...validations(
        {
          ...base,
          steps: [
            { createPolicy: deny, namespace: 'x' },
            { validate: { port: 80, protocol: 'TCP', expect: [] } },
            { updatePolicy: { ...deny, spec: { ...deny.spec, ingress: [{}] } }, namespace: 'x' },
            { addPodLabels: 'x/b', labels: { role: 'client' } },
            { addNamespaceLabel: 'y', key: 'team', value: 'y' },
            { validate: { port: 80, protocol: 'TCP', expect: [] } },
            { cleanNetworkPolicies: true },
            { validate: { port: 80, protocol: 'TCP', expect: [] } },
          ],
        },
        world,
      ),
    ];
    expect(snaps.map((s) => s.step)).toEqual([1, 5, 7]);
    expect(snaps[0]!.policies).toEqual([{ ...deny, metadata: { name: 'd', namespace: 'n-x' } }]);
    expect(snaps[1]!.policies[0]!.spec.ingress).toEqual([{}]);
    expect(snaps[1]!.pods[1]!.metadata.labels).toEqual({ pod: 'b', role: 'client' });
    expect(snaps[0]!.pods[1]!.metadata.labels).toEqual({ pod: 'b' });
    expect(snaps[1]!.namespaces[1]!.metadata.labels).toEqual({
      'kubernetes.io/metadata.name': 'n-y',
      team: 'y',
    });
    expect(snaps[2]!.policies).toEqual([]);
  });
  it('refuses a case that creates twice, updates what does not exist or labels a pod outside it', () => {
    const run = (steps: UpstreamCase['steps']) => [...validations({ ...base, steps }, world)];
    expect(() =>
      run([
        { createPolicy: deny, namespace: 'x' },
        { createPolicy: deny, namespace: 'x' },
      ]),
    ).toThrow(/created twice/);
    expect(() => run([{ updatePolicy: deny, namespace: 'x' }])).toThrow(/updated before it exists/);
    expect(() => run([{ addPodLabels: 'y/a', labels: {} }])).toThrow(/y\/a, not in the model/);
  });
  it('every ported case is well formed (its steps replay and it validates at least once)', () => {
    for (const c of UPSTREAM_CASES) expect([...validations(c, world)].length, c.name).toBeGreaterThan(0);
  });
});

describe('known failures', () => {
  it('are real cases, each with a reason, and the README lists each', () => {
    const readme = readFileSync(join(import.meta.dirname, 'README.md'), 'utf8');
    const names = new Set(UPSTREAM_CASES.map((c) => c.name));
    expect(Object.keys(KNOWN_FAILURES).length).toBeGreaterThan(0);
    for (const [name, reason] of Object.entries(KNOWN_FAILURES)) {
      expect(names.has(name), name).toBe(true);
      expect(reason.length).toBeGreaterThan(20);
      // The README abbreviates the SCTP block's prefix after its first row.
      expect(readme).toContain(name.includes('using SCTP') ? name.slice(name.indexOf('using SCTP')) : name);
    }
  });
});
