import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The host side of the local node's network, kept to the node's own bridge: the pod range and the
 * Service range are routed to the bridge only, nothing is masqueraded, and a guard chain drops
 * anything forwarded between the bridge and the machine's other interfaces. Every step has its
 * undo in cleanHostNetwork(), which is idempotent so `make down` can run it after a crash.
 */
export const NODE_NETWORK = {
  bridge: 'epreuve0',
  podCidr: '10.244.0.0/24',
  gateway: '10.244.0.1',
  guardChain: 'EPREUVE-NODE',
} as const;

const SYSCTLS = ['net/ipv4/ip_forward', 'net/bridge/bridge-nf-call-iptables'] as const;

export interface HostNetworkState {
  /** Sysctl values before the node started, restored on stop. */
  sysctls: Record<string, string>;
  /** Network namespaces that existed before the node started (the node's pods add cni-*). */
  netnsBefore: string[];
  /** veth interfaces that existed before (the CNI bridge plugin adds one per pod). */
  vethsBefore: string[];
}

const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: 'pipe' }).toString();
const tryRun = (cmd: string, args: string[]) => {
  try {
    return run(cmd, args);
  } catch {
    return undefined;
  }
};

export function linkExists(name: string): boolean {
  return tryRun('ip', ['link', 'show', name]) !== undefined;
}

function listVeths(): string[] {
  const out = tryRun('ip', ['-o', 'link', 'show', 'type', 'veth']) ?? '';
  return [...out.matchAll(/^\d+: ([^@:]+)/gm)].map((m) => m[1]!);
}

function listNetns(): string[] {
  return existsSync('/run/netns') ? readdirSync('/run/netns') : [];
}

export function setUpHostNetwork(serviceCidr: string): HostNetworkState {
  const { bridge, podCidr, gateway, guardChain } = NODE_NETWORK;
  if (linkExists(bridge))
    throw new Error(
      `the network bridge ${bridge} already exists: another local cluster is running, or one was not cleaned up — run \`make down\``,
    );
  const state: HostNetworkState = { sysctls: {}, netnsBefore: listNetns(), vethsBefore: listVeths() };
  for (const s of SYSCTLS) {
    const path = join('/proc/sys', s);
    if (!existsSync(path))
      throw new Error(`${path} is missing: the node needs the br_netfilter module (modprobe br_netfilter)`);
    state.sysctls[s] = readFileSync(path, 'utf8').trim();
  }
  run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  run('ip', ['addr', 'add', `${gateway}/${podCidr.split('/')[1]}`, 'dev', bridge]);
  run('ip', ['link', 'set', bridge, 'up']);
  // Service IPs without endpoints must not follow the default route out of the machine.
  run('ip', ['route', 'add', serviceCidr, 'dev', bridge]);
  for (const s of SYSCTLS) writeFileSync(join('/proc/sys', s), '1');
  run('iptables', ['-w', '5', '-N', guardChain]);
  run('iptables', ['-w', '5', '-A', guardChain, '-i', bridge, '-o', bridge, '-j', 'RETURN']);
  run('iptables', ['-w', '5', '-A', guardChain, '-i', bridge, '-j', 'DROP']);
  run('iptables', ['-w', '5', '-A', guardChain, '-o', bridge, '-j', 'DROP']);
  run('iptables', ['-w', '5', '-I', 'FORWARD', '1', '-j', guardChain]);
  return state;
}

/** Removes what setUpHostNetwork and the node's pods added; safe to run twice or after a crash. */
export function cleanHostNetwork(state: HostNetworkState | undefined, serviceCidr: string): void {
  const { bridge, guardChain } = NODE_NETWORK;
  // The pods' network namespaces (CNI names them cni-<uuid>) and the veths left on the bridge.
  for (const ns of listNetns())
    if (ns.startsWith('cni-') && !(state?.netnsBefore ?? []).includes(ns))
      tryRun('ip', ['netns', 'delete', ns]);
  const links = tryRun('ip', ['-o', 'link', 'show', 'master', bridge]) ?? '';
  for (const m of links.matchAll(/^\d+: ([^@:]+)/gm)) tryRun('ip', ['link', 'delete', m[1]!]);
  if (state)
    for (const v of listVeths()) if (!state.vethsBefore.includes(v)) tryRun('ip', ['link', 'delete', v]);
  tryRun('ip', ['route', 'delete', serviceCidr, 'dev', bridge]);
  tryRun('ip', ['link', 'delete', bridge]);
  removeChains(['KUBE-', 'EPNP', guardChain]);
  for (const [s, value] of Object.entries(state?.sysctls ?? {})) writeFileSync(join('/proc/sys', s), value);
}

/**
 * Deletes every iptables chain whose name starts with one of `prefixes` (ours: the guard chain;
 * kubelet's and kube-proxy's KUBE-*; the NetworkPolicy enforcer's EPNP*) and the rules that jump to
 * them, in filter, nat and mangle, one atomic iptables-restore per table. Other rules stay.
 */
export function removeChains(prefixes: string[]): void {
  const ours = (chain: string) => prefixes.some((p) => chain.startsWith(p));
  for (const table of ['filter', 'nat', 'mangle']) {
    const saved = tryRun('iptables-save', ['-t', table]) ?? '';
    const chains = [...saved.matchAll(/^:(\S+) /gm)].map((m) => m[1]!).filter(ours);
    if (chains.length === 0) continue;
    const jumps = saved
      .split('\n')
      .filter(
        (l) =>
          /^-A \S+ /.test(l) &&
          !ours(l.split(' ')[1]!) &&
          / -[jg] (\S+)/.test(l) &&
          ours(/ -[jg] (\S+)/.exec(l)![1]!),
      )
      .map((l) => `-D${l.slice(2)}`);
    const script = [
      `*${table}`,
      ...jumps,
      ...chains.map((c) => `-F ${c}`),
      ...chains.map((c) => `-X ${c}`),
      'COMMIT',
      '',
    ].join('\n');
    execFileSync('iptables-restore', ['--noflush', '-w', '5'], {
      input: script,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }
}

/** Unmounts everything below `dir` (deepest first): kubelet volumes, container root filesystems, netns. */
export function unmountBelow(dir: string): void {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4]?.replaceAll('\\040', ' '))
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) tryRun('umount', ['-l', m]);
}

/** Removes the cgroups kubelet made for pods (cgroup v1: one tree per controller). */
export function removeKubeletCgroups(): void {
  const root = '/sys/fs/cgroup';
  if (!existsSync(root)) return;
  const removeTree = (path: string) => {
    for (const e of readdirSync(path, { withFileTypes: true }))
      if (e.isDirectory()) removeTree(join(path, e.name));
    try {
      rmdirSync(path);
    } catch {
      // busy (a process still in it) or not ours to remove
    }
  };
  for (const controller of readdirSync(root)) {
    const kubepods = join(root, controller, 'kubepods');
    if (existsSync(kubepods)) removeTree(kubepods);
  }
}

/** What is left of a node on this machine, for `make down` checks and the cleanup test. */
export function leftovers(dir: string | undefined, state: HostNetworkState | undefined): string[] {
  const out: string[] = [];
  const { bridge } = NODE_NETWORK;
  if (linkExists(bridge)) out.push(`interface ${bridge}`);
  const veths = listVeths().filter((v) => !(state?.vethsBefore ?? []).includes(v));
  if (state && veths.length > 0) out.push(`interfaces ${veths.join(', ')}`);
  for (const table of ['filter', 'nat', 'mangle']) {
    const rules = tryRun('iptables-save', ['-t', table]) ?? '';
    const chains = [...rules.matchAll(/^:((?:KUBE-|EPNP|EPREUVE-)\S*) /gm)].map((m) => m[1]);
    if (chains.length > 0) out.push(`iptables ${table} chains ${chains.join(', ')}`);
  }
  for (const ns of listNetns())
    if (ns.startsWith('cni-') && !(state?.netnsBefore ?? []).includes(ns)) out.push(`netns ${ns}`);
  if (dir) {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter((l) => l.split(' ')[4]?.startsWith(dir));
    if (mounts.length > 0) out.push(`${mounts.length} mounts under ${dir}`);
    if (existsSync(dir)) out.push(`directory ${dir}`);
  }
  return out;
}
