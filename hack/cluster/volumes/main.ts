/**
 * The local cluster's volume provisioner as a node process: `node hack/cluster/volumes/main.ts
 * <base directory> <node name>` with KUBECONFIG set (the single-node cluster starts it).
 */
import { KubeClient } from '@epreuve/kube';
import { KubeConfig } from '@kubernetes/client-node';
import pino from 'pino';
import { LocalVolumeProvisioner } from './provisioner.ts';

const [baseDir, nodeName] = process.argv.slice(2);
if (!baseDir || !nodeName) {
  console.error('usage: node hack/cluster/volumes/main.ts <base directory> <node name>');
  process.exit(2);
}
const log = pino({ name: 'epreuve-volumes' });
const kc = new KubeConfig();
kc.loadFromDefault();
const abort = new AbortController();
await new LocalVolumeProvisioner(new KubeClient(kc, { userAgent: 'epreuve-volumes' }), {
  baseDir,
  nodeName,
  log,
}).run(abort.signal);
log.info({ baseDir }, 'provisioning local volumes');
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.once(signal, () => {
    abort.abort();
    process.exit(0);
  });
