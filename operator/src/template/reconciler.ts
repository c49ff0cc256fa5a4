import {
  type Assessment,
  type AssessmentTemplate,
  KINDS,
  TEMPLATE_PROTECTION_FINALIZER,
} from '@epreuve/crds';
import { type EventSink, type Informer, type KubeClient, type KubeObject, objectKey } from '@epreuve/kube';
import type { Logger } from 'pino';
import { setCondition } from '../assessment/conditions.ts';
import { Controller, priorityOf, type Reconciler, type Result } from '../controller/controller.ts';
import { applyStatusIfChanged, patchFinalizers } from '../controller/writes.ts';
import type { Manager } from '../manager.ts';

export const TEMPLATE_INDEX = 'template';

/** Index key of an assessment's template: `namespace/templateName`. */
export const templateKeyOf = (a: Assessment) => `${a.metadata.namespace}/${a.spec.templateRef.name}`;

/** The assessments informer's indexes both controllers look assessments up by. */
export const ASSESSMENT_INDEXES = {
  [TEMPLATE_INDEX]: (a: Assessment & KubeObject) => [templateKeyOf(a)],
};

export interface TemplateReconcilerDeps {
  client: KubeClient;
  templates: Informer<AssessmentTemplate & KubeObject>;
  assessments: Informer<Assessment & KubeObject>;
  log: Logger;
  now?: () => Date;
  /** Kubernetes Events about each template (none when absent). */
  events?: EventSink;
}

/**
 * Template protection, like Kubernetes' pvc-protection: a template in use by a running assessment
 * is not deleted until the last such assessment ends (Expired) or is deleted — running sandboxes
 * keep the spec they were made from, and nobody loses a candidate's session by tidying templates.
 * The InUse condition says which assessments hold it.
 */
export class TemplateReconciler implements Reconciler {
  private readonly deps: TemplateReconcilerDeps;

  constructor(deps: TemplateReconcilerDeps) {
    this.deps = deps;
  }

  /**
   * The template controller's watches, like kubebuilder's SetupWithManager: its templates, and
   * every assessment change, since any may change whether its template is in use.
   */
  static setup(manager: Manager): Controller {
    const { client, metrics, log, now, events } = manager;
    const templates = manager.informer<AssessmentTemplate & KubeObject>(KINDS.AssessmentTemplate);
    const assessments = manager.informer<Assessment & KubeObject>(KINDS.Assessment, {
      indexes: ASSESSMENT_INDEXES,
    });
    const controller = new Controller(
      'assessmenttemplate',
      new TemplateReconciler({ client, templates, assessments, log, now, events }),
      { workers: 1, metrics, log },
    );
    const queue = controller.queue;
    templates.on({
      add: (t, initialList) => queue.add(objectKey(t), priorityOf(initialList)),
      update: (_old, t) => queue.add(objectKey(t)),
      delete: (t) => queue.add(objectKey(t)),
      resync: (t) => queue.add(objectKey(t), 'low'),
    });
    assessments.on({
      add: (a, initialList) => queue.add(templateKeyOf(a), priorityOf(initialList)),
      update: (_old, a) => queue.add(templateKeyOf(a)),
      delete: (a) => queue.add(templateKeyOf(a)),
    });
    manager.add(controller);
    return controller;
  }

  async reconcile(key: string): Promise<Result> {
    const t = this.deps.templates.get(key);
    if (!t) return {};
    const users = this.deps.assessments
      .byIndex(TEMPLATE_INDEX, key)
      .filter((a) => a.status?.phase !== 'Expired' && !a.metadata.deletionTimestamp)
      .map((a) => a.metadata.name!)
      .sort();
    const finalizers = t.metadata.finalizers ?? [];
    const has = finalizers.includes(TEMPLATE_PROTECTION_FINALIZER);
    if (t.metadata.deletionTimestamp) {
      if (users.length === 0 && has) {
        await this.patchFinalizers(
          t,
          finalizers.filter((f) => f !== TEMPLATE_PROTECTION_FINALIZER),
        );
        this.deps.log.info({ template: key }, 'template no longer in use; deletion may proceed');
        this.deps.events?.record(t, {
          type: 'Normal',
          reason: 'DeletionAllowed',
          action: 'Delete',
          note: 'no running assessment uses this template any more; deletion proceeds',
        });
        return {};
      }
      // Told on each pass while blocked; the recorder folds identical ones into one series.
      if (users.length > 0)
        this.deps.events?.record(t, {
          type: 'Warning',
          reason: 'DeletionBlocked',
          action: 'Delete',
          note: `deletion waits for ${users.length} running assessment(s): ${users.slice(0, 10).join(', ')}${users.length > 10 ? ', …' : ''}`,
        });
    } else if (!has) {
      t.metadata = (await this.patchFinalizers(t, [...finalizers, TEMPLATE_PROTECTION_FINALIZER])).metadata;
    }
    await this.writeInUse(t, users);
    return {};
  }

  private patchFinalizers(t: AssessmentTemplate & KubeObject, finalizers: string[]): Promise<KubeObject> {
    return patchFinalizers(this.deps.client, KINDS.AssessmentTemplate, t, finalizers);
  }

  private async writeInUse(t: AssessmentTemplate & KubeObject, users: string[]): Promise<void> {
    const shown =
      users.slice(0, 10).join(', ') + (users.length > 10 ? `, and ${users.length - 10} more` : '');
    const conditions = setCondition(
      t.status?.conditions,
      users.length
        ? {
            type: 'InUse',
            status: 'True',
            reason: 'AssessmentsRunning',
            message: `used by ${users.length} running assessment(s): ${shown}`,
            observedGeneration: t.metadata.generation,
          }
        : {
            type: 'InUse',
            status: 'False',
            reason: 'Unused',
            message: 'no running assessment uses this template',
            observedGeneration: t.metadata.generation,
          },
      (this.deps.now ?? (() => new Date()))(),
    );
    const status = { observedGeneration: t.metadata.generation, conditions };
    // status.pool is the pool controller's (its own field manager): compared without it, never written here.
    const { pool: _pool, ...mine } = t.status ?? {};
    await applyStatusIfChanged(this.deps.client, { ...t, status: mine }, status);
  }
}
