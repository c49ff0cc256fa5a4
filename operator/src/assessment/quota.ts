import { GRADER_STORE } from '@epreuve/crds';
import { type KubeObject, parseQuantity } from '@epreuve/kube';
import type { Context } from './desired.ts';

interface PodTemplate {
  spec: {
    containers: Array<{ resources?: { limits?: Record<string, string>; requests?: Record<string, string> } }>;
  };
}

/**
 * Checks, before anything is created, that the sandboxes fit in the template's resources: a quota
 * too small would otherwise leave pods silently uncreated. Returns a message naming what is short.
 */
export function quotaShortfall(ctx: Context, objects: KubeObject[]): string | undefined {
  let cpu = 0;
  let memory = 0;
  let storage = 0;
  for (const obj of objects) {
    const spec = obj.spec as {
      template?: PodTemplate;
      volumeClaimTemplates?: Array<{ spec: { resources: { requests: { storage: string } } } }>;
    };
    if (!spec?.template) continue;
    // The grader store comes on top of the template's resources (desired.ts withGraderStore).
    if (obj.metadata?.labels?.['app.kubernetes.io/name'] === GRADER_STORE.name) continue;
    for (const c of spec.template.spec.containers) {
      cpu += parseQuantity(c.resources?.limits?.cpu ?? '0');
      memory += parseQuantity(c.resources?.limits?.memory ?? '0');
    }
    for (const vct of spec.volumeClaimTemplates ?? [])
      storage += parseQuantity(vct.spec.resources.requests.storage);
  }
  const r = ctx.template.spec.resources;
  const short: string[] = [];
  if (cpu > parseQuantity(r.cpu) + 1e-9)
    short.push(`cpu: sandboxes need ${fmt(cpu)} but resources.cpu is ${r.cpu}`);
  if (memory > parseQuantity(r.memory))
    short.push(`memory: sandboxes need ${bytes(memory)} but resources.memory is ${r.memory}`);
  if (storage > parseQuantity(r.storage)) {
    short.push(`storage: sandboxes need ${bytes(storage)} but resources.storage is ${r.storage}`);
  }
  return short.length
    ? `template ${ctx.template.metadata.name} is too small — ${short.join('; ')}`
    : undefined;
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : `${Math.round(n * 1000)}m`);
const bytes = (n: number) => (n % 2 ** 30 === 0 ? `${n / 2 ** 30}Gi` : `${Math.ceil(n / 2 ** 20)}Mi`);
