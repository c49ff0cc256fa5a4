import { createHash } from 'node:crypto';

/**
 * NetworkPolicy → iptables, for the local single-node cluster. No NetworkPolicy implementation
 * runs here (kube-network-policies v0.8.0 is on the Go module proxy but needs the nftables `queue`
 * statement, and this kernel has CONFIG_NFT_QUEUE unset; Calico, Antrea and Cilium are agents
 * shipped as container images, which cannot be pulled here; see README.md), and the CNI bridge
 * enforces nothing, so this small
 * enforcer fills the gap for the e2e tier and `make up`. It implements networking.k8s.io/v1
 * semantics for pod-to-pod and pod-to-host traffic: pod and namespace selectors (matchLabels and
 * matchExpressions), ipBlock with except, TCP/UDP/SCTP ports, named ports and endPort, policyTypes.
 * Traffic from the node to its pods (kubelet probes) is not filtered, as in upstream
 * implementations. Pure: objects in, iptables-restore text out. Checked against Kubernetes' own
 * NetworkPolicy e2e truth table (README.md in this directory).
 */

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }>;
}
export interface PolicyPort {
  protocol?: string;
  port?: number | string;
  endPort?: number;
}
export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}
export interface NetworkPolicy {
  metadata: { namespace?: string; name?: string };
  spec: {
    podSelector: LabelSelector;
    policyTypes?: string[];
    ingress?: Array<{ from?: PolicyPeer[]; ports?: PolicyPort[] }>;
    egress?: Array<{ to?: PolicyPeer[]; ports?: PolicyPort[] }>;
  };
}
export interface Pod {
  metadata: { namespace?: string; name?: string; labels?: Record<string, string> };
  spec?: {
    hostNetwork?: boolean;
    containers?: Array<{ ports?: Array<{ name?: string; containerPort: number; protocol?: string }> }>;
  };
  status?: { podIP?: string; phase?: string };
}
export interface Namespace {
  metadata: { name?: string; labels?: Record<string, string> };
}

export function matches(selector: LabelSelector | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const ok =
      e.operator === 'In'
        ? has && (e.values ?? []).includes(labels[e.key]!)
        : e.operator === 'NotIn'
          ? !has || !(e.values ?? []).includes(labels[e.key]!)
          : e.operator === 'Exists'
            ? has
            : !has;
    if (!ok) return false;
  }
  return true;
}

/** Pods that take part: they have an address of their own and are not finished. */
function networked(pods: Pod[]): Pod[] {
  return pods.filter(
    (p) =>
      p.status?.podIP &&
      !p.spec?.hostNetwork &&
      p.status.phase !== 'Succeeded' &&
      p.status.phase !== 'Failed',
  );
}

function policyTypes(p: NetworkPolicy): string[] {
  if (p.spec.policyTypes?.length) return p.spec.policyTypes;
  return p.spec.egress ? ['Ingress', 'Egress'] : ['Ingress'];
}

/** A peer resolved to sources or destinations: pods (for named ports) or a CIDR with exceptions. */
type Peer = { pod: Pod } | { cidr: string; except: string[] } | { any: true };

function resolvePeers(
  peers: PolicyPeer[] | undefined,
  policyNs: string,
  pods: Pod[],
  namespaces: Namespace[],
): Peer[] {
  if (!peers || peers.length === 0) return [{ any: true }];
  const nsLabels = new Map(namespaces.map((n) => [n.metadata.name ?? '', n.metadata.labels ?? {}]));
  const out: Peer[] = [];
  for (const peer of peers) {
    if (peer.ipBlock) {
      out.push({ cidr: peer.ipBlock.cidr, except: peer.ipBlock.except ?? [] });
      continue;
    }
    for (const pod of pods) {
      const ns = pod.metadata.namespace ?? '';
      const inNs = peer.namespaceSelector
        ? matches(peer.namespaceSelector, nsLabels.get(ns))
        : ns === policyNs;
      if (inNs && matches(peer.podSelector, pod.metadata.labels)) out.push({ pod });
    }
  }
  return out;
}

/**
 * Port matches for traffic to `target`. A named port resolves against that pod's containers; with
 * no single target (an egress rule to any destination or to an ipBlock) it resolves against every
 * pod that declares it, so each match also names that pod's address (upstream: a named port only
 * ever matches pods that have it).
 */
function portMatches(
  ports: PolicyPort[] | undefined,
  target: Pod | undefined,
  candidates: Pod[],
): string[] | undefined {
  if (!ports || ports.length === 0) return [''];
  const out: string[] = [];
  for (const p of ports) {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    if (p.port === undefined) {
      out.push(`-p ${proto}`);
      continue;
    }
    if (typeof p.port === 'number') {
      out.push(`-p ${proto} -m ${proto} --dport ${p.port}${p.endPort ? `:${p.endPort}` : ''}`);
      continue;
    }
    // A named port a pod does not have matches nothing (as upstream).
    for (const pod of target ? [target] : candidates) {
      const named = (pod.spec?.containers ?? [])
        .flatMap((c) => c.ports ?? [])
        .find((cp) => cp.name === p.port && (cp.protocol ?? 'TCP').toLowerCase() === proto);
      if (named)
        out.push(
          `${target ? '' : `-d ${pod.status!.podIP}/32 `}-p ${proto} -m ${proto} --dport ${named.containerPort}`,
        );
    }
  }
  return out.length ? out : undefined;
}

const chainId = (prefix: string, kind: string, pod: Pod) =>
  `${prefix}-${kind}-${createHash('sha256')
    .update(`${pod.metadata.namespace}/${pod.metadata.name}`)
    .digest('hex')
    .slice(0, 12)
    .toUpperCase()}`;

export interface Ruleset {
  /** iptables-restore input for the filter table (use with --noflush). */
  text: string;
  /** Every chain this ruleset owns (to delete stale ones). */
  chains: string[];
}

/**
 * The filter-table rules enforcing `policies` for `pods`. The main chain `<prefix>` is meant to be
 * jumped to from FORWARD (pod to pod, pod to outside) and INPUT (pod to the node). Egress is checked
 * first, then ingress; an allowed packet RETURNs so the rest of the firewall (kube-proxy…) applies.
 */
export function buildRuleset(
  policies: NetworkPolicy[],
  allPods: Pod[],
  namespaces: Namespace[],
  prefix = 'EPNP',
): Ruleset {
  const pods = networked(allPods);
  const chains: string[] = [prefix];
  const rules: string[] = [`-A ${prefix} -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN`];
  const egressJumps: string[] = [];
  const ingressJumps: string[] = [];
  let blocks = 0;

  // Accepting rules for one direction of one pod: peers × ports, ipBlock exceptions in sub-chains.
  const allow = (
    chain: string,
    dir: 'in' | 'out',
    peers: Peer[],
    ports: PolicyPort[] | undefined,
    self: Pod,
  ) => {
    const addr = dir === 'in' ? '-s' : '-d';
    for (const peer of peers) {
      const target = dir === 'in' ? self : 'pod' in peer ? peer.pod : undefined;
      const portRules = portMatches(ports, target, pods);
      if (!portRules) continue;
      if ('any' in peer || 'pod' in peer) {
        const match = 'pod' in peer ? `${addr} ${peer.pod.status!.podIP}/32 ` : '';
        for (const p of portRules)
          rules.push(`-A ${chain} ${match}${p ? `${p} ` : ''}-j RETURN`.replace(/ {2,}/g, ' '));
        continue;
      }
      const block = `${prefix}-B${blocks++}`;
      chains.push(block);
      rules.push(`-A ${chain} ${addr} ${peer.cidr} -j ${block}`);
      for (const ex of peer.except) rules.push(`-A ${block} ${addr} ${ex} -j RETURN`);
      // Allowed: mark and return to the pod chain, which returns on the mark.
      for (const p of portRules)
        rules.push(
          `-A ${block} ${p ? `${p} ` : ''}-j MARK --set-xmark 0x100000/0x100000`.replace(/ {2,}/g, ' '),
        );
    }
  };

  for (const pod of pods) {
    const ns = pod.metadata.namespace ?? '';
    const selecting = policies.filter(
      (p) => (p.metadata.namespace ?? '') === ns && matches(p.spec.podSelector, pod.metadata.labels),
    );
    const ip = pod.status!.podIP!;
    for (const dir of ['out', 'in'] as const) {
      const type = dir === 'in' ? 'Ingress' : 'Egress';
      const applying = selecting.filter((p) => policyTypes(p).includes(type));
      if (applying.length === 0) continue;
      const chain = chainId(prefix, dir === 'in' ? 'I' : 'E', pod);
      chains.push(chain);
      (dir === 'in' ? ingressJumps : egressJumps).push(
        `-A ${prefix} ${dir === 'in' ? '-d' : '-s'} ${ip}/32 -j ${chain}`,
      );
      rules.push(`-A ${chain} -j MARK --set-xmark 0x0/0x100000`);
      for (const policy of applying) {
        const entries = dir === 'in' ? (policy.spec.ingress ?? []) : (policy.spec.egress ?? []);
        for (const e of entries) {
          const peers = resolvePeers(
            'from' in e ? e.from : (e as { to?: PolicyPeer[] }).to,
            ns,
            pods,
            namespaces,
          );
          allow(chain, dir, peers, e.ports, pod);
        }
      }
      rules.push(`-A ${chain} -m mark --mark 0x100000/0x100000 -j RETURN`);
      rules.push(`-A ${chain} -j REJECT --reject-with icmp-port-unreachable`);
    }
  }
  const text = [
    '*filter',
    ...chains.map((c) => `:${c} - [0:0]`),
    ...rules.slice(0, 1),
    ...egressJumps,
    ...ingressJumps,
    ...rules.slice(1),
    'COMMIT',
    '',
  ].join('\n');
  return { text, chains };
}

/**
 * iptables-restore --noflush input that moves the filter table from the chains `owned` (the last
 * ruleset applied) to `next`, in one transaction: declared chains are flushed and refilled, chains
 * `next` no longer has are deleted after them.
 */
export function transition(next: Ruleset, owned: Iterable<string>): string {
  const stale = [...owned].filter((c) => !next.chains.includes(c));
  return next.text.replace(
    /\nCOMMIT\n$/,
    `\n${stale.map((c) => `:${c} - [0:0]\n-X ${c}`).join('\n')}${stale.length ? '\n' : ''}COMMIT\n`,
  );
}
