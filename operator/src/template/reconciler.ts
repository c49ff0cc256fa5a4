import {
  type Assessment,
  type AssessmentTemplate,
  FIELD_MANAGER,
  TEMPLATE_PROTECTION_FINALIZER,
} from '@epreuve/crds';
import type { Logger } from 'pino';
import { setCondition } from '../assessment/conditions.ts';
import type { Reconciler, Result } from '../controller/controller.ts';
import type { KubeClient } from '../kube/client.ts';
import { isSubset } from '../kube/compare.ts';
import type { Informer } from '../kube/informer.ts';
import { resourceFor } from '../kube/resources.ts';
import type { KubeObject } from '../kube/types.ts';

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

  private patchFinalizers(t: AssessmentTemplate, finalizers: string[]): Promise<KubeObject> {
    return this.d.client.jsonPatch(
      resourceFor(t.apiVersion, t.kind),
      t.metadata.namespace,
      t.metadata.name!,
      [
        { op: 'test', path: '/metadata/resourceVersion', value: t.metadata.resourceVersion },
        { op: 'add', path: '/metadata/finalizers', value: finalizers },
      ],
    );
  }

  private async writeInUse(t: AssessmentTemplate, users: string[]): Promise<void> {
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
    if (isSubset(status, t.status ?? {}) && isSubset(t.status ?? {}, status)) return;
    await this.d.client.apply(
      {
        apiVersion: t.apiVersion,
        kind: t.kind,
        metadata: { name: t.metadata.name, namespace: t.metadata.namespace },
        status,
      },
      { fieldManager: FIELD_MANAGER, force: true, subresource: 'status' },
    );
  }
}
