import {
  type Assessment,
  type AssessmentStatus,
  type AssessmentTemplate,
  credentialsSecretName,
  type Phase,
  type ProvisioningTimes,
  type SandboxStatus,
  sandboxKind,
  type Timeline,
} from '@epreuve/crds';
import type { KubeObject } from '@epreuve/kube';
import { type ConditionInput, iso, setCondition } from './conditions.ts';
import { namespaceOf, PORTS, type WorkloadKind } from './desired.ts';

/** A sandbox's workload as the cache shows it, with the kind desired.ts decided it runs as. */
export interface ObservedWorkload {
  workloadKind: WorkloadKind;
  current: KubeObject | undefined;
}

/** What the reconciler found or did, reduced to what the status depends on. */
export type Outcome =
  | { kind: 'TemplateNotFound' }
  | { kind: 'Invalid'; reason: string; message: string }
  | { kind: 'ApplyFailed'; reason: string; message: string }
  | { kind: 'Expired'; reason: 'DeadlineReached' | 'Revoked' | 'RetentionEnded' }
  /** Past the deadline with onExpiry Hibernate: stopped (or reopened for staff), deleted at `until`. */
  | { kind: 'Hibernated'; until: Date; reopenedUntil?: Date }
  | { kind: 'Terminating' }
  | {
      kind: 'Applied';
      /** By sandbox name. */
      workloads: Record<string, ObservedWorkload>;
      seedJob: KubeObject | undefined;
      seedNeeded: boolean;
      /** The grader's Deployment, when the template has one: answers cannot be graded before it is up. */
      grader?: ObservedWorkload;
      /** A claimed pool namespace's credential rotation Job: the assessment is Ready once it succeeded. */
      rotateJob?: KubeObject;
      rotateNeeded?: boolean;
      /** The operator set the new credentials in the databases itself (pool/rotate.ts): no Job to wait for. */
      rotatedInPlace?: boolean;
    };

/** Where an assessment lives: its namespace, and the pool it was claimed from, if any (issue 16). */
export interface Placement {
  namespace: string;
  pool?: { template: string; claimedAt: string };
}

interface WorkloadStatus {
  readyReplicas?: number;
  availableReplicas?: number;
  succeeded?: number;
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
}

const statusOf = (o: KubeObject | undefined) => (o?.status ?? {}) as WorkloadStatus;

export function workloadReady(w: ObservedWorkload | undefined): boolean {
  if (!w?.current) return false;
  const s = statusOf(w.current);
  return w.workloadKind === 'Deployment' ? (s.availableReplicas ?? 0) >= 1 : (s.readyReplicas ?? 0) >= 1;
}

export function jobState(job: KubeObject | undefined): 'Missing' | 'Running' | 'Succeeded' | 'Failed' {
  if (!job) return 'Missing';
  const s = statusOf(job);
  if ((s.succeeded ?? 0) >= 1 || s.conditions?.some((c) => c.type === 'Complete' && c.status === 'True'))
    return 'Succeeded';
  if (s.conditions?.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed';
  return 'Running';
}

function sandboxStatuses(
  ns: string,
  t: AssessmentTemplate,
  workloads: Record<string, ObservedWorkload>,
): SandboxStatus[] {
  return t.spec.sandboxes.map((s) => {
    const ready = workloadReady(workloads[s.name]);
    return {
      name: s.name,
      kind: sandboxKind(s),
      ready,
      host: `${s.name}.${ns}.svc`,
      port: PORTS[sandboxKind(s)],
      secretName: credentialsSecretName(s.name),
      // One message for every not-ready state: a changing message would mean a status write each time.
      ...(ready ? {} : { message: 'not ready yet' }),
    };
  });
}

/**
 * Each provisioning step's first completion, kept once set. They change only in a pass whose
 * status changes anyway (a sandbox turning ready, the seed finishing), so they cost no write.
 */
function stepTimes(
  prev: ProvisioningTimes | undefined,
  outcome: Extract<Outcome, { kind: 'Applied' }>,
  sandboxesReady: boolean,
  seed: ReturnType<typeof jobState>,
  now: Date,
): ProvisioningTimes {
  const at = now.toISOString();
  const times: ProvisioningTimes = { ...prev, appliedAt: prev?.appliedAt ?? at };
  if (sandboxesReady) times.sandboxesReadyAt ??= at;
  if (outcome.seedNeeded && seed === 'Succeeded') {
    const completed = (outcome.seedJob?.status as { completionTime?: string } | undefined)?.completionTime;
    times.seededAt ??= completed ?? at;
  }
  if (outcome.grader && workloadReady(outcome.grader)) times.graderReadyAt ??= at;
  return times;
}

/**
 * The status an assessment should have, from its previous status and the outcome of this
 * reconcile. Pure: the same inputs give the same status, so an unchanged world writes nothing.
 */
export function nextStatus(
  a: Assessment,
  t: AssessmentTemplate | undefined,
  outcome: Outcome,
  times: Timeline | undefined,
  now: Date,
  placement?: Placement,
  /** Drawn by the caller when the assessment has none yet; a stored key is never replaced. */
  hostKey?: string,
): AssessmentStatus {
  const ns = placement?.namespace ?? namespaceOf(a);
  const prev = a.status ?? {};
  const gen = a.metadata.generation ?? 0;
  let conditions = prev.conditions;
  const set = (c: Omit<ConditionInput, 'observedGeneration'>) => {
    conditions = setCondition(conditions, { ...c, observedGeneration: gen }, now);
  };
  let phase: Phase;
  let sandboxes = prev.sandboxes;
  let readyAt = prev.readyAt;
  let provisioning = prev.provisioning;

  switch (outcome.kind) {
    case 'TemplateNotFound':
      phase = 'Pending';
      set({
        type: 'Ready',
        status: 'False',
        reason: 'TemplateNotFound',
        message: `AssessmentTemplate ${a.metadata.namespace}/${a.spec.templateRef.name} does not exist`,
      });
      break;
    case 'Invalid':
      phase = 'Failed';
      set({ type: 'Provisioned', status: 'False', reason: outcome.reason, message: outcome.message });
      set({ type: 'Ready', status: 'False', reason: outcome.reason, message: outcome.message });
      break;
    case 'ApplyFailed':
      phase = prev.phase === 'Ready' ? 'Ready' : 'Provisioning';
      set({ type: 'Provisioned', status: 'False', reason: outcome.reason, message: outcome.message });
      break;
    case 'Terminating':
      phase = 'Terminating';
      set({
        type: 'Ready',
        status: 'False',
        reason: 'Terminating',
        message: 'deleting the candidate namespace',
      });
      break;
    case 'Expired':
      phase = 'Expired';
      sandboxes = undefined;
      set({
        type: 'Expired',
        status: 'True',
        reason: outcome.reason,
        message:
          outcome.reason === 'Revoked'
            ? 'access revoked; sandboxes deleted'
            : outcome.reason === 'RetentionEnded'
              ? 'the hibernation ended; sandboxes and volumes deleted'
              : 'time is up; sandboxes deleted',
      });
      set({ type: 'Ready', status: 'False', reason: 'Expired', message: 'the assessment has ended' });
      if (prev.phase === 'Hibernated')
        set({ type: 'Hibernated', status: 'False', reason: outcome.reason, message: 'deleted' });
      break;
    // ---- hibernation (issue 17) ----
    case 'Hibernated': {
      phase = 'Hibernated';
      const until = iso(outcome.until);
      const reopened = outcome.reopenedUntil && iso(outcome.reopenedUntil);
      // Not observed while hibernated: one message per state, so a pass with no change writes nothing.
      // A status write lost to a conflict can leave no sandboxes behind: the template still names them.
      sandboxes = (prev.sandboxes ?? (t && sandboxStatuses(ns, t, {})))?.map(({ message: _, ...s }) => ({
        ...s,
        ready: false,
        message: reopened ? `reopened for staff until ${reopened}` : 'hibernated: stopped, volume kept',
      }));
      set({
        type: 'Expired',
        status: 'True',
        reason: 'Hibernated',
        message: `time is up; sandboxes stopped, volumes kept until ${until}`,
      });
      set({ type: 'Ready', status: 'False', reason: 'Hibernated', message: 'the assessment has ended' });
      set({
        type: 'Hibernated',
        status: 'True',
        reason: reopened ? 'ReopenedForStaff' : 'Stopped',
        message: reopened
          ? `reopened for staff until ${reopened}; deleted at ${until}`
          : `sandboxes scaled to 0, volumes kept; deleted at ${until}`,
      });
      break;
    }
    // ---- end hibernation ----
    case 'Applied': {
      set({
        type: 'Provisioned',
        status: 'True',
        reason: 'ObjectsApplied',
        message: 'every object of the candidate namespace is applied',
      });
      sandboxes = sandboxStatuses(ns, t!, outcome.workloads);
      const seed = outcome.seedNeeded ? jobState(outcome.seedJob) : 'Succeeded';
      const rotation =
        !outcome.rotateNeeded || outcome.rotatedInPlace ? 'Succeeded' : jobState(outcome.rotateJob);
      const waiting = sandboxes.filter((s) => !s.ready).map((s) => s.name);
      provisioning = stepTimes(prev.provisioning, outcome, waiting.length === 0, seed, now);
      if (outcome.grader && !workloadReady(outcome.grader)) waiting.push('the grader');
      if (rotation === 'Failed') {
        phase = 'Failed';
        set({
          type: 'Ready',
          status: 'False',
          reason: 'CredentialRotationFailed',
          message: 'the credential rotation Job of the claimed pool namespace failed; see its pod logs',
        });
      } else if (seed === 'Failed') {
        phase = 'Failed';
        set({
          type: 'Ready',
          status: 'False',
          reason: 'SeedJobFailed',
          message: 'the seed Job failed; see its pod logs in the candidate namespace',
        });
      } else if (waiting.length > 0 || seed !== 'Succeeded' || rotation !== 'Succeeded') {
        phase = 'Provisioning';
        const parts = [
          ...(waiting.length ? [`waiting for ${waiting.join(', ')}`] : []),
          ...(seed !== 'Succeeded' ? ['seeding data'] : []),
          ...(rotation !== 'Succeeded' ? ['rotating credentials'] : []),
        ];
        set({ type: 'Ready', status: 'False', reason: 'WaitingForSandboxes', message: parts.join('; ') });
      } else {
        phase = 'Ready';
        readyAt ??= iso(now);
        set({
          type: 'Ready',
          status: 'True',
          reason: 'SandboxesReady',
          message: times?.startedAt
            ? 'every sandbox is up and seeded'
            : 'every sandbox is up and seeded; the clock starts when the candidate opens the link',
        });
      }
      set({
        type: 'Expired',
        status: 'False',
        reason: times?.expiresAt ? 'Running' : 'NotStarted',
        message: times?.expiresAt
          ? `expires at ${iso(times.expiresAt)}`
          : 'the candidate has not opened the link yet',
      });
      break;
    }
  }

  // Once hibernated, the clock it ended on is kept: a later edit of the duration changes nothing.
  const keepClock = prev.phase === 'Hibernated' && ['Hibernated', 'Expired'].includes(outcome.kind);
  const status: AssessmentStatus = {
    phase,
    // Hibernated scales the workloads of `ns`: staff reopen needs it said even when the pass that
    // applied them lost its status write (a conflict with the arrival annotation's patch).
    namespace: ['Applied', 'ApplyFailed', 'Terminating'].includes(outcome.kind)
      ? ns
      : outcome.kind === 'Hibernated'
        ? (prev.namespace ?? ns)
        : prev.namespace,
    pool: placement?.pool ?? prev.pool,
    hostKey: prev.hostKey ?? hostKey,
    startedAt: keepClock ? prev.startedAt : iso(times?.startedAt),
    readyAt,
    provisioning,
    expiresAt: keepClock ? prev.expiresAt : iso(times?.expiresAt),
    hibernatedUntil:
      outcome.kind === 'Hibernated'
        ? iso(outcome.until)
        : outcome.kind === 'Expired'
          ? prev.hibernatedUntil
          : undefined,
    reopenedUntil: outcome.kind === 'Hibernated' ? iso(outcome.reopenedUntil) : undefined,
    sandboxes,
    conditions,
    observedGeneration: gen,
  };
  return JSON.parse(JSON.stringify(status)) as AssessmentStatus; // drop undefined fields
}
