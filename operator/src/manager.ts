import { type Assessment, type AssessmentTemplate, LABELS, MANAGED_BY, PHASES } from '@epreuve/crds';
import { Informer, type KubeClient, type KubeObject, objectKey, resourceFor } from '@epreuve/kube';
import type { Logger } from 'pino';
import { AssessmentReconciler, MANAGED_KINDS, type ManagedKind } from './assessment/reconciler.ts';
import type { OperatorConfig } from './config.ts';
import { Controller } from './controller/controller.ts';
import type { Metrics } from './metrics.ts';
import { TEMPLATE_INDEX, TemplateReconciler, templateKeyOf } from './template/reconciler.ts';

type A = Assessment & KubeObject;
type T = AssessmentTemplate & KubeObject;

/**
 * Wires informers → workqueues → reconcilers: one controller per kind (Assessment, and
 * AssessmentTemplate for template protection). Workers start only once every cache has synced.
 */
export class Manager {
  readonly assessments: Informer<A>;
  readonly templates: Informer<T>;
  readonly managed: Record<ManagedKind, Informer<KubeObject>>;
  readonly assessmentController: Controller;
  readonly templateController: Controller;
  private readonly informers: Informer<KubeObject>[];
  private readonly abort = new AbortController();
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly runs: Promise<void>[] = [];
  private gaugeTimer?: NodeJS.Timeout;

  constructor(opts: {
    client: KubeClient;
    config: OperatorConfig;
    metrics: Metrics;
    log: Logger;
    now?: () => Date;
  }) {
    const { client, config, metrics, log } = opts;
    this.metrics = metrics;
    this.log = log;
    const resyncMs = config.EPREUVE_RESYNC_SECONDS * 1000;
    const informer = <X extends KubeObject>(apiVersion: string, kind: string, labelSelector?: string) =>
      new Informer<X>(client, { type: resourceFor(apiVersion, kind), labelSelector, resyncMs, log });

    this.assessments = informer<A>('epreuve.dev/v1alpha1', 'Assessment').addIndex(TEMPLATE_INDEX, (a) => [
      templateKeyOf(a),
    ]);
    this.templates = informer<T>('epreuve.dev/v1alpha1', 'AssessmentTemplate');
    const selector = `${LABELS.managedBy}=${MANAGED_BY}`;
    this.managed = Object.fromEntries(
      MANAGED_KINDS.map(([apiVersion, kind]) => [kind, informer(apiVersion, kind, selector)]),
    ) as Record<ManagedKind, Informer<KubeObject>>;
    this.informers = [
      this.assessments,
      this.templates,
      ...Object.values(this.managed),
    ] as Informer<KubeObject>[];

    metrics.readCaches({
      assessments: () => this.assessments.list(),
      quotas: () => this.managed.ResourceQuota.list(),
      now: opts.now && (() => opts.now!().getTime()),
    });

    const workers = config.EPREUVE_WORKERS;
    this.assessmentController = new Controller(
      'assessment',
      new AssessmentReconciler({
        client,
        assessments: this.assessments,
        templates: this.templates,
        managed: this.managed,
        config,
        metrics,
        log,
        now: opts.now,
      }),
      { workers, metrics, log },
    );
    this.templateController = new Controller(
      'assessmenttemplate',
      new TemplateReconciler({
        client,
        templates: this.templates,
        assessments: this.assessments,
        log,
        now: opts.now,
      }),
      { workers: 1, metrics, log },
    );

    const assessmentQueue = this.assessmentController.queue;
    const templateQueue = this.templateController.queue;
    // What a (re)start or a resync finds is re-checked behind what just changed: low priority.
    const priority = (initialList: boolean) => (initialList ? 'low' : 'normal');
    // Any assessment change may also change whether its template is in use.
    const assessmentChanged = (a: A, initialList = false) => {
      assessmentQueue.add(objectKey(a), priority(initialList));
      templateQueue.add(templateKeyOf(a), priority(initialList));
    };
    this.assessments.on({
      add: assessmentChanged,
      update: (_o, a) => assessmentChanged(a),
      delete: (a) => templateQueue.add(templateKeyOf(a)),
      resync: (a) => assessmentQueue.add(objectKey(a), 'low'),
    });

    // A template change re-enqueues exactly the assessments that use it (index lookup, no scan).
    const templateChanged = (t: T, initialList = false) => {
      templateQueue.add(objectKey(t), priority(initialList));
      for (const a of this.assessments.byIndex(TEMPLATE_INDEX, objectKey(t)))
        assessmentQueue.add(objectKey(a), priority(initialList));
    };
    this.templates.on({
      add: templateChanged,
      update: (_o, t) => templateChanged(t),
      delete: templateChanged,
      resync: (t) => templateQueue.add(objectKey(t), 'low'),
    });

    // A managed object's change wakes its owner, found from the labels every managed object carries.
    const owner = (o: KubeObject, initialList = false) => {
      const ns = o.metadata.labels?.[LABELS.ownerNamespace];
      const name = o.metadata.labels?.[LABELS.assessment];
      if (ns && name) assessmentQueue.add(`${ns}/${name}`, priority(initialList));
    };
    for (const inf of Object.values(this.managed))
      inf.on({ add: owner, update: (_o, n) => owner(n), delete: owner });
  }

  /** Starts the informers, waits for their caches, then starts the workers. */
  async start(): Promise<void> {
    for (const inf of this.informers) this.runs.push(inf.run(this.abort.signal));
    const started = Date.now();
    await Promise.all(this.informers.map((i) => i.waitForSync()));
    this.log.info(
      { ms: Date.now() - started, informers: this.informers.length },
      'caches synced; starting workers',
    );
    this.assessmentController.start();
    this.templateController.start();
    this.updatePhaseGauge();
    this.gaugeTimer = setInterval(() => this.updatePhaseGauge(), 5000);
    this.gaugeTimer.unref();
  }

  private updatePhaseGauge(): void {
    const counts = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<string, number>;
    for (const a of this.assessments.list()) counts[a.status?.phase ?? 'Pending']! += 1;
    for (const [phase, n] of Object.entries(counts)) this.metrics.assessments.set({ phase }, n);
  }

  /** Stops taking work, finishes the reconciles in flight, then stops the informers. */
  async stop(): Promise<void> {
    clearInterval(this.gaugeTimer);
    await Promise.all([this.assessmentController.stop(), this.templateController.stop()]);
    this.abort.abort();
    await Promise.allSettled(this.runs);
  }
}
