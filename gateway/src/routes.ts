import { type Assessment, accessRefusal, assessmentHostLabel } from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';

/** An Assessment as the gateway's informer holds it: the CRD's shape on a Kubernetes object. */
export type AssessmentObject = Assessment & KubeObject;

/** Where the gateway sends one sandbox's connections: its Service inside the candidate namespace. */
export interface Route {
  /** `team/assessment`, for logs and metrics (never a credential). */
  assessment: string;
  /** The Assessment's uid: what the gateway observes is written to this one, not a namesake. */
  uid?: string;
  sandbox: string;
  kind: string;
  host: string;
  port: number;
}

/** A route, or why the connection is refused (a reason the candidate can act on). */
export type Resolution = { route: Route } | { refused: string };

/**
 * The host labels an assessment's sandboxes are served under (the gateway's informer index):
 * `<sandbox>-<status.hostKey>`, none before the operator drew the key (an assessment from before
 * host keys is served from its next reconcile on; the old derivable names are never served).
 */
export function hostLabels(assessment: AssessmentObject): string[] {
  return (assessment.status?.sandboxes ?? []).flatMap((sandbox) => {
    const label = assessmentHostLabel(assessment, sandbox.name);
    return label ? [label] : [];
  });
}

/** The host label of a TLS server name under `domain`, or undefined when it is not one of ours. */
export function labelOf(serverName: string | undefined, domain: string): string | undefined {
  if (!serverName) return undefined;
  const name = serverName.toLowerCase().replace(/\.$/, '');
  const suffix = `.${domain.toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const label = name.slice(0, -suffix.length);
  return /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(label) ? label : undefined;
}

/**
 * Decides where a connection for `label` goes, from the assessments that claim it (normally one).
 * Pure: the candidate gets a reason they can act on when the sandbox cannot be reached, and the
 * gateway only ever routes to a ready sandbox of a Ready, started, unexpired and unrevoked
 * assessment — never to an address a client chose.
 */
export function resolveLabel(label: string, claimants: AssessmentObject[], now = new Date()): Resolution {
  if (claimants.length === 0) return { refused: `no sandbox is served under "${label}"` };
  if (claimants.length > 1)
    return { refused: `"${label}" is ambiguous; ask the recruiter for a new assessment` };
  const assessment = claimants[0]!;
  const sandbox = (assessment.status?.sandboxes ?? []).find(
    (candidate) => assessmentHostLabel(assessment, candidate.name) === label,
  );
  const phase = assessment.status?.phase ?? 'Pending';
  const expiresAt = assessment.status?.expiresAt;
  if (assessment.metadata.deletionTimestamp || phase === 'Terminating')
    return { refused: 'this assessment was deleted' };
  if (phase === 'Expired') return { refused: `this assessment ended${expiresAt ? ` at ${expiresAt}` : ''}` };
  if (phase === 'Failed') return { refused: 'this assessment failed to start; contact the recruiter' };
  // The time box holds without waiting for the operator: not before Start, not after the end.
  const closed = accessRefusal(assessment, now, Boolean(assessment.status?.startedAt));
  if (closed) return { refused: closed };
  // The operator writes the start and the deadline together; a start without a deadline would be
  // a box with no end, so the gateway waits for both rather than admit without one.
  if (!expiresAt) return { refused: 'the clock is being started; try again in a few seconds' };
  if (phase !== 'Ready' || !sandbox?.ready) {
    return { refused: 'this sandbox is still starting; try again in a minute' };
  }
  if (!sandbox.host || !sandbox.port)
    return { refused: 'this sandbox has no address yet; try again in a minute' };
  return {
    route: {
      assessment: `${assessment.metadata.namespace}/${assessment.metadata.name}`,
      ...(assessment.metadata.uid ? { uid: assessment.metadata.uid } : {}),
      sandbox: sandbox.name,
      kind: sandbox.kind,
      host: sandbox.host,
      port: sandbox.port,
    },
  };
}
