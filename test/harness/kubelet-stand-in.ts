import { type KubeClient, type KubeObject, resourceFor } from '@epreuve/kube';

const POD = resourceFor('v1', 'Pod');

/**
 * The integration tier has no kubelet, so nothing ever runs. Where a test needs sandboxes to be
 * "up", this writes pod status the way a kubelet would — Running and Ready, or Succeeded for Job
 * pods — and the real StatefulSet, Deployment and Job controllers derive workload status from it.
 * Real readiness is proven by the end-to-end tier.
 */
export async function reportPodsReady(client: KubeClient, namespace: string): Promise<number> {
  const pods = await client.list<
    KubeObject & { spec: { containers: Array<{ name: string; image: string }> }; status?: { phase?: string } }
  >(POD, { namespace });
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  let n = 0;
  for (const pod of pods.items) {
    if (pod.status?.phase === 'Running' || pod.status?.phase === 'Succeeded') continue;
    const isJob = pod.metadata.ownerReferences?.some((o) => o.kind === 'Job');
    const containerStatuses = pod.spec.containers.map((c) => ({
      name: c.name,
      image: c.image,
      imageID: '',
      restartCount: 0,
      ready: !isJob,
      started: !isJob,
      state: isJob
        ? { terminated: { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now } }
        : { running: { startedAt: now } },
    }));
    const cond = (type: string, status: string) => ({ type, status, lastTransitionTime: now });
    const status = isJob
      ? {
          phase: 'Succeeded',
          startTime: now,
          conditions: [cond('PodScheduled', 'True'), cond('Ready', 'False')],
          containerStatuses,
        }
      : {
          phase: 'Running',
          startTime: now,
          conditions: [
            cond('PodScheduled', 'True'),
            cond('Initialized', 'True'),
            cond('ContainersReady', 'True'),
            cond('Ready', 'True'),
          ],
          containerStatuses,
        };
    await client.mergePatch(POD, namespace, pod.metadata.name!, { status }, 'status');
    n++;
  }
  return n;
}
