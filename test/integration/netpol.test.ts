import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resourceFor } from '@epreuve/kube';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NetpolEnforcer } from '../../hack/cluster/netpol/enforcer.ts';
import { namespaceOf, networkPolicies } from '../../operator/src/assessment/desired.ts';
import { assessment, template } from '../../operator/src/assessment/fixtures.test-helpers.ts';
import { loadConfig } from '../../operator/src/config.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';

/**
 * The local cluster's NetworkPolicy enforcer against the real kernel: "pods" are network
 * namespaces routed through a private "node" namespace (so the host's own firewall is never
 * touched), their Pod and NetworkPolicy objects live in the real API server, and the policies are
 * the ones the operator builds for candidate namespaces. Connections are real TCP connects.
 */
const kubeconfig = inject('kubeconfig');
const id = randomBytes(2).toString('hex');
const NODE = `epnp-${id}-node`;
const GATEWAY_IP = '169.254.1.1';
const OUTSIDE_IP = '192.0.2.10';
const client = kube(kubeconfig);
const POD = resourceFor('v1', 'Pod');
const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const inNode = (args: string[]) => sh('ip', ['netns', 'exec', NODE, ...args]);

interface FakePod {
  netns: string;
  ip: string;
  namespace: string;
  name: string;
}
const listeners: ChildProcess[] = [];
const pods: Record<string, FakePod> = {};
let enforcer: NetpolEnforcer;
const abort = new AbortController();
let platform: string;
let candA: string;
let candB: string;

/** A network namespace wired to the node by a routed veth, listening on TCP 5432. */
function wire(key: string, ip: string, host: string) {
  const netns = `epnp-${id}-${key}`;
  const veth = `ep${id}${key}`.slice(0, 15);
  sh('ip', ['netns', 'add', netns]);
  sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  sh('ip', ['link', 'set', veth, 'netns', NODE]);
  for (const args of [
    ['addr', 'add', `${ip}/32`, 'dev', 'eth0'],
    ['link', 'set', 'eth0', 'up'],
    ['link', 'set', 'lo', 'up'],
    ['route', 'add', GATEWAY_IP, 'dev', 'eth0'],
    ['route', 'add', 'default', 'via', GATEWAY_IP, 'dev', 'eth0'],
  ])
    sh('ip', ['-n', netns, ...args]);
  for (const args of [
    ['link', 'set', veth, 'up'],
    ['addr', 'add', `${GATEWAY_IP}/32`, 'dev', veth],
    ['route', 'add', `${ip}/32`, 'dev', veth],
  ])
    sh('ip', ['-n', NODE, ...args]);
  inNode(['sysctl', '-qw', `net.ipv4.conf.${veth}.proxy_arp=1`]);
  const server = spawn('ip', [
    'netns',
    'exec',
    netns,
    'python3',
    '-c',
    `import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(("${host}",5432))\ns.listen(64)\nwhile True:\n  c,_=s.accept(); c.close()`,
  ]);
  listeners.push(server);
  return netns;
}

/** A real TCP connect from one namespace to an address: true when it is accepted. */
function connects(fromNetns: string, ip: string, port = 5432): boolean {
  const res = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      fromNetns,
      'python3',
      '-c',
      'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)',
      ip,
      String(port),
    ],
    { timeout: 10_000 },
  );
  return res.status === 0;
}
const can = (from: string, to: string) => connects(pods[from]!.netns, pods[to]!.ip);

async function createPod(key: string, namespace: string, ip: string, labels: Record<string, string>) {
  const name = key;
  // A new namespace gets its default ServiceAccount a moment later; admission waits for it.
  const body = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels },
    spec: {
      containers: [
        { name: 'c', image: 'localhost/pause:3.10', ports: [{ name: 'pg', containerPort: 5432 }] },
      ],
    },
  };
  await eventually(() => client.create(body), 15_000);
  await client.mergePatch(
    POD,
    namespace,
    name,
    { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } },
    'status',
  );
  pods[key] = { netns: wire(key, ip, '0.0.0.0'), ip, namespace, name };
}

beforeAll(async () => {
  sh('ip', ['netns', 'add', NODE]);
  inNode(['ip', 'link', 'set', 'lo', 'up']);
  inNode(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // "Outside": a host beyond the node, reached through it (a documentation address, on a veth).
  const outside = `epnp-${id}-out`;
  sh('ip', ['netns', 'add', outside]);
  sh('ip', ['link', 'add', `ep${id}out`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', outside]);
  sh('ip', ['link', 'set', `ep${id}out`, 'netns', NODE]);
  sh('ip', ['-n', outside, 'addr', 'add', `${OUTSIDE_IP}/24`, 'dev', 'eth0']);
  sh('ip', ['-n', outside, 'link', 'set', 'eth0', 'up']);
  sh('ip', ['-n', NODE, 'addr', 'add', '192.0.2.1/24', 'dev', `ep${id}out`]);
  sh('ip', ['-n', NODE, 'link', 'set', `ep${id}out`, 'up']);
  sh('ip', ['-n', outside, 'route', 'add', 'default', 'via', '192.0.2.1', 'dev', 'eth0']);
  listeners.push(
    spawn('ip', [
      'netns',
      'exec',
      outside,
      'python3',
      '-c',
      `import socket\ns=socket.socket()\ns.bind(("0.0.0.0",5432))\ns.listen(64)\nwhile True:\n  c,_=s.accept(); c.close()`,
    ]),
  );
  pods.outside = { netns: outside, ip: OUTSIDE_IP, namespace: '', name: 'outside' };

  // Two candidate namespaces as the operator makes them, and a platform namespace.
  platform = await createTestNamespace(kubeconfig, 'epnp-platform');
  const config = loadConfig({ EPREUVE_PLATFORM_NAMESPACE: platform });
  const team = `team-${id}`;
  const ctxA = {
    assessment: assessment({}, { name: `a-${id}`, namespace: team }),
    template: template(),
    config,
  };
  const ctxB = {
    assessment: assessment({}, { name: `b-${id}`, namespace: team }),
    template: template(),
    config,
  };
  candA = namespaceOf(ctxA.assessment);
  candB = namespaceOf(ctxB.assessment);
  for (const ns of [candA, candB])
    await client.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const p of [...networkPolicies(ctxA), ...networkPolicies(ctxB)]) await client.create(p);

  await createPod('adb', candA, '10.251.0.2', { app: 'db' });
  await createPod('aseed', candA, '10.251.0.3', { app: 'seed' });
  await createPod('bdb', candB, '10.251.0.4', { app: 'db' });
  await createPod('api', platform, '10.251.0.5', { app: 'api' });
  // The node's own address, as a pod would see the kubelet or a host service.
  listeners.push(
    spawn('ip', [
      'netns',
      'exec',
      NODE,
      'python3',
      '-c',
      `import socket\ns=socket.socket()\ns.bind(("${GATEWAY_IP}",5432))\ns.listen(64)\nwhile True:\n  c,_=s.accept(); c.close()`,
    ]),
  );
  await eventually(async () => expect(can('adb', 'bdb') && can('adb', 'outside')).toBe(true), 15_000);
}, 120_000);

afterAll(async () => {
  abort.abort();
  await enforcer?.stop().catch(() => {});
  for (const l of listeners) l.kill('SIGKILL');
  for (const p of Object.values(pods)) spawnSync('ip', ['netns', 'del', p.netns]);
  spawnSync('ip', ['netns', 'del', NODE]);
});

describe('NetworkPolicy enforcer', () => {
  it('everything connects while nothing enforces (so the denials below come from the enforcer)', () => {
    expect([can('adb', 'bdb'), can('bdb', 'adb'), can('adb', 'outside'), can('adb', 'api')]).toEqual([
      true,
      true,
      true,
      true,
    ]);
  });

  it('enforces the operator’s candidate policies: same namespace and platform in, nothing else in or out', async () => {
    enforcer = new NetpolEnforcer(client, {
      wrap: ['ip', 'netns', 'exec', NODE],
      log: pino({ level: 'warn' }),
    });
    await enforcer.run(abort.signal);
    await enforcer.settled();
    expect({
      sameNamespace: can('aseed', 'adb'),
      platformToSandbox: can('api', 'adb'),
      aToB: can('adb', 'bdb'),
      bToA: can('bdb', 'adb'),
      sandboxToPlatform: can('adb', 'api'),
      sandboxToOutside: can('adb', 'outside'),
      sandboxToNode: connects(pods.adb!.netns, GATEWAY_IP),
    }).toEqual({
      sameNamespace: true,
      platformToSandbox: true,
      aToB: false,
      bToA: false,
      sandboxToPlatform: false,
      sandboxToOutside: false,
      sandboxToNode: false,
    });
  });

  it('writes nothing while nothing changes', async () => {
    const before = enforcer.writes;
    await new Promise((r) => setTimeout(r, 1500));
    await enforcer.settled();
    expect(enforcer.writes).toBe(before);
  });

  it('follows changes: without B’s policies, B is open again; A stays closed', async () => {
    for (const name of ['default-deny', 'allow-same-namespace', 'allow-platform-ingress'])
      await client.delete(resourceFor('networking.k8s.io/v1', 'NetworkPolicy'), candB, name);
    await eventually(async () => expect(can('bdb', 'outside')).toBe(true), 10_000);
    expect(can('api', 'bdb')).toBe(true);
    expect(can('bdb', 'adb')).toBe(false);
  });

  it('removes every rule and chain it added when stopped', async () => {
    await enforcer.stop();
    expect(inNode(['iptables-save', '-t', 'filter'])).not.toMatch(/EPNP/);
    expect(can('bdb', 'adb')).toBe(true);
  });
});
