import type { EventInput, KubeClient, KubeObject } from '@epreuve/kube';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { TemplateReconciler } from './reconciler.ts';

const template = (deleting: boolean): KubeObject => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'AssessmentTemplate',
  metadata: {
    name: 'data-engineer',
    namespace: 'hiring',
    uid: 't-uid',
    resourceVersion: '3',
    finalizers: ['epreuve.dev/template-protection'],
    ...(deleting ? { deletionTimestamp: '2026-11-22T10:00:00Z' } : {}),
  },
});
const user = (name: string) => ({ metadata: { name, namespace: 'hiring' }, status: { phase: 'Ready' } });

function reconcilerOver(t: KubeObject, users: unknown[]) {
  const recorded: Array<EventInput & { regarding: string }> = [];
  const client = {
    jsonPatch: async () => t,
    apply: async (o: KubeObject) => o,
  } as unknown as KubeClient;
  const reconciler = new TemplateReconciler({
    client,
    templates: { get: () => t } as never,
    assessments: { byIndex: () => users } as never,
    log: pino({ level: 'silent' }),
    events: { record: (o, e) => recorded.push({ regarding: (o as KubeObject).metadata.uid!, ...e }) },
  });
  return { reconciler, recorded };
}

describe('TemplateReconciler Events', () => {
  it('DeletionBlocked (Warning) while running assessments hold a template being deleted', async () => {
    const { reconciler, recorded } = reconcilerOver(template(true), [user('jane'), user('john')]);
    await reconciler.reconcile('hiring/data-engineer');
    expect(recorded).toEqual([
      {
        regarding: 't-uid',
        type: 'Warning',
        reason: 'DeletionBlocked',
        action: 'Delete',
        note: 'deletion waits for 2 running assessment(s): jane, john',
      },
    ]);
  });

  it('DeletionAllowed once the last one is gone; nothing for a template not being deleted', async () => {
    const freed = reconcilerOver(template(true), []);
    await freed.reconciler.reconcile('hiring/data-engineer');
    expect(freed.recorded.map((e) => `${e.reason} (${e.type})`)).toEqual(['DeletionAllowed (Normal)']);

    const kept = reconcilerOver(template(false), [user('jane')]);
    await kept.reconciler.reconcile('hiring/data-engineer');
    expect(kept.recorded).toEqual([]);
  });
});
