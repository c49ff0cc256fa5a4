import { type Assessment, type AssessmentTemplate, TEMPLATE_PROTECTION_FINALIZER } from '@epreuve/crds';
import type { Informer, KubeClient, KubeObject } from '@epreuve/kube';
import type { Logger } from 'pino';
import { setCondition } from '../assessment/conditions.ts';
import type { Reconciler, Result } from '../controller/controller.ts';
import { applyStatusIfChanged, patchFinalizers } from '../controller/writes.ts';

export const TEMPLATE_INDEX = 'template';

/** Index key of an assessment's template: `namespace/templateName`. */
export const templateKeyOf = (a: Assessment) => `${a.metadata.namespace}/${a.spec.templateRef.name}`;

/**
 * Template protection, like Kubernetes' pvc-protection: a template in use by a running assessment
 * is not deleted until the last such assessment ends (Expired) or is deleted — running sandboxes
 * keep the spec they were made from, and nobody loses a candidate's session by tidying templates.
 * The InUse condition says which assessments hold it.
 */
export class TemplateReconciler implements Reconciler {
  private readonly d: {
    client: KubeClient;
    templates: Informer<AssessmentTemplate & KubeObject>;
    assessments: Informer<Assessment & KubeObject>;
    log: Logger;
    now?: () => Date;
  };

  constructor(deps: TemplateReconciler['d']) {
    this.d = deps;
  }

  async reconcile(key: string): Promise<Result> {
    const t = this.d.templates.get(key);
    if (!t) return {};
    const users = this.d.assessments
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
        this.d.log.info({ template: key }, 'template no longer in use; deletion may proceed');
        return {};
      }
    } else if (!has) {
      t.metadata = (await this.patchFinalizers(t, [...finalizers, TEMPLATE_PROTECTION_FINALIZER])).metadata;
    }
    await this.writeInUse(t, users);
    return {};
  }

  private patchFinalizers(t: AssessmentTemplate & KubeObject, finalizers: string[]): Promise<KubeObject> {
    return patchFinalizers(this.d.client, t, finalizers);
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
      (this.d.now ?? (() => new Date()))(),
    );
    const status = { observedGeneration: t.metadata.generation, conditions };
    await applyStatusIfChanged(this.d.client, t as AssessmentTemplate & KubeObject, status);
  }
}
