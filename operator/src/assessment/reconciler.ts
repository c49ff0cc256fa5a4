import { randomBytes } from 'node:crypto';
import {
  ANNOTATIONS,
  type Assessment,
  type AssessmentStatus,
  type AssessmentTemplate,
  CLEANUP_FINALIZER,
  candidateNamespace,
  DATA_API_ADMIN_PORT,
  durationProblem,
  KINDS,
  LABELS,
  MANAGED_BY,
  newHostKey,
  POOL_STATES,
  type Timeline,
  timeline,
} from '@epreuve/crds';
import {
  type EventSink,
  type Informer,
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
import { Applier, cachedView } from '../controller/apply.ts';
import { Controller, priorityOf, type Reconciler, type Result } from '../controller/controller.ts';
import { applyStatusIfChanged, patchFinalizers } from '../controller/writes.ts';
import type { Manager } from '../manager.ts';
import { type Metrics, phaseGauge } from '../metrics.ts';
import {
  claimMember,
  freeMembers,
  ROTATE_JOB,
  ROTATED_ANNOTATION,
  rotatedCredentials,
  rotateJob,
} from '../pool/claim.ts';
import { CLAIM_INDEX, claimedNamespace, NAMESPACE_INDEXES } from '../pool/members.ts';
import { decodeSecretData, rotateInPlace, sandboxAddress } from '../pool/rotate.ts';
import { ASSESSMENT_INDEXES, TEMPLATE_INDEX, templateKeyOf } from '../template/reconciler.ts';
import { getCondition } from './conditions.ts';
import {
  type Context,
  type DesiredState,
  desiredState,
  namespaceContents,
  namespaceOf,
  PORTS,
} from './desired.ts';
import { statusEvents } from './events.ts';
import { type ExpiryDecision, expiryDecision, nextWake } from './expiry.ts';
import { quotaShortfall } from './quota.ts';
import { nextStatus, type ObservedWorkload, type Outcome, type Placement } from './status.ts';

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
export const MANAGED_SELECTOR = `${LABELS.managedBy}=${MANAGED_BY}`;

/**
 * The informers of every kind the operator manages, by kind, shared through the manager: the
 * Assessment and pool controllers read the same caches (namespaces indexed by pool).
 */
export function managedInformers(manager: Manager): Record<ManagedKind, Informer<KubeObject>> {
  return Object.fromEntries(
    MANAGED_KINDS.map(([apiVersion, kind]) => [
      kind,
      manager.informer(resourceFor(apiVersion, kind), {
        labelSelector: MANAGED_SELECTOR,
        transform: cachedView,
        ...(kind === 'Namespace' && { indexes: NAMESPACE_INDEXES }),
      }),
    ]),
  ) as Record<ManagedKind, Informer<KubeObject>>;
}

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
  placement?: Placement;
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
  /** Past the deadline with onExpiry Hibernate: scale the sandboxes to `replicas`, keep the volumes. */
  | { kind: 'Hibernate'; report: Report; replicas: 0 | 1; wakeAt: Date }
  | {
      kind: 'Provision';
      template: AssessmentTemplate;
      times: Timeline;
      desired: DesiredState;
      /** Where it lives, once known (a claimed pool namespace, or the one it was provisioned in). */
      placement?: Placement;
      ctx: Context;
    };

/** What a pass did: the status to write (if it has one to say), when to come back, and an error to rethrow. */
interface PassResult {
  report?: Report;
  result: Result;
  error?: unknown;
}

/**
 * Decides what a pass must do. Pure: `random` only feeds the credentials of Secrets not created yet.
 * `placement` says where the assessment lives when that is already known: a pool namespace it
 * claimed is built with the pool's names and labels.
 */
export function decide(
  a: Assessment,
  t: AssessmentTemplate | undefined,
  config: OperatorConfig,
  now: Date,
  random: (bytes: number) => Buffer,
  placement?: Placement,
): Plan {
  if (a.metadata.deletionTimestamp) return { kind: 'Finalize' };
  // Terminal: the namespace was deleted when time ran out; it must stay gone.
  if (a.status?.phase === 'Expired') return { kind: 'KeepExpired' };
  const times = t && timeline(a, t);
  // Hibernated: only the clock, a revoke or a staff reopen change what is done (issue 17).
  if (a.status?.phase === 'Hibernated') {
    const expiry = expiryDecision(a, t, times, now);
    if (expiry.kind !== 'Running') return afterDeadline(expiry, t, times); // never Running once hibernated
  }
  // No polling: creating the template re-enqueues this assessment through the template index.
  if (!t || !times) return { kind: 'Report', report: { outcome: { kind: 'TemplateNotFound' } } };

  // A failure that a spec or template change fixes is not retried on a timer: the change re-enqueues it.
  const invalid = (reason: string, message: string): Plan => ({
    kind: 'Report',
    report: { outcome: { kind: 'Invalid', reason, message }, template: t, times },
  });
  const tooLong = durationProblem(a, t);
  if (tooLong) return invalid('DurationExceedsMax', tooLong);
  const expiry = expiryDecision(a, t, times, now);
  if (expiry.kind !== 'Running') return afterDeadline(expiry, t, times);

  const ctx: Context = {
    assessment: a,
    template: t,
    config,
    ...(placement?.pool && {
      pooled: claimedNamespace(a, placement.pool.template, placement.namespace),
    }),
  };
  const desired = desiredState(ctx, random);
  const shortfall = quotaShortfall(ctx, namespaceContents(desired));
  if (shortfall) return invalid('QuotaExceeded', shortfall);
  return { kind: 'Provision', template: t, times, desired, placement, ctx };
}

/** The plan of an assessment whose time is over: delete its namespace, or keep it hibernated. */
function afterDeadline(
  d: Exclude<ExpiryDecision, { kind: 'Running' }>,
  t: AssessmentTemplate | undefined,
  times: Timeline | undefined,
): Plan {
  if (d.kind === 'Delete')
    return { kind: 'Expire', report: { outcome: { kind: 'Expired', reason: d.reason }, template: t, times } };
  return {
    kind: 'Hibernate',
    replicas: d.replicas,
    wakeAt: nextWake(d)!,
    report: {
      outcome: { kind: 'Hibernated', until: d.until, reopenedUntil: d.reopenedUntil },
      template: t,
      times,
    },
  };
}

const tracer = trace.getTracer('epreuve-operator');
/** Per database, for connecting and each statement of an in-place rotation: past it, the rotate Job takes over. */
const IN_PLACE_TIMEOUT_MS = 3000;
const NAMESPACE = resourceFor('v1', 'Namespace');

/**
 * reconcile(namespace/name) for one Assessment. Level-triggered: it reads the Assessment, its
 * template and the managed objects from the informer caches and never depends on which event woke
 * it. Each pass has one way out: gather → decide → I/O (apply, delete, finalizer) → one guarded
 * status write, which writes nothing when nothing changed. Unchanged objects are not written either.
 */
export class AssessmentReconciler implements Reconciler {
  private readonly deps: Required<AssessmentReconcilerDeps>;
  private readonly applier: Applier;
  /**
   * Where each assessment lives, as this process decided it (cold, or a claim that succeeded):
   * the caches may not show the claim or the status write yet on the next pass, and an
   * assessment must never claim twice or claim after starting cold.
   */
  private readonly placements = new Map<string, Placement>();
  /**
   * Claimed namespaces whose credentials this process rotated, and how: in place (the namespace's
   * annotation may not be cached yet) or by the Job (which may not be cached yet).
   */
  private readonly rotated = new Map<string, 'inPlace' | 'job'>();
  /**
   * Host keys this process drew for assessments whose status does not show one yet (by uid): the
   * cache may lag the status write that stored it, and a key the candidate may have seen must
   * never be replaced by a second draw.
   */
  private readonly hostKeys = new Map<string, string>();

  constructor(deps: AssessmentReconcilerDeps) {
    this.deps = {
      ...deps,
      now: deps.now ?? (() => new Date()),
      random: deps.random ?? randomBytes,
      events: deps.events ?? NO_EVENTS,
    };
    this.applier = new Applier({
      client: deps.client,
      metrics: deps.metrics,
      cache: (kind) => deps.managed[kind as ManagedKind],
    });
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
    const managed = managedInformers(manager);
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
    // A managed object's change wakes its owner, found from the labels every managed object carries;
    // in a claimed pool namespace, whose objects keep the pool's labels, from the Namespace's claim.
    const ownerChanged = (o: KubeObject, initialList = false) => {
      const ns = o.metadata.labels?.[LABELS.ownerNamespace];
      let name = o.metadata.labels?.[LABELS.assessment];
      if (!name && o.metadata.labels?.[LABELS.pool]) {
        const namespace = o.kind === 'Namespace' ? o : managed.Namespace.get(o.metadata.namespace ?? '');
        if (namespace?.metadata.labels?.[LABELS.poolState] === POOL_STATES.claimed)
          name = namespace.metadata.labels[LABELS.assessment];
      }
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
    let placement = this.placementOf(cached);
    const { config, random } = this.deps;
    let plan = decide(cached, template, config, now, random, placement);

    let a = cached;
    if (plan.kind !== 'Finalize' && !hasCleanupFinalizer(a)) a = await this.addFinalizer(a);
    // First provisioning pass of a pooled template: claim a ready member, or start cold as before.
    // A template being deleted keeps no pool (its members are going): nothing to claim.
    if (
      plan.kind === 'Provision' &&
      !placement &&
      template?.spec.pool &&
      !template.metadata.deletionTimestamp
    ) {
      placement = await this.claim(a, template, now);
      if (placement) plan = decide(a, template, config, now, random, placement);
      // A ready member's Secrets exist (its pods ran with them): creating them again in the
      // claim's pass would only cost a refused create each.
      if (placement && plan.kind === 'Provision') this.applier.assumeSecrets(plan.desired.secrets);
    }
    if (plan.kind === 'Provision')
      this.placements.set(objectKey(a), placement ?? { namespace: namespaceOf(a) });
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
      case 'Hibernate':
        await this.scaleSandboxes(a, plan.replicas);
        // The end of the retention or of a reopen window is a timed requeue, not polling.
        return {
          report: plan.report,
          result: { requeueAfterMs: Math.max(0, plan.wakeAt.getTime() - now.getTime()) + 50 },
        };
      case 'Provision':
        return this.provision(a, plan, now);
    }
  }

  /**
   * Where an assessment lives, when already decided: what this process decided, its status, a
   * claim the caches show (a restart between the claim and the status write), or the namespace a
   * cold start created. Undefined: nothing exists yet.
   */
  private placementOf(a: Assessment & KubeObject): Placement | undefined {
    const key = objectKey(a);
    const known = this.placements.get(key);
    if (known) return known;
    if (a.status?.namespace) return { namespace: a.status.namespace, pool: a.status.pool };
    const claimed = this.deps.managed.Namespace.byIndex(CLAIM_INDEX, key)[0];
    if (claimed)
      return {
        namespace: claimed.metadata.name!,
        pool: {
          template: claimed.metadata.labels![LABELS.pool]!,
          claimedAt:
            claimed.metadata.annotations?.[ANNOTATIONS.claimedAt] ??
            String(claimed.metadata.creationTimestamp ?? ''),
        },
      };
    const cold = candidateNamespace(a.metadata.namespace!, a.metadata.name!);
    if (this.deps.managed.Namespace.get(cold)) return { namespace: cold };
    return undefined;
  }

  /** Claims the oldest free member of the template's pool; a lost race tries the next one. */
  private async claim(
    a: Assessment & KubeObject,
    t: AssessmentTemplate,
    now: Date,
  ): Promise<Placement | undefined> {
    const { metrics } = this.deps;
    for (const member of freeMembers(this.deps.managed.Namespace, t).slice(0, 3)) {
      const claimed = await claimMember(this.deps.client, member, a, now);
      metrics.objectWrites.inc({ kind: 'Namespace', verb: 'patch' });
      if (!claimed) {
        metrics.poolClaims.inc({ result: 'lost' });
        continue;
      }
      metrics.poolClaims.inc({ result: 'claimed' });
      const created = Date.parse(String(a.metadata.creationTimestamp ?? ''));
      if (!Number.isNaN(created)) metrics.poolClaimSeconds.observe((now.getTime() - created) / 1000);
      this.log(a).info({ namespace: member.metadata.name }, 'claimed a warm pool namespace');
      this.deps.events.record(a, {
        type: 'Normal',
        reason: 'Claimed',
        action: 'Claim',
        note: `claimed warm pool namespace ${member.metadata.name}; rotating its credentials`,
      });
      return {
        namespace: member.metadata.name!,
        pool: { template: t.metadata.name!, claimedAt: now.toISOString().replace(/\.\d+Z$/, 'Z') },
      };
    }
    metrics.poolClaims.inc({ result: 'empty' });
    return undefined;
  }

  /**
   * New candidate credentials for a claimed namespace, once per claim: each Secret patched, then
   * set in the databases and data APIs by the operator itself (pool/rotate.ts: one round trip
   * each, no pod start). If a database fails, the rotate Job takes over the databases (its new pod
   * reads the patched Secrets); a data API that fails picks its key up from its mounted Secret
   * when the kubelet syncs it. The namespace's annotation, or the Job's existence (or this
   * process's memory of either), says it was done.
   */
  private async rotateCredentials(
    a: Assessment & KubeObject,
    ctx: Context,
    namespace: string,
  ): Promise<{ inPlace: boolean; job?: KubeObject }> {
    const job = rotateJob(ctx);
    const done = this.rotated.get(namespace);
    const annotated = this.deps.managed.Namespace.get(namespace)?.metadata.annotations?.[ROTATED_ANNOTATION];
    if (done === 'inPlace' || annotated) return { inPlace: true };
    const current = this.deps.managed.Job.get(`${namespace}/${ROTATE_JOB}`);
    if (current || done === 'job') return { inPlace: false, job: current };

    // The response is each Secret as written: the admin credentials come with it (no `get` needed).
    const patched = await Promise.all(
      rotatedCredentials(ctx.template, this.deps.random).map(async ({ sandbox, kind, secret, data }) => {
        const written = await this.deps.client.mergePatch<KubeObject & { data?: Record<string, string> }>(
          resourceFor('v1', 'Secret'),
          namespace,
          secret,
          { data },
        );
        this.deps.metrics.objectWrites.inc({ kind: 'Secret', verb: 'patch' });
        const port = kind === 'dataApi' ? DATA_API_ADMIN_PORT : PORTS[kind];
        return rotateInPlace(
          { sandbox, kind, ...sandboxAddress(this.deps.config, kind, sandbox, namespace, port) },
          decodeSecretData(written.data),
          { timeoutMs: IN_PLACE_TIMEOUT_MS },
        ).then(
          () => ({ kind, error: undefined }),
          (error: Error) => ({ kind, error }),
        );
      }),
    );
    const failed = patched.filter((p) => p.error);
    for (const { error } of failed) {
      this.log(a).warn({ namespace, err: error!.message }, 'in-place credential rotation failed');
      this.deps.events.record(a, {
        type: 'Warning',
        reason: 'RotationFallback',
        action: 'Rotate',
        note: `${error!.message}; ${job ? 'the rotate Job takes over' : 'the data API reloads its mounted key'}`.slice(
          0,
          1000,
        ),
      });
    }
    if (job && failed.some((p) => p.kind !== 'dataApi')) {
      await this.applier.ensure(job);
      this.rotated.set(namespace, 'job');
      return { inPlace: false };
    }
    await this.deps.client.mergePatch(NAMESPACE, undefined, namespace, {
      metadata: { annotations: { [ROTATED_ANNOTATION]: this.deps.now().toISOString() } },
    });
    this.deps.metrics.objectWrites.inc({ kind: 'Namespace', verb: 'patch' });
    this.rotated.set(namespace, 'inPlace');
    return { inPlace: true };
  }

  private async provision(
    a: Assessment & KubeObject,
    plan: Extract<Plan, { kind: 'Provision' }>,
    now: Date,
  ): Promise<PassResult> {
    const { template, times, desired, ctx } = plan;
    const placement = plan.placement ?? { namespace: desired.namespace.metadata.name! };
    let rotation: { inPlace: boolean; job?: KubeObject } = { inPlace: false };
    try {
      await this.applier.applyAll({
        namespace: desired.namespace,
        secrets: desired.secrets,
        contents: namespaceContents(desired),
      });
      if (placement.pool) rotation = await this.rotateCredentials(a, ctx, placement.namespace);
    } catch (err) {
      const reason = err instanceof KubeError ? `Apply${err.reason}` : 'ApplyFailed';
      const message = err instanceof Error ? err.message.slice(0, 1000) : String(err);
      return {
        report: { outcome: { kind: 'ApplyFailed', reason, message }, template, times, placement },
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
      ...(placement.pool && {
        rotateNeeded: rotateJob(ctx) !== undefined,
        rotateJob: rotation.job,
        rotatedInPlace: rotation.inPlace,
      }),
    };
    return {
      report: { outcome, template, times, placement },
      // Expiry is a timed requeue at the deadline, not polling.
      result: times.expiresAt
        ? { requeueAfterMs: Math.max(0, times.expiresAt.getTime() - now.getTime()) + 50 }
        : {},
    };
  }

  /** The namespace an assessment lives in, claimed or cold (derived from its name before anything exists). */
  private namespaceFor(a: Assessment & KubeObject): string {
    return this.placementOf(a)?.namespace ?? namespaceOf(a);
  }

  /** Deletes the candidate namespace if the cache still shows it; the namespace controller does the rest. */
  private async deleteNamespace(a: Assessment & KubeObject): Promise<void> {
    const name = this.namespaceFor(a);
    const ns = this.deps.managed.Namespace.get(name);
    if (!ns || ns.metadata.deletionTimestamp) return;
    await this.deps.client.delete(NAMESPACE, undefined, name, { uid: ns.metadata.uid });
    this.deps.metrics.objectWrites.inc({ kind: 'Namespace', verb: 'delete' });
    this.applier.forgetNamespace(name);
    this.rotated.delete(name);
  }

  /**
   * Hibernation (issue 17): every StatefulSet and Deployment of the candidate namespace (databases,
   * data API, grader, grader store) to `replicas`; their volumes stay (a StatefulSet keeps its
   * PVCs when scaled down). Nothing re-applies them while hibernated: only this sets their replicas.
   */
  private async scaleSandboxes(a: Assessment & KubeObject, replicas: number): Promise<void> {
    const namespace = this.namespaceFor(a);
    if (!this.deps.managed.Namespace.get(namespace)) return;
    for (const kind of ['StatefulSet', 'Deployment'] as const) {
      for (const w of this.deps.managed[kind].list()) {
        if (w.metadata.namespace !== namespace) continue;
        if ((w.spec as { replicas?: number } | undefined)?.replicas === replicas) continue;
        await this.deps.client.mergePatch(resourceFor('apps/v1', kind), namespace, w.metadata.name!, {
          spec: { replicas },
        });
        this.deps.metrics.objectWrites.inc({ kind, verb: 'patch' });
      }
    }
  }

  /** The Assessment is being deleted: delete its namespace, wait until it is gone, then let go. */
  private async finalize(a: Assessment & KubeObject): Promise<PassResult> {
    if (!hasCleanupFinalizer(a)) return { result: {} };
    await this.deleteNamespace(a);
    const namespace = this.namespaceFor(a);
    if (this.deps.managed.Namespace.get(namespace)) {
      // Reported once; the namespace's deletion event re-enqueues us.
      const reported = a.status?.phase === 'Terminating';
      return { report: reported ? undefined : { outcome: { kind: 'Terminating' } }, result: {} };
    }
    // The cache says gone; confirm with the API server before letting the Assessment go.
    if (await this.deps.client.get(NAMESPACE, undefined, namespace))
      return { result: { requeueAfterMs: 1000 } };
    await patchFinalizers(
      this.deps.client,
      KINDS.Assessment,
      a,
      (a.metadata.finalizers ?? []).filter((f) => f !== CLEANUP_FINALIZER),
    );
    this.placements.delete(objectKey(a));
    this.hostKeys.delete(a.metadata.uid ?? objectKey(a));
    this.log(a).info('candidate namespace gone; finalizer removed');
    this.deps.events.record(a, {
      type: 'Normal',
      reason: 'Deleted',
      action: 'Delete',
      note: `candidate namespace ${namespace} is gone; finalizer removed`,
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
  private async writeStatus(
    a: Assessment & KubeObject,
    { outcome, template, times, placement }: Report,
    now: Date,
  ) {
    const status = nextStatus(
      a,
      template,
      outcome,
      times,
      now,
      placement ?? this.placementOf(a),
      this.hostKeyFor(a),
    );
    // Which pass moved the phase (the one that made the assessment Ready), findable in the trace backend.
    if (status.phase !== a.status?.phase)
      trace.getActiveSpan()?.setAttribute('epreuve.assessment.phase', status.phase ?? '');
    this.recordTransition(a, status);
    // Never blocks: the recorder writes in the background, and a failed Event write is only logged.
    for (const event of statusEvents(a.status, status, outcome)) this.deps.events.record(a, event);
    await applyStatusIfChanged(this.deps.client, a, status);
  }

  /**
   * The assessment's host key: the one its status keeps, else one drawn once by this process
   * (assessments created before host keys existed get theirs on their next reconcile).
   */
  private hostKeyFor(a: Assessment & KubeObject): string {
    const uid = a.metadata.uid ?? objectKey(a);
    const stored = a.status?.hostKey;
    if (stored) {
      this.hostKeys.delete(uid);
      return stored;
    }
    let drawn = this.hostKeys.get(uid);
    if (!drawn) {
      drawn = newHostKey(this.deps.random);
      this.hostKeys.set(uid, drawn);
    }
    return drawn;
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
    if (next.phase === 'Hibernated' && before.phase !== 'Hibernated') {
      metrics.expired.inc({ reason: 'Hibernated' });
      this.log(a).info({ until: next.hibernatedUntil }, 'assessment ended; sandboxes hibernated');
    }
    if (next.readyAt && !before.readyAt && a.metadata.creationTimestamp) {
      metrics.timeToReady.observe(
        (Date.parse(next.readyAt) - Date.parse(String(a.metadata.creationTimestamp))) / 1000,
      );
    }
  }
}

const hasCleanupFinalizer = (a: Assessment) => a.metadata.finalizers?.includes(CLEANUP_FINALIZER) ?? false;
