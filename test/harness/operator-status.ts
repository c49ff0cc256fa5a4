import { type Assessment, type AssessmentTemplate, KINDS, newHostKey, timeline } from '@epreuve/crds';
import type { KubeClient, KubeObject } from '@epreuve/kube';
import { desiredState } from '../../operator/src/assessment/desired.ts';
import { nextStatus, type Outcome } from '../../operator/src/assessment/status.ts';
import { loadConfig } from '../../operator/src/config.ts';
import { applyStatusIfChanged } from '../../operator/src/controller/writes.ts';

export interface Endpoint {
  name: string;
  kind: string;
  host: string;
  port: number;
  secretName: string;
}

/**
 * Writes the status the operator writes once every sandbox is up and seeded: built by the
 * operator's own `nextStatus` from the Assessment and its template as stored, and written the way
 * the operator writes it. Two departures: the sandboxes in `endpoints` point where the test serves
 * them instead of at in-cluster Services, and the others, which nothing serves here, say so (not
 * ready), so that a request for them is told to wait instead of failing against nothing.
 */
export async function writeOperatorReadyStatus(
  client: KubeClient,
  team: string,
  name: string,
  endpoints: Endpoint[],
): Promise<void> {
  const a = await client.get<Assessment & KubeObject>(KINDS.Assessment, team, name);
  if (!a) throw new Error(`no Assessment ${team}/${name}`);
  const t = await client.get<AssessmentTemplate & KubeObject>(
    KINDS.AssessmentTemplate,
    team,
    a.spec.templateRef.name,
  );
  if (!t) throw new Error(`no AssessmentTemplate ${team}/${a.spec.templateRef.name}`);

  // What the informers would show once the kubelet ran every pod and the seed Job succeeded.
  const desired = desiredState({ assessment: a, template: t, config: loadConfig({}) });
  const up = { readyReplicas: 1, availableReplicas: 1 };
  const outcome: Outcome = {
    kind: 'Applied',
    workloads: Object.fromEntries(
      desired.workloads.map((w) => [
        w.sandbox,
        { workloadKind: w.workloadKind, current: { ...w.workload, status: up } },
      ]),
    ),
    seedJob: desired.seed && { ...desired.seed, status: { succeeded: 1 } },
    seedNeeded: desired.seed !== undefined,
    ...(desired.grader && {
      grader: { workloadKind: 'Deployment' as const, current: { ...desired.grader.workload, status: up } },
    }),
  };
  const status = nextStatus(a, t, outcome, timeline(a, t), new Date(), undefined, newHostKey());
  if (status.phase !== 'Ready') throw new Error(`the operator would say ${status.phase}, not Ready`);

  for (const e of endpoints) {
    const sandbox = status.sandboxes?.find((s) => s.name === e.name);
    if (!sandbox || sandbox.kind !== e.kind || sandbox.secretName !== e.secretName)
      throw new Error(`sandbox ${e.name} (${e.kind}, ${e.secretName}) is not what the operator reports`);
    sandbox.host = e.host;
    sandbox.port = e.port;
  }
  for (const sandbox of status.sandboxes ?? [])
    if (!endpoints.some((e) => e.name === sandbox.name)) {
      sandbox.ready = false;
      sandbox.message = 'not served in this test';
    }
  await applyStatusIfChanged(client, a, status);
}
