import { decodeSecretData } from '@epreuve/crds';
import { type KubeClient, type KubeObject, resourceFor } from '@epreuve/kube';

const SECRET = resourceFor('v1', 'Secret');

/** A Secret's data, decoded; undefined when it does not exist (yet). */
export async function readSecretData(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<Record<string, string> | undefined> {
  const secret = await client.get<KubeObject & { data?: Record<string, string> }>(SECRET, namespace, name);
  if (!secret?.data) return undefined;
  return decodeSecretData(secret.data);
}
