import {
  ANNOTATIONS,
  type Assessment,
  type AssessmentTemplate,
  credentialsSecretName,
  DATA_API_CREDENTIAL_KEYS,
  DB_CREDENTIAL_KEYS,
  LABELS,
  POOL_STATES,
  type SandboxKind,
  sandboxKind,
} from '@epreuve/crds';
import { type Informer, isConflict, type KubeClient, type KubeObject, resourceFor } from '@epreuve/kube';
import { type Context, seedJob } from '../assessment/desired.ts';
import { POOL_INDEX, templateHash } from './members.ts';

const NAMESPACE = resourceFor('v1', 'Namespace');

/** The Job that rotates a claimed namespace's candidate credentials in its databases. */
export const ROTATE_JOB = 'rotate';

/**
 * A template's pool members free to claim: labelled ready by the pool controller, built from the
 * template's current spec (`templateHash`), not being deleted. Oldest first.
 */
export function freeMembers(namespaces: Informer<KubeObject>, t: AssessmentTemplate): KubeObject[] {
  const built = templateHash(t);
  return namespaces
    .byIndex(POOL_INDEX, `${t.metadata.namespace}/${t.metadata.name}`)
    .filter((ns) => {
      const l = ns.metadata.labels ?? {};
      return (
        !ns.metadata.deletionTimestamp &&
        l[LABELS.poolState] === POOL_STATES.ready &&
        l[LABELS.templateHash] === built &&
        !l[LABELS.assessment]
      );
    })
    .sort((a, b) =>
      String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')),
    );
}

/**
 * Claims a pool namespace for an assessment: one merge patch carrying the resourceVersion the
 * cache showed, so of two claims of the same member the API server lets one through and answers
 * the other 409. Returns the claimed namespace, or undefined when another claim (or a deletion) won.
 */
export async function claimMember(
  client: KubeClient,
  ns: KubeObject,
  a: Assessment,
  now: Date,
): Promise<KubeObject | undefined> {
  try {
    return await client.mergePatch<KubeObject>(NAMESPACE, undefined, ns.metadata.name!, {
      metadata: {
        resourceVersion: ns.metadata.resourceVersion,
        labels: { [LABELS.poolState]: POOL_STATES.claimed, [LABELS.assessment]: a.metadata.name },
        annotations: {
          [ANNOTATIONS.owner]: `${a.metadata.namespace}/${a.metadata.name}`,
          [ANNOTATIONS.claimedAt]: now.toISOString().replace(/\.\d+Z$/, 'Z'),
        },
      },
    });
  } catch (err) {
    if (isConflict(err)) return undefined;
    throw err;
  }
}

/**
 * New candidate credentials for a claimed namespace, as merge patches of each sandbox's Secret
 * (`data`, base64): each database's candidate password and each data API's key. The candidate's
 * are the only credentials that ever leave the platform; the admin's and the grader's stay inside
 * it and are not rotated.
 */
export function rotatedCredentials(
  t: AssessmentTemplate,
  random: (n: number) => Buffer,
): Array<{ sandbox: string; kind: SandboxKind; secret: string; data: Record<string, string> }> {
  return t.spec.sandboxes.map((s) => {
    const kind = sandboxKind(s);
    const key = kind === 'dataApi' ? DATA_API_CREDENTIAL_KEYS.apiKey : DB_CREDENTIAL_KEYS.password;
    return {
      sandbox: s.name,
      kind,
      secret: credentialsSecretName(s.name),
      data: { [key]: Buffer.from(random(24).toString('base64url')).toString('base64') },
    };
  });
}

/**
 * On a claimed namespace once the operator set the new credentials in its databases itself
 * (rotate.ts): the claim's rotation is done, across restarts, and the rotate Job is not needed.
 */
export const ROTATED_ANNOTATION = 'epreuve.dev/credentials-rotated-at';

/**
 * The rotation Job: the seed Job's pod (same image, plan, mounted Secrets, network policy) running
 * `rotate`, which sets each database's candidate password to the one now in its Secret and ends
 * the candidate's sessions opened before. A new pod mounts the Secrets as they are after the
 * patch. Undefined when the template has no database.
 */
export function rotateJob(ctx: Context): KubeObject | undefined {
  const seed = seedJob(ctx);
  if (!seed) return undefined;
  const job = structuredClone(seed) as KubeObject & {
    spec: { activeDeadlineSeconds: number; template: { spec: { containers: Array<{ args: string[] }> } } };
  };
  job.metadata.name = ROTATE_JOB;
  job.spec.activeDeadlineSeconds = 300;
  job.spec.template.spec.containers[0]!.args = ['rotate'];
  return job;
}
