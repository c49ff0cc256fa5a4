/**
 * Turns the upstream cases (upstream-cases.ts) into concrete objects and truth tables, the way
 * upstream's kubemanager.go, model.go and reachability.go do: pods labelled `pod=<name>` with one
 * agnhost container serving each (port, protocol) on a port named `serve-<port>-<proto>`,
 * namespaces labelled `kubernetes.io/metadata.name`, a matrix that starts all-allowed and is
 * edited by the case's operations, loopback ignored. Used by the integration replay (rule builder
 * in network namespaces) and by the e2e/conformance runs (the real node).
 */
import type { Namespace, NetworkPolicy, Pod } from './rules.ts';
import type { Expectation, NamespaceKey, Peer, Protocol, Step, UpstreamCase } from './upstream-cases.ts';

export interface World {
  /** Real namespace name for x, y, z. */
  namespaces: Record<NamespaceKey, string>;
  /** A model pod's IP ("x/b" → "10.244.0.7"). */
  ip: (pod: string) => string;
}

/** upstream makeLargeCIDRForIP: the /4 holding the IP. */
export function largeCidr(ip: string): string {
  const first = Number(ip.split('.')[0]);
  return `${first & 0xf0}.0.0.0/4`;
}

/** Fills the {{ns:x}}, {{ip:x/b}} and {{cidr4:x/b}} placeholders anywhere in a value. */
export function substitute<T>(value: T, world: World): T {
  const text = JSON.stringify(value).replace(
    /\{\{(ns|ip|cidr4):([^}]+)\}\}/g,
    (_, kind: string, arg: string) => {
      if (kind === 'ns') {
        const name = world.namespaces[arg as NamespaceKey];
        if (!name) throw new Error(`unknown namespace placeholder ${arg}`);
        return name;
      }
      const ip = world.ip(arg);
      return kind === 'ip' ? ip : largeCidr(ip);
    },
  );
  return JSON.parse(text) as T;
}

export const splitPod = (ref: string): { ns: NamespaceKey; name: string } => {
  const [ns, name] = ref.split('/');
  if (!ns || !name || !['x', 'y', 'z'].includes(ns)) throw new Error(`bad model pod ${ref}: want x/a`);
  return { ns: ns as NamespaceKey, name };
};

/** model.go's Pod.ContainerSpecs: one port per (protocol, port), named serve-<port>-<proto>. */
export function containerPorts(c: Pick<UpstreamCase, 'ports' | 'protocols'>) {
  return c.protocols.flatMap((protocol) =>
    c.ports.map((port) => ({
      name: `serve-${port}-${protocol.toLowerCase()}`,
      containerPort: port,
      protocol,
    })),
  );
}

/** Truth table: expected[from][to], pods as "x/a". */
export type Table = Map<string, Map<string, boolean>>;

const peerMatches = (p: Peer, ref: string) => {
  const { ns, name } = splitPod(ref);
  return (p.ns === undefined || p.ns === ns) && (p.pod === undefined || p.pod === name);
};

/** reachability.go: NewReachability(pods, true) then the case's operations in order. */
export function expectedTable(pods: string[], ops: Expectation[]): Table {
  const t: Table = new Map(pods.map((f) => [f, new Map(pods.map((to) => [to, true]))]));
  const set = (from: string, to: string, v: boolean) => {
    const row = t.get(from);
    if (!row?.has(to))
      throw new Error(`expectation names ${from} → ${to}, not in the model ${pods.join(',')}`);
    row.set(to, v);
  };
  for (const op of ops) {
    if (op.op === 'Expect') set(op.from, op.to, op.connected);
    else if (op.op === 'ExpectAllIngress') for (const f of pods) set(f, op.pod, op.connected);
    else if (op.op === 'ExpectAllEgress') for (const to of pods) set(op.pod, to, op.connected);
    else
      for (const f of pods.filter((p) => peerMatches(op.from, p)))
        for (const to of pods.filter((p) => peerMatches(op.to, p))) set(f, to, op.connected);
  }
  return t;
}

export interface Mismatch {
  from: string;
  to: string;
  expected: boolean;
}
/** The wrong cells, loopback ignored (upstream's ignoreLoopback = true). */
export function compare(expected: Table, observed: (from: string, to: string) => boolean): Mismatch[] {
  const out: Mismatch[] = [];
  for (const [from, row] of expected)
    for (const [to, want] of row)
      if (from !== to && observed(from, to) !== want) out.push({ from, to, expected: want });
  return out;
}

/** The pairs to probe (every cell but loopback). */
export const pairs = (pods: string[]) =>
  pods.flatMap((from) => pods.filter((to) => to !== from).map((to) => ({ from, to })));

/** A printable matrix, like upstream's PrettyPrint (. = allowed, X = denied). */
export function render(pods: string[], cell: (from: string, to: string) => boolean): string {
  return [
    `${'-'.padEnd(6)}${pods.map((p) => p.padEnd(5)).join('')}`,
    ...pods.map((f) => `${f.padEnd(6)}${pods.map((to) => (cell(f, to) ? '.' : 'X').padEnd(5)).join('')}`),
  ].join('\n');
}

/**
 * Cluster state as a case's steps leave it, for the rule builder: pods (with the IPs `world`
 * gives), the three namespaces, the policies. `validations` yields each `validate` step with the
 * state at that moment.
 */
export interface Snapshot {
  step: number;
  port: number;
  protocol: Protocol;
  expected: Table;
  pods: Pod[];
  namespaces: Namespace[];
  policies: NetworkPolicy[];
}
export function* validations(c: UpstreamCase, world: World): Generator<Snapshot> {
  const nsLabels: Record<NamespaceKey, Record<string, string>> = { x: {}, y: {}, z: {} };
  for (const k of ['x', 'y', 'z'] as const) nsLabels[k]['kubernetes.io/metadata.name'] = world.namespaces[k];
  const podLabels = new Map(c.pods.map((p) => [p, { pod: splitPod(p).name } as Record<string, string>]));
  let policies: NetworkPolicy[] = [];
  const ports = containerPorts(c);
  for (const [i, raw] of c.steps.entries()) {
    const step = substitute(raw, world) as Step;
    if ('createPolicy' in step || 'updatePolicy' in step) {
      const p = 'createPolicy' in step ? step.createPolicy : step.updatePolicy;
      const namespace = world.namespaces[step.namespace];
      const exists = policies.some(
        (q) => q.metadata.namespace === namespace && q.metadata.name === p.metadata.name,
      );
      if ('createPolicy' in step && exists)
        throw new Error(`${c.name}: policy ${p.metadata.name} created twice`);
      if ('updatePolicy' in step && !exists)
        throw new Error(`${c.name}: policy ${p.metadata.name} updated before it exists`);
      policies = [
        ...policies.filter(
          (q) => !(q.metadata.namespace === namespace && q.metadata.name === p.metadata.name),
        ),
        { ...p, metadata: { ...p.metadata, namespace } },
      ];
    } else if ('cleanNetworkPolicies' in step) policies = [];
    else if ('addNamespaceLabel' in step) nsLabels[step.addNamespaceLabel][step.key] = step.value;
    else if ('addPodLabels' in step) {
      const labels = podLabels.get(step.addPodLabels);
      if (!labels) throw new Error(`${c.name}: addPodLabels names ${step.addPodLabels}, not in the model`);
      Object.assign(labels, step.labels);
    } else
      yield {
        step: i,
        port: step.validate.port,
        protocol: step.validate.protocol,
        expected: expectedTable(c.pods, step.validate.expect),
        policies: structuredClone(policies),
        namespaces: (['x', 'y', 'z'] as const).map((k) => ({
          metadata: { name: world.namespaces[k], labels: { ...nsLabels[k] } },
        })),
        pods: c.pods.map((ref) => ({
          metadata: {
            namespace: world.namespaces[splitPod(ref).ns],
            name: splitPod(ref).name,
            labels: { ...podLabels.get(ref) },
          },
          spec: { containers: [{ ports }] },
          status: { podIP: world.ip(ref), phase: 'Running' },
        })),
      };
  }
}
