import { randomBytes } from 'node:crypto';
import {
  type AssessmentTemplate,
  KINDS,
  LABELS,
  POOL_STATES,
  type PoolStatus,
  poolNamespace,
  shortHash,
} from '@epreuve/crds';
import {
  type EventSink,
  type Informer,
  isConflict,
  isSubset,
  type KubeClient,
  type KubeObject,
  objectKey,
  resourceFor,
} from '@epreuve/kube';
import type { Logger } from 'pino';
import { desiredState, namespaceContents } from '../assessment/desired.ts';
import { type ManagedKind, managedInformers } from '../assessment/reconciler.ts';
import { jobState, workloadReady } from '../assessment/status.ts';
import type { OperatorConfig } from '../config.ts';
import { Applier } from '../controller/apply.ts';
import { Controller, priorityOf, type Reconciler, type Result } from '../controller/controller.ts';
import type { Manager } from '../manager.ts';
import type { Metrics } from '../metrics.ts';
import {
  BUILD_DEADLINE_MS,
  isUnclaimed,
  type Member,
  type MemberState,
  memberContext,
  POOL_FIELD_MANAGER,
  POOL_INDEX,
  planPool,
  templateHash,
} from './members.ts';

const NAMESPACE = resourceFor('v1', 'Namespace');

export interface PoolReconcilerDeps {
  client: KubeClient;
  templates: Informer<AssessmentTemplate & KubeObject>;
  managed: Record<ManagedKind, Informer<KubeObject>>;
  config: OperatorConfig;
  metrics: Metrics;
  log: Logger;
  now?: () => Date;
  random?: (bytes: number) => Buffer;
  events?: EventSink;
}

/**
 * reconcile(team/template) for a template's warm pool: keeps `spec.pool.min` namespaces built
 * and seeded, bound to nobody, within `max`; replaces members built from another template spec and
 * failed builds (with a capped backoff); labels members ready once they are, which is what the
 * Assessment controller claims. Level-triggered like the others: gather from the caches → planPool
 * → deletes, builds, labels → one status write (`status.pool`, under its own field manager).
 */
export class PoolReconciler implements Reconciler {
  private readonly deps: Required<PoolReconcilerDeps>;
  private readonly applier: Applier;
  /** Members this process deleted and the cache may still show alive: never counted twice. */
  private readonly deleted = new Set<string>();
  /** Members this process built that the cache may not show yet, by pool: never built twice. */
  private readonly inFlight = new Map<string, Set<string>>();

  constructor(deps: PoolReconcilerDeps) {
    this.deps = {
      ...deps,
      now: deps.now ?? (() => new Date()),
      random: deps.random ?? randomBytes,
      events: deps.events ?? { record: () => {} },
    };
    this.applier = new Applier({
      client: deps.client,
      metrics: deps.metrics,
      cache: (kind) => deps.managed[kind as ManagedKind],
    });
  }

  /** The pool controller's watches: templates, and every object of a pool namespace (by its labels). */
  static setup(manager: Manager): Controller {
    const { client, config, metrics, log, now, events } = manager;
    const templates = manager.informer<AssessmentTemplate & KubeObject>(KINDS.AssessmentTemplate);
    const managed = managedInformers(manager);
    const reconciler = new PoolReconciler({ client, templates, managed, config, metrics, log, now, events });
    const controller = new Controller('pool', reconciler, { workers: 1, metrics, log });
    const queue = controller.queue;
    const templateChanged = (t: AssessmentTemplate & KubeObject, initialList = false) => {
      // Templates without a pool that never had one are not this controller's business.
      if (t.spec?.pool || t.status?.pool) queue.add(objectKey(t), priorityOf(initialList));
    };
    templates.on({
      add: templateChanged,
      update: (_old, t) => templateChanged(t),
      delete: (t) => queue.add(objectKey(t)),
      resync: (t) => templateChanged(t),
    });
    const memberChanged = (o: KubeObject, initialList = false) => {
      const team = o.metadata.labels?.[LABELS.ownerNamespace];
      const pool = o.metadata.labels?.[LABELS.pool];
      if (team && pool) queue.add(`${team}/${pool}`, priorityOf(initialList));
    };
    for (const informer of Object.values(managed))
      informer.on({
        add: memberChanged,
        update: (_old, o) => memberChanged(o),
        delete: (o) => memberChanged(o),
      });
    manager.add(controller);
    metrics.readPools(() => templates.list());
    return controller;
  }

  async reconcile(key: string): Promise<Result> {
    const t = this.deps.templates.get(key);
    const now = this.deps.now();
    const all = this.deps.managed.Namespace.byIndex(POOL_INDEX, key).filter(
      (ns) => !ns.metadata.deletionTimestamp && !this.deleted.has(ns.metadata.uid ?? ''),
    );
    const claimed = all.filter((ns) => !isUnclaimed(ns)).length;
    const members = all.filter(isUnclaimed).map((ns) => this.observe(ns, t, now));
    const pending = this.inFlight.get(key) ?? new Set<string>();
    for (const name of pending) if (this.deps.managed.Namespace.get(name)) pending.delete(name);
    const plan = planPool(t, members, claimed, now, pending.size);

    for (const { member, reason } of plan.remove) await this.remove(key, member, reason);
    // Level-triggered like a cold start: a member's missing or edited objects are restored (a
    // build cut short by an error or a restart completes on the next pass).
    if (t)
      for (const m of members)
        if (!plan.remove.some((r) => r.member === m)) await this.ensureMember(t, m.name);
    for (const member of plan.markReady) await this.markReady(member);
    if (t && plan.create > 0) {
      this.inFlight.set(key, pending);
      for (let i = 0; i < plan.create; i++) pending.add(await this.build(t));
      this.deps.log.info({ pool: key, built: plan.create }, 'warm pool: building members');
    }
    // From 0, so rate() and the dashboard see a pool's series before its first failure.
    const failed = plan.remove.filter((r) => r.reason === 'Failed').length;
    if (t?.spec.pool) this.deps.metrics.poolFailedBuilds.inc({ template: key }, failed);
    if (t) await this.writeStatus(t, plan.status);
    return plan.requeueAfterMs !== undefined ? { requeueAfterMs: plan.requeueAfterMs } : {};
  }

  /** A member as its namespace, workloads and seed Job show it. */
  private observe(ns: KubeObject, t: AssessmentTemplate | undefined, now: Date): Member {
    const labels = ns.metadata.labels ?? {};
    const createdAt = Date.parse(String(ns.metadata.creationTimestamp ?? now.toISOString()));
    const stale = !t || labels[LABELS.templateHash] !== templateHash(t);
    let observed: MemberState = 'building';
    if (t && !stale) {
      const desired = desiredState(memberContext(t, this.deps.config, ns.metadata.name!), () =>
        Buffer.alloc(32),
      );
      const seed = desired.seed ? jobState(this.deps.managed.Job.get(objectKey(desired.seed))) : 'Succeeded';
      const up =
        desired.workloads.every((w) =>
          workloadReady({
            workloadKind: w.workloadKind,
            current: this.deps.managed[w.workloadKind].get(objectKey(w.workload)),
          }),
        ) &&
        (!desired.grader ||
          workloadReady({
            workloadKind: 'Deployment',
            current: this.deps.managed.Deployment.get(objectKey(desired.grader.workload)),
          }));
      if (
        seed === 'Failed' ||
        (!(up && seed === 'Succeeded') && now.getTime() - createdAt > BUILD_DEADLINE_MS)
      )
        observed = 'failed';
      else if (up && seed === 'Succeeded') observed = 'ready';
    }
    return {
      name: ns.metadata.name!,
      uid: ns.metadata.uid,
      resourceVersion: ns.metadata.resourceVersion,
      createdAt,
      stale,
      observed,
      labelledReady: labels[LABELS.poolState] === POOL_STATES.ready,
    };
  }

  /** Builds one member: its namespace, Secrets and objects, as a cold start would, bound to nobody. */
  private async build(t: AssessmentTemplate): Promise<string> {
    const suffix = shortHash(this.deps.random(16).toString('hex'), 5);
    const name = poolNamespace(t.metadata.namespace!, t.metadata.name!, suffix);
    await this.ensureMember(t, name);
    return name;
  }

  /** Applies what differs from a member's desired state; its Secrets are created once. */
  private async ensureMember(t: AssessmentTemplate, name: string): Promise<void> {
    const desired = desiredState(memberContext(t, this.deps.config, name), this.deps.random);
    await this.applier.applyAll({
      namespace: desired.namespace,
      secrets: desired.secrets,
      contents: namespaceContents(desired),
    });
  }

  /**
   * Deletes an unclaimed member, guarded by its resourceVersion: a claim changes it, so a member
   * claimed since the cache was read is never deleted from under its assessment.
   */
  private async remove(pool: string, m: Member, reason: string): Promise<void> {
    try {
      await this.deps.client.delete(NAMESPACE, undefined, m.name, {
        uid: m.uid,
        resourceVersion: m.resourceVersion,
      });
    } catch (err) {
      if (isConflict(err)) return; // claimed (or changed) meanwhile: the next pass sees it as it is
      throw err;
    }
    if (m.uid) this.deleted.add(m.uid);
    this.applier.forgetNamespace(m.name);
    this.deps.metrics.objectWrites.inc({ kind: 'Namespace', verb: 'delete' });
    this.deps.log.info({ pool, namespace: m.name, reason }, 'warm pool: member deleted');
  }

  /** Labels a member ready (claimable), guarded by resourceVersion like every pool-state change. */
  private async markReady(m: Member): Promise<void> {
    try {
      await this.deps.client.mergePatch(NAMESPACE, undefined, m.name, {
        metadata: { resourceVersion: m.resourceVersion, labels: { [LABELS.poolState]: POOL_STATES.ready } },
      });
    } catch (err) {
      if (isConflict(err)) return;
      throw err;
    }
    this.deps.metrics.objectWrites.inc({ kind: 'Namespace', verb: 'patch' });
  }

  /** `status.pool` alone, under the pool's field manager; nothing is written when nothing changed. */
  private async writeStatus(t: AssessmentTemplate & KubeObject, pool: PoolStatus): Promise<void> {
    const current = t.status?.pool;
    const wanted = t.spec.pool ? pool : undefined;
    if (!wanted && !current) return;
    if (wanted && current && isSubset(wanted, current) && isSubset(current, wanted)) return;
    await this.deps.client.apply(
      {
        apiVersion: t.apiVersion,
        kind: t.kind,
        metadata: { name: t.metadata.name, namespace: t.metadata.namespace },
        // Without a pool, an empty apply hands back the field this manager owned: status.pool goes.
        status: wanted ? { pool: wanted } : {},
      },
      { fieldManager: POOL_FIELD_MANAGER, force: true, subresource: 'status' },
    );
  }
}
