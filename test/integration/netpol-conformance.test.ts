import { type ChildProcessWithoutNullStreams, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compare,
  expectedTable,
  pairs,
  render,
  substitute,
  validations,
  type World,
} from '../../hack/cluster/netpol/replay.ts';
import { buildRuleset, type Ruleset, transition } from '../../hack/cluster/netpol/rules.ts';
import {
  KNOWN_FAILURES,
  type Protocol,
  UPSTREAM,
  UPSTREAM_CASES,
} from '../../hack/cluster/netpol/upstream-cases.ts';

/**
 * Kubernetes' own NetworkPolicy e2e cases (hack/cluster/netpol/upstream-cases.ts, ported from
 * k8s.io/kubernetes v1.36.3) replayed against the enforcer's rule builder in the real kernel: the
 * nine model pods x/a … z/c are network namespaces routed through a private "node" namespace
 * (nothing on the host's own firewall changes), each serving TCP and UDP on 80 and 81 like
 * agnhost porter; for every validation step the builder's rules for that moment's policies, pods
 * and namespaces are loaded into the node with iptables-restore, exactly as the enforcer loads
 * them (rules.ts `transition`), and every cell of the case's matrix is probed with a real
 * connection. The same cases run on the real node, with agnhost, in `make conformance`.
 */
const id = randomBytes(2).toString('hex');
const NODE = `epc-${id}-node`;
const GATEWAY_IP = '169.254.1.1';
const MODEL_PODS = ['x', 'y', 'z'].flatMap((ns) => ['a', 'b', 'c'].map((p) => `${ns}/${p}`));
const IPS = new Map(MODEL_PODS.map((p, i) => [p, `10.252.0.${i + 2}`]));
const world: World = {
  namespaces: { x: `netpol-${id}-x`, y: `netpol-${id}-y`, z: `netpol-${id}-z` },
  ip: (pod) => {
    const ip = IPS.get(pod);
    if (!ip) throw new Error(`no model pod ${pod}`);
    return ip;
  },
};

const sh = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] }).toString();

// A pod: servers like agnhost porter (TCP accept, UDP echo, SCTP accept where the kernel has it)
// plus a prober answering "PROTO IP PORT" lines with 1 (connected) or 0, like agnhost connect.
// UDP probes bind a fresh source port each time, so no earlier allowed flow's conntrack entry
// can let a probe through.
const AGENT = `
import socket, sys, threading
def serve_tcp(port, proto=0):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    except OSError:
        return
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(128)
    while True:
        c, _ = s.accept(); c.close()
def serve_udp(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(2048); s.sendto(d, a)
for port in (80, 81):
    threading.Thread(target=serve_tcp, args=(port,), daemon=True).start()
    threading.Thread(target=serve_tcp, args=(port, socket.IPPROTO_SCTP), daemon=True).start()
    threading.Thread(target=serve_udp, args=(port,), daemon=True).start()
udp_port = 20000
def probe(proto, ip, port):
    global udp_port
    try:
        if proto == "UDP":
            udp_port += 1
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("0.0.0.0", udp_port)); s.settimeout(2); s.connect((ip, port)); s.send(b"x"); s.recv(16)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP if proto == "SCTP" else 0)
            s.settimeout(2); s.connect((ip, port))
        s.close()
        return "1"
    except OSError:
        return "0"
print("ready", flush=True)
for line in sys.stdin:
    proto, ip, port = line.split()
    print(probe(proto, ip, int(port)), flush=True)
`;

class Agent {
  private readonly waiting: Array<(line: string) => void> = [];
  readonly ready: Promise<void>;
  private readonly proc: ChildProcessWithoutNullStreams;
  constructor(proc: ChildProcessWithoutNullStreams) {
    this.proc = proc;
    const lines = createInterface({ input: proc.stdout });
    let markReady: () => void;
    this.ready = new Promise((r) => (markReady = r));
    lines.on('line', (line) => (line === 'ready' ? markReady() : this.waiting.shift()?.(line)));
  }
  probe(protocol: Protocol, ip: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
      this.waiting.push((line) => resolve(line === '1'));
      this.proc.stdin.write(`${protocol} ${ip} ${port}\n`);
    });
  }
  kill() {
    this.proc.kill('SIGKILL');
  }
}
const agents = new Map<string, Agent>();
const netnsOf = (pod: string) => `epc-${id}-${pod.replace('/', '')}`;

/** A pod namespace wired to the node by a routed veth (the node answers ARP for everyone). */
function wire(pod: string) {
  const netns = netnsOf(pod);
  const ip = world.ip(pod);
  const veth = `ec${id}${pod.replace('/', '')}`;
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
  sh('ip', ['netns', 'exec', NODE, 'sysctl', '-qw', `net.ipv4.conf.${veth}.proxy_arp=1`]);
  const agent = new Agent(spawn('ip', ['netns', 'exec', netns, 'python3', '-u', '-c', AGENT]));
  agents.set(pod, agent);
  return agent.ready;
}

let owned: string[] = [];
/** Loads a ruleset into the node the way the enforcer does (one iptables-restore). */
function load(ruleset: Ruleset) {
  execFileSync('ip', ['netns', 'exec', NODE, 'iptables-restore', '--noflush', '-w', '5'], {
    input: transition(ruleset, owned),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  owned = ruleset.chains;
}

async function observe(pods: string[], protocol: Protocol, port: number) {
  const seen = new Map<string, boolean>();
  await Promise.all(
    pairs(pods).map(async ({ from, to }) =>
      seen.set(`${from}>${to}`, await agents.get(from)!.probe(protocol, world.ip(to), port)),
    ),
  );
  return (from: string, to: string) => from === to || seen.get(`${from}>${to}`) === true;
}

beforeAll(async () => {
  sh('ip', ['netns', 'add', NODE]);
  sh('ip', ['-n', NODE, 'link', 'set', 'lo', 'up']);
  sh('ip', ['netns', 'exec', NODE, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  // REJECT answers with ICMP, which the kernel rate-limits per destination (6, then 1 a second):
  // a pod denied more often than that would see timeouts instead of refusals — same verdict, slower.
  sh('ip', ['netns', 'exec', NODE, 'sysctl', '-qw', 'net.ipv4.icmp_ratelimit=0']);
  await Promise.all(MODEL_PODS.map(wire));
  load(buildRuleset([], [], []));
  for (const hook of ['FORWARD', 'INPUT'])
    sh('ip', ['netns', 'exec', NODE, 'iptables', '-w', '5', '-I', hook, '1', '-j', 'EPNP']);
}, 60_000);

afterAll(() => {
  for (const a of agents.values()) a.kill();
  for (const pod of MODEL_PODS) spawnSync('ip', ['netns', 'del', netnsOf(pod)]);
  spawnSync('ip', ['netns', 'del', NODE]);
});

describe(`upstream NetworkPolicy cases (${UPSTREAM.module} ${UPSTREAM.version} ${UPSTREAM.file}) against the rule builder`, () => {
  it('every model pod reaches every other over TCP and UDP while no policy exists (so denials below come from the rules)', async () => {
    for (const protocol of ['TCP', 'UDP'] as const)
      for (const port of [80, 81]) {
        const seen = await observe(MODEL_PODS, protocol, port);
        expect(compare(expectedTable(MODEL_PODS, []), seen), `${protocol}/${port}`).toEqual([]);
      }
  });

  it('ports every upstream case, and lists only real cases as expected failures', () => {
    expect(UPSTREAM_CASES).toHaveLength(48);
    expect(new Set(UPSTREAM_CASES.map((c) => c.name)).size).toBe(48);
    const names = new Set(UPSTREAM_CASES.map((c) => c.name));
    expect(Object.keys(KNOWN_FAILURES).filter((n) => !names.has(n))).toEqual([]);
  });

  it('this kernel has no SCTP (the reason the SCTP cases are expected failures)', () => {
    const res = spawnSync('python3', [
      '-c',
      'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP)',
    ]);
    expect(res.stderr.toString()).toMatch(/Protocol not supported/);
  });

  it.each(UPSTREAM_CASES.map((c) => [c.name, c] as const))('%s', async (name, c) => {
    const failures: string[] = [];
    for (const snap of validations(c, world)) {
      load(buildRuleset(snap.policies, snap.pods, snap.namespaces));
      const seen = await observe(c.pods, snap.protocol, snap.port);
      const wrong = compare(snap.expected, seen);
      if (wrong.length)
        failures.push(
          `step ${snap.step} (${snap.protocol}/${snap.port}): ${wrong.length} wrong\nexpected:\n${render(c.pods, (f, t) => snap.expected.get(f)!.get(t)!)}\nobserved:\n${render(c.pods, seen)}\npolicies: ${JSON.stringify(snap.policies)}`,
        );
    }
    load(buildRuleset([], [], []));
    const reason = KNOWN_FAILURES[name];
    if (reason) expect(failures.length, `expected to fail: ${reason}`).toBeGreaterThan(0);
    else expect(failures.join('\n\n')).toBe('');
  });

  it('placeholders resolve to the run’s names and addresses (upstream makeLargeCIDRForIP is the /4)', () => {
    expect(substitute({ a: '{{ns:y}}', b: '{{ip:x/b}}/32', c: '{{cidr4:x/b}}' }, world)).toEqual({
      a: world.namespaces.y,
      b: '10.252.0.3/32',
      c: '0.0.0.0/4',
    });
    expect(() => substitute('{{ip:w/a}}', world)).toThrow(/no model pod w\/a/);
  });
});
