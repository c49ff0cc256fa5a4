import { createHash } from 'node:crypto';
import { FIELD_MANAGER } from '@epreuve/crds';
import {
  type Informer,
  isConflict,
  isSubset,
  type KubeClient,
  type KubeObject,
  objectKey,
} from '@epreuve/kube';
import { stringify as stableStringify } from 'safe-stable-stringify';
import type { Metrics } from '../metrics.ts';

/**
 * The digest of the desired object last applied, on the object itself. A pass compares it with
 * the digest of what it wants instead of comparing whole objects, so the cache of managed objects
 * need not hold their specs (see `cachedView`).
 */
export const APPLIED_ANNOTATION = 'epreuve.dev/applied-digest';

/** sha256 of the object's JSON with keys sorted: the same desired state digests the same. */
export function appliedDigest(obj: unknown): string {
  return createHash('sha256')
    .update(stableStringify(obj) ?? '')
    .digest('base64url')
    .slice(0, 22);
}

/** Kinds whose spec holds a pod template: by far the larger part of the managed objects. */
const WORKLOAD_KINDS = new Set(['StatefulSet', 'Deployment', 'Job']);

type Spec = Record<string, unknown>;
type Port = { name?: string; port?: unknown; targetPort?: unknown; protocol?: string };

/**
 * Of a Service and a NetworkPolicy spec, the part the operator sets, with the defaults the API
 * server fills in for what it may leave out: the same for the desired spec and for the live one
 * the server sends back, so their digests compare. Allocated fields (cluster IPs, IP families)
 * and defaults outside this part (session affinity, traffic policies, fields a newer API server
 * adds) are left out, so none of them makes the two differ.
 */
const SPEC_VIEWS: Record<string, (spec: Spec) => unknown> = {
  Service: (spec) => ({
    type: spec.type ?? 'ClusterIP',
    selector: spec.selector ?? {},
    ports: ((spec.ports ?? []) as Port[]).map((p) => ({
      name: p.name,
      port: p.port,
      targetPort: p.targetPort ?? p.port,
      protocol: p.protocol ?? 'TCP',
    })),
    ...(spec.clusterIP === 'None' && { clusterIP: 'None' }),
  }),
  NetworkPolicy: (spec) => ({
    podSelector: spec.podSelector ?? {},
    // The server's default when a policy names no types: Ingress, and Egress if it has rules for it.
    policyTypes: spec.policyTypes ?? ['Ingress', ...(spec.egress ? ['Egress'] : [])],
    ingress: withDefaultProtocol(spec.ingress),
    egress: withDefaultProtocol(spec.egress),
  }),
};

function withDefaultProtocol(rules: unknown): unknown {
  if (!Array.isArray(rules) || rules.length === 0) return [];
  return rules.map((r: { ports?: Port[] }) =>
    r.ports ? { ...r, ports: r.ports.map((p) => ({ ...p, protocol: p.protocol ?? 'TCP' })) } : r,
  );
}

/** The digest of what the operator sets in a Service's or NetworkPolicy's spec (SPEC_VIEWS). */
export function specDigest(kind: string, spec: Spec): string {
  const view = SPEC_VIEWS[kind];
  if (!view) throw new Error(`specDigest: no spec view for kind ${kind}`);
  return appliedDigest(view(spec));
}

/**
 * What the cache of managed objects keeps (the informers' transform), and what a desired object
 * is compared with it as. Of a StatefulSet, a Deployment or a Job: metadata (labels, annotations
 * with the applied digest, uid, deletion), status (readiness) and `spec.replicas` (hibernation
 * scales it) — their pod templates, with every default the API server filled in, were most of the
 * cache: 1 000 assessments hold 30 000 objects (docs/benchmarks.md, "Operator footprint"). Of a
 * Service or a NetworkPolicy (12 of a namespace's 29 objects): metadata and `specDigest`, the
 * digest of the part of the spec the operator sets, computed here from the live spec the API
 * server sent; a desired object's view holds the digest of its own, so a hand edit of that part
 * no longer matches and is put back at the next pass. Other kinds are small and kept whole.
 */
export function cachedView<T extends KubeObject>(obj: T): T {
  const o = obj as T & { spec?: Spec & { replicas?: number }; status?: unknown };
  if (SPEC_VIEWS[obj.kind]) {
    return {
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata: o.metadata,
      specDigest: specDigest(o.kind, o.spec ?? {}),
    } as unknown as T;
  }
  if (!WORKLOAD_KINDS.has(obj.kind)) return obj;
  const replicas = o.spec?.replicas;
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: o.metadata,
    ...(replicas !== undefined && { spec: { replicas } }),
    ...(o.status !== undefined && { status: o.status }),
  } as T;
}

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

  /**
   * Applies `obj` unless the cached object shows it applied already: the same digest of the
   * desired state, and every desired field the cache keeps unchanged. A hand edit of a kept field
   * (a quota, a workload's labels or replicas, what the operator sets in a network policy's or a
   * Service's spec, compared through its digest) is put back at the next pass; one
   * of a workload's pod template, which the cache drops, when the desired state changes (a new
   * template or operator version), not before.
   */
  async ensure(obj: KubeObject): Promise<void> {
    const current = this.deps.cache(obj.kind).get(objectKey(obj));
    // A Job's pod template is immutable and the seed runs once: create it, never update it.
    if (current && obj.kind === 'Job') return;
    const digest = appliedDigest(obj);
    if (current?.metadata.annotations?.[APPLIED_ANNOTATION] === digest && isSubset(cachedView(obj), current))
      return;
    const annotations = { ...obj.metadata.annotations, [APPLIED_ANNOTATION]: digest };
    await this.deps.client.apply(
      { ...obj, metadata: { ...obj.metadata, annotations } },
      { fieldManager: FIELD_MANAGER, force: true },
    );
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
