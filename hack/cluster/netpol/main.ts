/**
 * The local cluster's NetworkPolicy enforcer as a node process: `node hack/cluster/netpol/main.ts`
 * with KUBECONFIG set (the single-node cluster starts it; see rules.ts for why it exists).
 * EPNP_NETNS runs iptables in that network namespace instead of the host's.
 */
import { KubeClient } from '@epreuve/kube';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { NetpolEnforcer } from './enforcer.ts';

const log = pino({ name: 'epreuve-netpol', level: process.env.EPNP_LOG_LEVEL ?? 'info' });
const kc = new KubeConfig();
kc.loadFromDefault();
const netns = process.env.EPNP_NETNS;
const enforcer = new NetpolEnforcer(new KubeClient(kc, { qps: 20, burst: 40, userAgent: 'epreuve-netpol' }), {
  wrap: netns ? ['ip', 'netns', 'exec', netns] : [],
  log,
});
const abort = new AbortController();
await enforcer.run(abort.signal);
log.info('enforcing network policies');
// Stopping removes every rule: a node without the enforcer must not keep stale denials.
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.once(signal, async () => {
    abort.abort();
    await enforcer.stop();
    process.exit(0);
  });
