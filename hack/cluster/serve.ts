/**
 * Starts the local control plane with the CRDs installed and keeps it up until SIGINT/SIGTERM.
 * Handy for poking at the API server by hand:  node hack/cluster/serve.ts
 */
import { installCrds } from '../../test/harness/kube.ts';
import { ControlPlane } from './control-plane.ts';

const cp = new ControlPlane();
await cp.start();
try {
  await installCrds(cp.kubeconfigPath);
} catch (err) {
  await cp.stop();
  throw err;
}
console.log(`control plane up: export KUBECONFIG=${cp.kubeconfigPath}`);
const stop = async () => {
  await cp.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
