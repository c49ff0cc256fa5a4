import { randomBytes } from 'node:crypto';
import {
  ANNOTATIONS,
  type Assessment,
  type AssessmentStatus,
  type AssessmentTemplate,
  CLEANUP_FINALIZER,
  durationProblem,
  FIELD_MANAGER,
  KINDS,
  LABELS,
  MANAGED_BY,
  type Timeline,
  timeline,
} from '@epreuve/crds';
import {
  type EventSink,
  type Informer,
  isConflict,
  isSubset,
  type KubeClient,
  KubeError,
  type KubeObject,
  linkFromTraceparent,
  objectKey,
  resourceFor,
} from '@epreuve/kube';
import { SpanStatusCode, trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { OperatorConfig } from '../config.ts';
import { Controller, priorityOf, type Reconciler, type Result } from '../controller/controller.ts';
import { applyStatusIfChanged, patchFinalizers } from '../controller/writes.ts';
import type { Manager } from '../manager.ts';
import { type Metrics, phaseGauge } from '../metrics.ts';
import { ASSESSMENT_INDEXES, TEMPLATE_INDEX, templateKeyOf } from '../template/reconciler.ts';
import { getCondition } from './conditions.ts';
import { type DesiredState, desiredState, namespaceContents, namespaceOf } from './desired.ts';
import { statusEvents } from './events.ts';
import { quotaShortfall } from './quota.ts';
import { nextStatus, type ObservedWorkload, type Outcome } from './status.ts';

/** Kinds the operator applies into candidate namespaces and watches (label-selected). */
export const MANAGED_KINDS = [
  ['v1', 'Namespace'],
  ['v1', 'ResourceQuota'],
  ['v1', 'LimitRange'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['v1', 'ServiceAccount'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
  ['v1', 'Service'],
  ['apps/v1', 'StatefulSet'],
  ['apps/v1', 'Deployment'],
  ['batch/v1', 'Job'],
] as const;

export type ManagedKind = (typeof MANAGED_KINDS)[number][1];

/** Every managed object carries this label; the managed informers select on it. */
const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;

export interface AssessmentReconcilerDeps {
  client: KubeClient;
  assessments: Informer<Assessment & KubeObject>;
  templates: Informer<AssessmentTemplate & KubeObject>;
  managed: Record<ManagedKind, Informer<KubeObject>>;
  config: OperatorConfig;
  metrics: Metrics;
  log: Logger;
  now?: () => Date;
  random?: (bytes: number) => Buffer;
  /** Kubernetes Events about each Assessment (none when absent). */
  events?: EventSink;
}

const NO_EVENTS: EventSink = { record: () => {} };

/** What a status is derived from (with `nextStatus`), besides the assessment and the clock. */
export interface Report {
  outcome: Outcome;
  template?: AssessmentTemplate;
  times?: Timeline;
}

/**
 * What a pass must do, decided from the cached assessment and template alone. A Report or an
 * Expire knows its status outcome already; a Provision's depends on how the apply goes.
 */
export type Plan =
  | { kind: 'Finalize' }
  | { kind: 'KeepExpired' }
  | { kind: 'Report'; report: Report }
  | { kind: 'Expire'; report: Report }
  | { kind: 'Provision'; template: AssessmentTemplate; times: Timeline; desired: DesiredState };

/** What a pass did: the status to write (if it has one to say), when to come back, and an error to rethrow. */
interface PassResult {
  report?: Report;
  result: Result;
  error?: unknown;
}

/**
 * Decides what a pass must do. Pure: `random` only feeds the credentials of Secrets not created yet.
 */
export function decide(
  a: Assessment,
  t: AssessmentTemplate | undefined,
  config: OperatorConfig,
  now: Date,
  random: (bytes: number) => Buffer,
): Plan {
  if (a.metadata.deletionTimestamp) return { kind: 'Finalize' };
  // Terminal: the namespace was deleted when time ran out; it must stay gone.
  if (a.status?.phase === 'Expired') return { kind: 'KeepExpired' };
  // No polling: creating the template re-enqueues this assessment through the template index.
  if (!t) return { kind: 'Report', report: { outcome: { kind: 'TemplateNotFound' } } };

  const times = timeline(a, t);
  // A failure that a spec or template change fixes is not retried on a timer: the change re-enqueues it.
  const invalid = (reason: string, message: string): Plan => ({
    kind: 'Report',
    report: { outcome: { kind: 'Invalid', reason, message }, template: t, times },
  });
  const expire = (reason: 'DeadlineReached' | 'Revoked'): Plan => ({
    kind: 'Expire',
    report: { outcome: { kind: 'Expired', reason }, template: t, times },
  });
  const tooLong = durationProblem(a, t);
  if (tooLong) return invalid('DurationExceedsMax', tooLong);
  if (a.spec.revoked) return expire('Revoked');
  if (times.expiresAt && now >= times.expiresAt) return expire('DeadlineReached');

  const ctx = { assessment: a, template: t, config };
  const desired = desiredState(ctx, random);
  const shortfall = quotaShortfall(ctx, namespaceContents(desired));
  if (shortfall) return invalid('QuotaExceeded', shortfall);
  return { kind: 'Provision', template: t, times, desired };
}

const tracer = trace.getTracer('epreuve-operator');
const NAMESPACE = resourceFor('v1', 'Namespace');

/**
 * reconcile(namespace/name) for one Assessment. Level-triggered: it reads the Assessment, its
 * template and the managed objects from the informer caches and never depends on which event woke
 * it. Each pass has one way out: gather → decide → I/O (apply, delete, finalizer) → one guarded
 * status write, which writes nothing when nothing changed. Unchanged objects are not written either.
 */
export class AssessmentReconciler implements Reconciler {
  private readonly deps: Required<AssessmentReconcilerDeps>;
  /** Secrets known to exist (created, or found by a 409). Credentials are generated once, ever. */
  private readonly secretsCreated = new Set<string>();

  constructor(deps: AssessmentReconcilerDeps) {
    this.deps = {
      ...deps,
      now: deps.now ?? (() => new Date()),
      random: deps.random ?? randomBytes,
      events: deps.events ?? NO_EVENTS,
    };
  }

  /**
   * The Assessment controller's watches, like kubebuilder's SetupWithManager: the informers it
   * reads, shared through the manager, and which of their events wake which key in its queue.
   * What an informer's initial list or a resync delivers queues at low priority, behind changes.
   */
  static setup(manager: Manager): Controller {
    const { client, config, metrics, log, now, events } = manager;
    const assessments = manager.informer<Assessment & KubeObject>(KINDS.Assessment, {
      indexes: ASSESSMENT_INDEXES,
    });
    const templates = manager.informer<AssessmentTemplate & KubeObject>(KINDS.AssessmentTemplate);
    const managed = Object.fromEntries(
      MANAGED_KINDS.map(([apiVersion, kind]) => [
        kind,
        manager.informer(resourceFor(apiVersion, kind), { labelSelector: MANAGED_SELECTOR }),
      ]),
    ) as Record<ManagedKind, Informer<KubeObject>>;
    const reconciler = new AssessmentReconciler({
      client,
      assessments,
      templates,
      managed,
      config,
      metrics,
      log,
      now,
      events,
    });
    const controller = new Controller('assessment', reconciler, {
      workers: config.EPREUVE_WORKERS,
      metrics,
      log,
    });
    const queue = controller.queue;

    assessments.on({
      add: (a, initialList) => queue.add(objectKey(a), priorityOf(initialList)),
      update: (_old, a) => queue.add(objectKey(a)),
      resync: (a) => queue.add(objectKey(a), 'low'),
    });
    // A template change re-enqueues exactly the assessments that use it (index lookup, no scan).
    const templateChanged = (t: KubeObject, initialList = false) => {
      for (const a of assessments.byIndex(TEMPLATE_INDEX, objectKey(t)))
        queue.add(objectKey(a), priorityOf(initialList));
    };
    templates.on({
      add: templateChanged,
      update: (_old, t) => templateChanged(t),
      delete: (t) => templateChanged(t),
    });
    // A managed object's change wakes its owner, found from the labels every managed object carries.
    const ownerChanged = (o: KubeObject, initialList = false) => {
      const ns = o.metadata.labels?.[LABELS.ownerNamespace];
      const name = o.metadata.labels?.[LABELS.assessment];
      if (ns && name) queue.add(`${ns}/${name}`, priorityOf(initialList));
    };
    for (const informer of Object.values(managed))
      informer.on({
        add: ownerChanged,
        update: (_old, o) => ownerChanged(o),
        delete: (o) => ownerChanged(o),
      });

    manager.add(controller);
    metrics.readCaches({
      assessments: () => assessments.list(),
      quotas: () => managed.ResourceQuota.list(),
      now: () => now().getTime(),
    });
    manager.add(phaseGauge(metrics, () => assessments.list()));
    return controller;
  }

  reconcile(key: string): Promise<Result> {
    const a = this.deps.assessments.get(key);
    const link = linkFromTraceparent(a?.metadata.annotations?.[ANNOTATIONS.traceparent]);
    return tracer.startActiveSpan(
      'reconcile Assessment',
      { links: link ? [link] : [], attributes: { 'epreuve.assessment': key } },
      async (span) => {
        try {
          return a ? await this.reconcileAssessment(a) : {};
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  private log(a: Assessment): Logger {
    return this.deps.log.child({ assessment: `${a.metadata.namespace}/${a.metadata.name}` });
  }

  private async reconcileAssessment(cached: Assessment & KubeObject): Promise<Result> {
    const now = this.deps.now();
    const template = this.deps.templates.get(templateKeyOf(cached));
    const plan = decide(cached, template, this.deps.config, now, this.deps.random);

    let a = cached;
    if (plan.kind !== 'Finalize' && !hasCleanupFinalizer(a)) a = await this.addFinalizer(a);
    const pass = await this.act(a, plan, now);
    // The pass's one status write, after its I/O (even when that failed: the status says why).
    if (pass.report) await this.writeStatus(a, pass.report, now);
    if (pass.error !== undefined) throw pass.error; // requeued with per-key backoff, never a hot loop
    return pass.result;
  }

  private async act(a: Assessment & KubeObject, plan: Plan, now: Date): Promise<PassResult> {
    switch (plan.kind) {
      case 'Finalize':
        return this.finalize(a);
      case 'KeepExpired':
        await this.deleteNamespace(a);
        return { result: {} };
      case 'Report':
        if (plan.report.outcome.kind === 'Invalid') {
          const { reason, message } = plan.report.outcome;
          this.log(a).warn({ reason, message }, 'assessment cannot be provisioned');
        }
        return { report: plan.report, result: {} };
      case 'Expire':
        await this.deleteNamespace(a);
        return { report: plan.report, result: {} };
      case 'Provision':
        return this.provision(plan, now);
    }
  }

  private async provision(
    { template, times, desired }: Extract<Plan, { kind: 'Provision' }>,
    now: Date,
  ): Promise<PassResult> {
    try {
      await this.applyAll(desired);
    } catch (err) {
      const reason = err instanceof KubeError ? `Apply${err.reason}` : 'ApplyFailed';
      const message = err instanceof Error ? err.message.slice(0, 1000) : String(err);
      return {
        report: { outcome: { kind: 'ApplyFailed', reason, message }, template, times },
        result: {},
        error: err,
      };
    }
    const workloads: Record<string, ObservedWorkload> = Object.fromEntries(
      desired.workloads.map((w) => [
        w.sandbox,
        {
          workloadKind: w.workloadKind,
          current: this.deps.managed[w.workloadKind].get(objectKey(w.workload)),
        },
      ]),
    );
    const outcome: Outcome = {
      kind: 'Applied',
      workloads,
      seedJob: desired.seed && this.deps.managed.Job.get(objectKey(desired.seed)),
      seedNeeded: desired.seed !== undefined,
      ...(desired.grader && {
        grader: {
          workloadKind: 'Deployment' as const,
          current: this.deps.managed.Deployment.get(objectKey(desired.grader.workload)),
        },
      }),
    };
    return {
      report: { outcome, template, times },
      // Expiry is a timed requeue at the deadline, not polling.
      result: times.expiresAt
        ? { requeueAfterMs: Math.max(0, times.expiresAt.getTime() - now.getTime()) + 50 }
        : {},
    };
  }

  /** Applies every desired object that is missing or differs from the cache; creates Secrets once. */
  private async applyAll(desired: DesiredState): Promise<void> {
    await this.ensure(desired.namespace);
    // Secrets before workloads: pods need them, and credentials must exist before the database starts.
    for (const secret of desired.secrets) await this.ensureSecret(secret);
    await Promise.all(namespaceContents(desired).map((obj) => this.ensure(obj)));
  }

  private async ensure(obj: KubeObject): Promise<void> {
    const cache = this.deps.managed[obj.kind as ManagedKind];
    const current = cache.get(objectKey(obj));
    // A Job's pod template is immutable and the seed runs once: create it, never update it.
    if (current && (obj.kind === 'Job' || isSubset(obj, current))) return;
    await this.deps.client.apply(obj, { fieldManager: FIELD_MANAGER, force: true });
    this.deps.metrics.objectWrites.inc({ kind: obj.kind, verb: 'apply' });
  }

  private async ensureSecret(secret: KubeObject): Promise<void> {
    const key = objectKey(secret);
    if (this.secretsCreated.has(key)) return;
    try {
      await this.deps.client.create(secret, { fieldManager: FIELD_MANAGER });
      this.deps.metrics.objectWrites.inc({ kind: 'Secret', verb: 'create' });
    } catch (err) {
      if (!isConflict(err)) throw err; // 409: it exists, and its credentials must never change
    }
    this.secretsCreated.add(key);
  }

  /** Deletes the candidate namespace if the cache still shows it; the namespace controller does the rest. */
  private async deleteNamespace(a: Assessment): Promise<void> {
    const ns = this.deps.managed.Namespace.get(namespaceOf(a));
    if (!ns || ns.metadata.deletionTimestamp) return;
    await this.deps.client.delete(NAMESPACE, undefined, namespaceOf(a), { uid: ns.metadata.uid });
    this.deps.metrics.objectWrites.inc({ kind: 'Namespace', verb: 'delete' });
    for (const key of this.secretsCreated)
      if (key.startsWith(`${namespaceOf(a)}/`)) this.secretsCreated.delete(key);
  }

  /** The Assessment is being deleted: delete its namespace, wait until it is gone, then let go. */
  private async finalize(a: Assessment & KubeObject): Promise<PassResult> {
    if (!hasCleanupFinalizer(a)) return { result: {} };
    await this.deleteNamespace(a);
    if (this.deps.managed.Namespace.get(namespaceOf(a))) {
      // Reported once; the namespace's deletion event re-enqueues us.
      const reported = a.status?.phase === 'Terminating';
      return { report: reported ? undefined : { outcome: { kind: 'Terminating' } }, result: {} };
    }
    // The cache says gone; confirm with the API server before letting the Assessment go.
    if (await this.deps.client.get(NAMESPACE, undefined, namespaceOf(a)))
      return { result: { requeueAfterMs: 1000 } };
    await patchFinalizers(
      this.deps.client,
      KINDS.Assessment,
      a,
      (a.metadata.finalizers ?? []).filter((f) => f !== CLEANUP_FINALIZER),
    );
    this.log(a).info('candidate namespace gone; finalizer removed');
    this.deps.events.record(a, {
      type: 'Normal',
      reason: 'Deleted',
      action: 'Delete',
      note: `candidate namespace ${namespaceOf(a)} is gone; finalizer removed`,
    });
    return { result: {} };
  }

  private addFinalizer(a: Assessment & KubeObject): Promise<Assessment & KubeObject> {
    return patchFinalizers(this.deps.client, KINDS.Assessment, a, [
      ...(a.metadata.finalizers ?? []),
      CLEANUP_FINALIZER,
    ]);
  }

  /** The only status write of the Assessment controller. */
  private async writeStatus(a: Assessment & KubeObject, { outcome, template, times }: Report, now: Date) {
    const status = nextStatus(a, template, outcome, times, now);
    // Which pass moved the phase (the one that made the assessment Ready), findable in the trace backend.
    if (status.phase !== a.status?.phase)
      trace.getActiveSpan()?.setAttribute('epreuve.assessment.phase', status.phase ?? '');
    this.recordTransition(a, status);
    // Never blocks: the recorder writes in the background, and a failed Event write is only logged.
    for (const event of statusEvents(a.status, status, outcome)) this.deps.events.record(a, event);
    await applyStatusIfChanged(this.deps.client, a, status);
  }

  /** Metrics and logs of a phase change, once: only while the stored status does not show it yet. */
  private recordTransition(a: Assessment, next: AssessmentStatus): void {
    const before = a.status ?? {};
    const { metrics } = this.deps;
    if (next.phase === 'Failed' && before.phase !== 'Failed')
      metrics.failures.inc({ reason: getCondition(next.conditions, 'Ready')?.reason ?? 'Unknown' });
    if (next.phase === 'Expired' && before.phase !== 'Expired') {
      const reason = getCondition(next.conditions, 'Expired')?.reason ?? 'Unknown';
      metrics.expired.inc({ reason });
      this.log(a).info({ reason }, 'assessment ended; candidate namespace deleted');
    }
    if (next.readyAt && !before.readyAt && a.metadata.creationTimestamp) {
      metrics.timeToReady.observe(
        (Date.parse(next.readyAt) - Date.parse(String(a.metadata.creationTimestamp))) / 1000,
      );
    }
  }
}

const hasCleanupFinalizer = (a: Assessment) => a.metadata.finalizers?.includes(CLEANUP_FINALIZER) ?? false;
