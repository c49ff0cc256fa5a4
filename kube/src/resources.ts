import { KINDS } from '@epreuve/crds';

/**
 * The built-in kinds Épreuve reads or writes, with their REST paths. A static table instead of discovery:
 * the operator only ever touches these, and it saves a round trip per kind at start-up.
 */
export interface ResourceType {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

const table = [
  ['v1', 'Namespace', 'namespaces', false],
  ['v1', 'ResourceQuota', 'resourcequotas', true],
  ['v1', 'LimitRange', 'limitranges', true],
  ['v1', 'ServiceAccount', 'serviceaccounts', true],
  ['v1', 'Secret', 'secrets', true],
  ['v1', 'Service', 'services', true],
  ['v1', 'ConfigMap', 'configmaps', true],
  ['v1', 'Pod', 'pods', true],
  ['v1', 'Event', 'events', true],
  ['apps/v1', 'StatefulSet', 'statefulsets', true],
  ['apps/v1', 'Deployment', 'deployments', true],
  ['batch/v1', 'Job', 'jobs', true],
  ['networking.k8s.io/v1', 'NetworkPolicy', 'networkpolicies', true],
  ['rbac.authorization.k8s.io/v1', 'Role', 'roles', true],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding', 'rolebindings', true],
  ['coordination.k8s.io/v1', 'Lease', 'leases', true],
] as const;

export const RESOURCES: ResourceType[] = [
  ...table.map(([apiVersion, kind, plural, namespaced]) => ({ apiVersion, kind, plural, namespaced })),
  // apply, create and update find a path from the object alone: Épreuve's own kinds must be known too.
  ...Object.values(KINDS),
];

/** A kind's REST resource: a built-in one, or one of Épreuve's (`KINDS` in `@epreuve/crds`, the one place they are spelled). */
export function resourceFor(apiVersion: string, kind: string): ResourceType {
  const r = RESOURCES.find((x) => x.apiVersion === apiVersion && x.kind === kind);
  if (!r) throw new Error(`unknown kind ${apiVersion}/${kind}: add it to kube/src/resources.ts`);
  return r;
}

/** REST path of a collection (namespace omitted → across all namespaces) or of one object. */
export function resourcePath(type: ResourceType, namespace?: string, name?: string): string {
  const base = type.apiVersion.includes('/') ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  const ns = type.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const obj = name ? `/${encodeURIComponent(name)}` : '';
  return `${base}${ns}/${type.plural}${obj}`;
}
