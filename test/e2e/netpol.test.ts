import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { findBinary } from '../../hack/cluster/assets.ts';
import {
  compare,
  containerPorts,
  expectedTable,
  pairs,
  render,
  splitPod,
  substitute,
  type Table,
  type World,
} from '../../hack/cluster/netpol/replay.ts';
import {
  KNOWN_FAILURES,
  type NamespaceKey,
  type Protocol,
  type Step,
  UPSTREAM,
  UPSTREAM_CASES,
  type UpstreamCase,
} from '../../hack/cluster/netpol/upstream-cases.ts';

/**
 * Kubernetes' NetworkPolicy e2e cases (hack/cluster/netpol/upstream-cases.ts, from k8s.io/kubernetes
 * v1.36.3) on the real node, the way upstream runs them: agnhost `porter` pods (localhost/agnhost,
 * built from the module) behind one Service each, policies created through the API server and
 * enforced by the node's enforcer, every cell probed with `kubectl exec … /agnhost connect
 * <ClusterIP>:<port>` and retried while it disagrees (upstream: 1 s interval, 10 s). Pods are
 * shared between cases (x/a … z/c, serving TCP and UDP on 80 and 81; no SCTP in this kernel) and
 * reset after each — the truth for a pair never depends on pods outside it.
 *
 * `make e2e` runs a focused subset; `make conformance` (EPREUVE_NETPOL_CASES=all) runs all 48.
 */
const { kubeconfig } = inject('e2e');
const ALL = process.env.EPREUVE_NETPOL_CASES === 'all';
const TCP = '[sig-network] Netpol NetworkPolicy between server and client';
const FOCUSED = [
  `${TCP} should support a 'default-deny-ingress' policy`,
  `${TCP} should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector`,
  `${TCP} should allow ingress access on one named port`,
  `${TCP} should deny egress from all pods in a namespace`,
  `${TCP} should allow egress access on one named port`,
];
const CASES = ALL ? UPSTREAM_CASES : UPSTREAM_CASES.filter((c) => FOCUSED.includes(c.name));
const PODS = [...new Set(CASES.flatMap((c) => c.pods))].sort();
const IMAGE = 'localhost/agnhost:2.63';
const id = randomBytes(2).toString('hex');
const world: World = {
  namespaces: { x: `netpol-${id}-x`, y: `netpol-${id}-y`, z: `netpol-${id}-z` },
  ip: (pod) => {
    const ip = podIPs.get(pod);
    if (!ip) throw new Error(`no IP for ${pod}`);
    return ip;
  },
};
const podIPs = new Map<string, string>();
const serviceIPs = new Map<string, string>();
const execFileAsync = promisify(execFile);

async function kubectl(args: string[], input?: string): Promise<string> {
  const child = execFileAsync(findBinary('kubectl'), [`--kubeconfig=${kubeconfig}`, ...args], {
    maxBuffer: 16 << 20,
  });
  if (input !== undefined) child.child.stdin?.end(input);
  return (await child).stdout;
}

/** At most `n` at once (each probe is a kubectl exec; the node has 2 cores). */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>) {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

/** kubemanager.go probeConnectivity: agnhost connect from a pod to the target's Service IP. */
async function connects(from: string, to: string, protocol: Protocol, port: number): Promise<boolean> {
  const { ns, name } = splitPod(from);
  return kubectl([
    '-n',
    world.namespaces[ns],
    'exec',
    name,
    '-c',
    'agnhost',
    '--',
    '/agnhost',
    'connect',
    `${serviceIPs.get(to)}:${port}`,
    '--timeout=1s',
    `--protocol=${protocol.toLowerCase()}`,
  ]).then(
    () => true,
    () => false,
  );
}

/** Probes every cell, then re-probes the ones that disagree each second for up to 10 s. */
async function observe(pods: string[], expected: Table, protocol: Protocol, port: number) {
  const seen = new Map<string, boolean>();
  const probe = async ({ from, to }: { from: string; to: string }) => {
    seen.set(`${from}>${to}`, await connects(from, to, protocol, port));
  };
  const cell = (from: string, to: string) => from === to || seen.get(`${from}>${to}`) === true;
  await pool(pairs(pods), 6, probe);
  for (let tries = 0; tries < 10; tries++) {
    const wrong = compare(expected, cell);
    if (wrong.length === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
    await pool(wrong, 6, probe);
  }
  return cell;
}

function podManifest(ref: string) {
  const { ns, name } = splitPod(ref);
  const model = { ports: [80, 81] as Array<80 | 81>, protocols: ['TCP', 'UDP'] as Protocol[] };
  return [
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: world.namespaces[ns], labels: { pod: name } },
      spec: {
        terminationGracePeriodSeconds: 0,
        containers: [
          {
            name: 'agnhost',
            image: IMAGE,
            imagePullPolicy: 'Never',
            command: ['/agnhost', 'porter'],
            env: containerPorts(model).map((p) => ({
              name: `SERVE_${p.protocol}_PORT_${p.containerPort}`,
              value: 'foo',
            })),
            ports: containerPorts(model),
          },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: `s-${world.namespaces[ns]}-${name}`, namespace: world.namespaces[ns] },
      spec: {
        selector: { pod: name },
        ports: containerPorts(model).map((p) => ({
          name: `service-port-${p.protocol.toLowerCase()}-${p.containerPort}`,
          protocol: p.protocol,
          port: p.containerPort,
        })),
      },
    },
  ];
}

const settle = () => new Promise((r) => setTimeout(r, 1000));

/** Applies one step through the API server (upstream's CreatePolicy, UpdatePolicy, …). */
async function apply(step: Step) {
  const nsName = (k: NamespaceKey) => world.namespaces[k];
  if ('createPolicy' in step || 'updatePolicy' in step) {
    const policy = 'createPolicy' in step ? step.createPolicy : step.updatePolicy;
    const body = JSON.stringify({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      ...policy,
      metadata: { ...policy.metadata, namespace: nsName(step.namespace) },
    });
    await kubectl(['createPolicy' in step ? 'create' : 'replace', '-f', '-'], body);
  } else if ('cleanNetworkPolicies' in step) {
    for (const k of ['x', 'y', 'z'] as const)
      await kubectl(['-n', nsName(k), 'delete', 'networkpolicy', '--all']);
  } else if ('addNamespaceLabel' in step) {
    await kubectl([
      'label',
      'namespace',
      nsName(step.addNamespaceLabel),
      `${step.key}=${step.value}`,
      '--overwrite',
    ]);
  } else if ('addPodLabels' in step) {
    const { ns, name } = splitPod(step.addPodLabels);
    await kubectl([
      '-n',
      nsName(ns),
      'label',
      'pod',
      name,
      '--overwrite',
      ...Object.entries(step.labels).map(([k, v]) => `${k}=${v}`),
    ]);
  }
}

/** Undoes a case: its policies, and the labels it added (upstream's DeferCleanup). */
async function reset(c: UpstreamCase) {
  await apply({ cleanNetworkPolicies: true });
  for (const step of c.steps) {
    if ('addNamespaceLabel' in step)
      await kubectl(['label', 'namespace', world.namespaces[step.addNamespaceLabel], `${step.key}-`]);
    if ('addPodLabels' in step) {
      const { ns, name } = splitPod(step.addPodLabels);
      await kubectl([
        '-n',
        world.namespaces[ns],
        'patch',
        'pod',
        name,
        '--type=json',
        `-p=${JSON.stringify([{ op: 'replace', path: '/metadata/labels', value: { pod: name } }])}`,
      ]);
    }
  }
}

const started = Date.now();
beforeAll(async () => {
  await kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: (['x', 'y', 'z'] as const).map((k) => ({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: world.namespaces[k] },
      })),
    }),
  );
  await kubectl(
    ['apply', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: PODS.flatMap(podManifest) }),
  );
  // `wait --all` in a namespace without pods fails: only the namespaces the cases populate.
  for (const k of new Set(PODS.map((p) => splitPod(p).ns)))
    await kubectl([
      '-n',
      world.namespaces[k],
      'wait',
      '--for=condition=Ready',
      'pod',
      '--all',
      '--timeout=180s',
    ]);
  for (const ref of PODS) {
    const { ns, name } = splitPod(ref);
    const n = world.namespaces[ns];
    podIPs.set(ref, (await kubectl(['-n', n, 'get', 'pod', name, '-o', 'jsonpath={.status.podIP}'])).trim());
    serviceIPs.set(
      ref,
      (
        await kubectl(['-n', n, 'get', 'service', `s-${n}-${name}`, '-o', 'jsonpath={.spec.clusterIP}'])
      ).trim(),
    );
  }
  console.log(`netpol: ${PODS.length} agnhost pods ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}, 300_000);

afterAll(async () => {
  await kubectl(['delete', 'namespace', '--wait=false', ...Object.values(world.namespaces)]).catch(() => {});
  console.log(`netpol: ${CASES.length} upstream cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});

describe(`upstream NetworkPolicy cases (${UPSTREAM.module} ${UPSTREAM.version}) on the node${ALL ? '' : ' (focused subset; make conformance runs all)'}`, () => {
  it('runs the cases it names', () => {
    expect(CASES.length).toBe(ALL ? 48 : FOCUSED.length);
  });

  it.each(CASES.map((c) => [c.name, c] as const))(
    '%s',
    async (name, c) => {
      const failures: string[] = [];
      try {
        // upstream waitForHTTPServers: every cell connects before the case starts (here it also
        // proves the previous case's policies are gone).
        for (const protocol of c.protocols.filter((p) => p !== 'SCTP'))
          for (const port of c.ports) {
            const all = expectedTable(c.pods, []);
            const seen = await observe(c.pods, all, protocol, port);
            const wrong = compare(all, seen);
            if (wrong.length)
              throw new Error(
                `servers not reachable before the case (${protocol}/${port}):\n${render(c.pods, seen)}`,
              );
          }
        for (const [i, raw] of c.steps.entries()) {
          const step = substitute(raw, world);
          if (!('validate' in step)) {
            await apply(step);
            // Give the enforcer its moment before probing (probes also retry while they disagree).
            if (c.steps[i + 1] && 'validate' in c.steps[i + 1]!) await settle();
            continue;
          }
          const { port, protocol, expect: ops } = step.validate;
          const expected = expectedTable(c.pods, ops);
          const seen = await observe(c.pods, expected, protocol, port);
          const wrong = compare(expected, seen);
          if (wrong.length)
            failures.push(
              `step ${i} (${protocol}/${port}): ${wrong.length} wrong\nexpected:\n${render(c.pods, (f, t) => expected.get(f)!.get(t)!)}\nobserved:\n${render(c.pods, seen)}`,
            );
        }
      } finally {
        await reset(c);
      }
      const reason = KNOWN_FAILURES[name];
      if (reason) expect(failures.length, `expected to fail: ${reason}`).toBeGreaterThan(0);
      else expect(failures.join('\n\n')).toBe('');
    },
    180_000,
  );
});
