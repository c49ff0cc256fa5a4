import { FIELD_MANAGER } from '@epreuve/crds';
import {
  type Informer,
  isConflict,
  isSubset,
  type KubeClient,
  type KubeObject,
  objectKey,
} from '@epreuve/kube';
import type { Metrics } from '../metrics.ts';

/** What a namespace's desired state is written as: the namespace, its Secrets, then what it holds. */
export interface NamespaceBundle {
  namespace: KubeObject;
  /** Created once, never applied again: credentials never change behind a running sandbox. */
  secrets: KubeObject[];
  /** Applied once the namespace and its Secrets exist. */
  contents: KubeObject[];
}

export interface ApplierDeps {
  client: KubeClient;
  metrics: Metrics;
  /** The informer cache of each kind applied, by kind. */
  cache: (kind: string) => Informer<KubeObject>;
}

/**
 * Writes desired objects the way every Épreuve controller does: server-side apply of what is
 * missing or differs from the informer cache, Secrets created once. Shared by the Assessment and
 * pool controllers, which build the same namespaces.
 */
export class Applier {
  /** Secrets known to exist (created, or found by a 409). Credentials are generated once, ever. */
  private readonly secretsCreated = new Set<string>();

  private readonly deps: ApplierDeps;

  constructor(deps: ApplierDeps) {
    this.deps = deps;
  }

  async applyAll(bundle: NamespaceBundle): Promise<void> {
    await this.ensure(bundle.namespace);
    // Secrets before workloads: pods need them, and credentials must exist before the database starts.
    for (const secret of bundle.secrets) await this.ensureSecret(secret);
    await Promise.all(bundle.contents.map((obj) => this.ensure(obj)));
  }

  async ensure(obj: KubeObject): Promise<void> {
    const current = this.deps.cache(obj.kind).get(objectKey(obj));
    // A Job's pod template is immutable and the seed runs once: create it, never update it.
    if (current && (obj.kind === 'Job' || isSubset(obj, current))) return;
    await this.deps.client.apply(obj, { fieldManager: FIELD_MANAGER, force: true });
    this.deps.metrics.objectWrites.inc({ kind: obj.kind, verb: 'apply' });
  }

  async ensureSecret(secret: KubeObject): Promise<void> {
    const key = objectKey(secret);
    if (this.secretsCreated.has(key)) return;
    try {
      await this.deps.client.create(secret, { fieldManager: FIELD_MANAGER });
      this.deps.metrics.objectWrites.inc({ kind: 'Secret', verb: 'create' });
    } catch (err) {
      if (!isConflict(err)) throw err; // 409: it exists, and its credentials must never change
    }
    this.secretsCreated.add(key);
  }

  /** Records Secrets known to exist (a claimed warm pool member's, made by the pool controller). */
  assumeSecrets(secrets: KubeObject[]): void {
    for (const s of secrets) this.secretsCreated.add(objectKey(s));
  }

  /** Forgets the Secrets of a namespace being deleted (a namespace of that name may come back). */
  forgetNamespace(namespace: string): void {
    for (const key of this.secretsCreated)
      if (key.startsWith(`${namespace}/`)) this.secretsCreated.delete(key);
  }
}
