import { FIELD_MANAGER, STATUS_FIELDS_NOT_THE_OPERATORS } from '@epreuve/crds';
import { isSubset, type KubeClient, type KubeObject, type ResourceType } from '@epreuve/kube';

/** Writes a custom resource's status (server-side apply), only when it differs from what is stored. */
export async function applyStatusIfChanged(
  client: KubeClient,
  obj: KubeObject & { status?: object },
  status: object,
): Promise<boolean> {
  // Fields other processes write (the gateway's signals) are theirs: not compared, never applied.
  const current: Record<string, unknown> = { ...(obj.status ?? {}) };
  for (const field of STATUS_FIELDS_NOT_THE_OPERATORS) delete current[field];
  if (isSubset(status, current) && isSubset(current, status)) return false;
  await client.apply(
    {
      apiVersion: obj.apiVersion,
      kind: obj.kind,
      metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace },
      status,
    },
    { fieldManager: FIELD_MANAGER, force: true, subresource: 'status' },
  );
  return true;
}

/** Replaces the finalizer list, guarded by resourceVersion so nobody else's finalizer is lost. */
export function patchFinalizers<T extends KubeObject>(
  client: KubeClient,
  type: ResourceType,
  obj: KubeObject,
  finalizers: string[],
): Promise<T> {
  return client.jsonPatch(type, obj.metadata.namespace, obj.metadata.name!, [
    { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
    { op: 'add', path: '/metadata/finalizers', value: finalizers },
  ]);
}
