import { randomBytes } from 'node:crypto';
import {
  ANNOTATIONS,
  type Assessment,
  type AssessmentStatus,
  type AssessmentTemplate,
  CLEANUP_FINALIZER,
  durationProblem,
  FIELD_MANAGER,
  timeline,
} from '@epreuve/crds';
import {
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
import { trace } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { OperatorConfig } from '../config.ts';
import type { Reconciler, Result } from '../controller/controller.ts';
import { applyStatusIfChanged, patchFinalizers } from '../controller/writes.ts';
import type { Metrics } from '../metrics.ts';
import {
  type Context,
  credentialsSecret,
  desiredObjects,
  namespaceOf,
  SEED_JOB,
  seededSandboxes,
} from './desired.ts';
import { quotaShortfall } from './quota.ts';
import { nextStatus, type Outcome } from './status.ts';

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
}

const tracer = trace.getTracer('epreuve-operator');

/**
 * reconcile(namespace/name) for one Assessment. Level-triggered: it reads the Assessment, its
 * template and the managed objects from the informer caches, converges the candidate namespace,
 * and writes status — never depending on which event woke it. Unchanged objects are not written.
 */
export class AssessmentReconciler implements Reconciler {
  private readonly d: Required<AssessmentReconcilerDeps>;
  /** Secrets known to exist (created, or found by a 409). Credentials are generated once, ever. */
  private readonly secretsCreated = new Set<string>();

  constructor(deps: AssessmentReconcilerDeps) {
    this.d = { ...deps, now: deps.now ?? (() => new Date()), random: deps.random ?? randomBytes };
  }

  reconcile(key: string): Promise<Result> {
    const a = this.d.assessments.get(key);
    const link = linkFromTraceparent(a?.metadata.annotations?.[ANNOTATIONS.traceparent]);
    return tracer.startActiveSpan(
      'reconcile Assessment',
      { links: link ? [link] : [], attributes: { 'epreuve.assessment': key } },
      async (span) => {
        try {
          return a ? await this.reconcileAssessment(a) : {};
        } finally {
          span.end();
        }
      },
    );
  }

  private log(a: Assessment): Logger {
    return this.d.log.child({ assessment: `${a.metadata.namespace}/${a.metadata.name}` });
  }

  private async reconcileAssessment(a: Assessment & KubeObject): Promise<Result> {
    if (a.metadata.deletionTimestamp) return this.finalize(a);
    if (!a.metadata.finalizers?.includes(CLEANUP_FINALIZER)) a = await this.addFinalizer(a);

    if (a.status?.phase === 'Expired') {
      // Terminal: the namespace was deleted when time ran out; make sure it stays gone.
      await this.deleteNamespace(a);
      return {};
    }
    const t = this.d.templates.get(`${a.metadata.namespace}/${a.spec.templateRef.name}`);
    if (!t) {
      // No polling: creating the template re-enqueues this assessment through the template index.
      await this.writeStatus(
        a,
        nextStatus(a, undefined, { kind: 'TemplateNotFound' }, undefined, this.d.now()),
      );
      return {};
    }
    const now = this.d.now();
    const times = timeline(a, t);
    const invalid = durationProblem(a, t);
    if (invalid) return this.fail(a, t, 'DurationExceedsMax', invalid);

    if (a.spec.revoked) return this.expire(a, t, 'Revoked');
    if (times.expiresAt && now >= times.expiresAt) return this.expire(a, t, 'DeadlineReached');

    const ctx: Context = { assessment: a, template: t, config: this.d.config };
    const objects = desiredObjects(ctx);
    const shortfall = quotaShortfall(ctx, objects);
    if (shortfall) return this.fail(a, t, 'QuotaExceeded', shortfall);

    try {
      await this.applyAll(ctx, objects);
    } catch (err) {
      const reason = err instanceof KubeError ? `Apply${err.reason}` : 'ApplyFailed';
      const message = err instanceof Error ? err.message.slice(0, 1000) : String(err);
      await this.writeStatus(a, nextStatus(a, t, { kind: 'ApplyFailed', reason, message }, times, now));
      throw err; // requeued with per-key backoff, never a hot loop
    }

    const ns = namespaceOf(a);
    const workloads = Object.fromEntries(
      t.spec.sandboxes.map((s) => {
        const kind = s.dataApi ? 'Deployment' : 'StatefulSet';
        return [s.name, this.d.managed[kind].get(`${ns}/${s.name}`)];
      }),
    );
    const outcome: Outcome = {
      kind: 'Applied',
      workloads,
      seedJob: this.d.managed.Job.get(`${ns}/${SEED_JOB}`),
      seedNeeded: seededSandboxes(t).length > 0,
    };
    const status = nextStatus(a, t, outcome, times, now);
    if (status.phase === 'Failed' && a.status?.phase !== 'Failed') {
      this.d.metrics.failures.inc({
        reason: status.conditions?.find((c) => c.type === 'Ready')?.reason ?? 'Unknown',
      });
    }
    if (status.readyAt && !a.status?.readyAt && a.metadata.creationTimestamp) {
      this.d.metrics.timeToReady.observe(
        (Date.parse(status.readyAt) - Date.parse(String(a.metadata.creationTimestamp))) / 1000,
      );
    }
    await this.writeStatus(a, status);
    return times.expiresAt
      ? { requeueAfterMs: Math.max(0, times.expiresAt.getTime() - now.getTime()) + 50 }
      : {};
  }

  /** Applies every desired object that is missing or differs from the cache; creates Secrets once. */
  private async applyAll(ctx: Context, objects: KubeObject[]): Promise<void> {
    const [nsObject, ...rest] = objects;
    await this.ensure(nsObject!);
    // Secrets before workloads: pods need them, and credentials must exist before the database starts.
    for (const s of ctx.template.spec.sandboxes)
      await this.ensureSecret(credentialsSecret(ctx, s, this.d.random));
    await Promise.all(rest.map((obj) => this.ensure(obj)));
  }

  private async ensure(obj: KubeObject): Promise<void> {
    const cache = this.d.managed[obj.kind as ManagedKind];
    const current = cache.get(objectKey(obj));
    // A Job's pod template is immutable and the seed runs once: create it, never update it.
    if (current && (obj.kind === 'Job' || isSubset(obj, current))) return;
    await this.d.client.apply(obj, { fieldManager: FIELD_MANAGER, force: true });
    this.d.metrics.objectWrites.inc({ kind: obj.kind, verb: 'apply' });
  }

  private async ensureSecret(secret: KubeObject): Promise<void> {
    const key = objectKey(secret);
    if (this.secretsCreated.has(key)) return;
    try {
      await this.d.client.create(secret, { fieldManager: FIELD_MANAGER });
      this.d.metrics.objectWrites.inc({ kind: 'Secret', verb: 'create' });
    } catch (err) {
      if (!isConflict(err)) throw err; // 409: it exists, and its credentials must never change
    }
    this.secretsCreated.add(key);
  }

  private async fail(a: Assessment, t: AssessmentTemplate, reason: string, message: string): Promise<Result> {
    if (a.status?.phase !== 'Failed') this.d.metrics.failures.inc({ reason });
    this.log(a).warn({ reason, message }, 'assessment cannot be provisioned');
    await this.writeStatus(
      a,
      nextStatus(a, t, { kind: 'Invalid', reason, message }, timeline(a, t), this.d.now()),
    );
    return {}; // a spec or template change re-enqueues it
  }

  private async expire(
    a: Assessment,
    t: AssessmentTemplate,
    reason: 'DeadlineReached' | 'Revoked',
  ): Promise<Result> {
    await this.deleteNamespace(a);
    if (a.status?.phase !== 'Expired') {
      this.d.metrics.expired.inc({ reason });
      this.log(a).info({ reason }, 'assessment ended; candidate namespace deleted');
    }
    await this.writeStatus(a, nextStatus(a, t, { kind: 'Expired', reason }, timeline(a, t), this.d.now()));
    return {};
  }

  /** Deletes the candidate namespace if the cache still shows it; the namespace controller does the rest. */
  private async deleteNamespace(a: Assessment): Promise<void> {
    const ns = this.d.managed.Namespace.get(namespaceOf(a));
    if (!ns || ns.metadata.deletionTimestamp) return;
    await this.d.client.delete(resourceFor('v1', 'Namespace'), undefined, namespaceOf(a), {
      uid: ns.metadata.uid,
    });
    this.d.metrics.objectWrites.inc({ kind: 'Namespace', verb: 'delete' });
    for (const key of this.secretsCreated)
      if (key.startsWith(`${namespaceOf(a)}/`)) this.secretsCreated.delete(key);
  }

  /** The Assessment is being deleted: delete its namespace, wait until it is gone, then let go. */
  private async finalize(a: Assessment & KubeObject): Promise<Result> {
    if (!a.metadata.finalizers?.includes(CLEANUP_FINALIZER)) return {};
    await this.deleteNamespace(a);
    if (this.d.managed.Namespace.get(namespaceOf(a))) {
      if (a.status?.phase !== 'Terminating') {
        await this.writeStatus(a, nextStatus(a, undefined, { kind: 'Terminating' }, undefined, this.d.now()));
      }
      return {}; // the namespace's deletion event re-enqueues us
    }
    // The cache says gone; confirm with the API server before letting the Assessment go.
    const live = await this.d.client.get(resourceFor('v1', 'Namespace'), undefined, namespaceOf(a));
    if (live) return { requeueAfterMs: 1000 };
    await this.patchFinalizers(
      a,
      (a.metadata.finalizers ?? []).filter((f) => f !== CLEANUP_FINALIZER),
    );
    this.log(a).info('candidate namespace gone; finalizer removed');
    return {};
  }

  private async addFinalizer(a: Assessment & KubeObject): Promise<Assessment & KubeObject> {
    return this.patchFinalizers(a, [...(a.metadata.finalizers ?? []), CLEANUP_FINALIZER]);
  }

  private patchFinalizers(
    a: Assessment & KubeObject,
    finalizers: string[],
  ): Promise<Assessment & KubeObject> {
    return patchFinalizers(this.d.client, a, finalizers);
  }

  private async writeStatus(a: Assessment, status: AssessmentStatus): Promise<void> {
    await applyStatusIfChanged(this.d.client, a as Assessment & KubeObject, status);
  }
}
