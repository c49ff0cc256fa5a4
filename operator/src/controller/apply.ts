import { createHash } from 'node:crypto';
import { FIELD_MANAGER, type ObjectMeta } from '@epreuve/crds';
import {
  type Informer,
  isConflict,
  isSubset,
  type KubeClient,
  type KubeObject,
  objectKey,
  StringPool,
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

/** Annotations under the project's prefix: the applied digest, and any the operator sets. */
const OWN_ANNOTATION_PREFIX = APPLIED_ANNOTATION.slice(0, APPLIED_ANNOTATION.indexOf('/') + 1);

/** One copy of the namespaces and label values the 30 000 cached objects repeat. */
const strings = new StringPool();

/**
 * Of an object's metadata, what the operator reads or sets: name, namespace, labels, its own
 * annotations (the applied digest), resourceVersion (the informer compares it at a relist) and
 * the deletion time. A Namespace keeps its uid (deleted with a uid precondition), creation time
 * (the age of a pool member) and every annotation (claims, rotations); other kinds drop the
 * server's (uid, creation time, generation, owner references, a Deployment's revision).
 */
function cachedMeta(kind: string, m: ObjectMeta): ObjectMeta {
  const out: ObjectMeta = { name: m.name };
  if (m.namespace !== undefined) out.namespace = strings.intern(m.namespace);
  if (m.resourceVersion !== undefined) out.resourceVersion = m.resourceVersion;
  if (m.labels) out.labels = strings.internValues(m.labels);
  const annotations = Object.entries(m.annotations ?? {}).filter(
    ([k]) => kind === 'Namespace' || k.startsWith(OWN_ANNOTATION_PREFIX),
  );
  if (annotations.length > 0) out.annotations = Object.fromEntries(annotations);
  if (m.deletionTimestamp !== undefined) out.deletionTimestamp = m.deletionTimestamp;
  if (kind === 'Namespace') {
    if (m.uid !== undefined) out.uid = m.uid;
    if (m.creationTimestamp !== undefined) out.creationTimestamp = m.creationTimestamp;
  }
  return out;
}

type Condition = { type?: string; status?: string };

/**
 * Of a workload's status, what readiness is read from (`assessment/status.ts`): a StatefulSet's
 * ready replicas, a Deployment's available ones, a Job's successes, completion time and its
 * Complete or Failed condition once true — not the revisions, counters and progress conditions
 * (a Deployment's two carry messages and times).
 */
const STATUS_VIEWS: Record<string, (status: Record<string, unknown>) => Record<string, unknown>> = {
  StatefulSet: (s) => pick(s, ['readyReplicas']),
  Deployment: (s) => pick(s, ['availableReplicas']),
  Job: (s) => {
    const conditions = ((s.conditions ?? []) as Condition[]).filter(
      (c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True',
    );
    return { ...pick(s, ['succeeded', 'completionTime']), ...(conditions.length > 0 && { conditions }) };
  },
};

function pick(o: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/**
 * What the cache of managed objects keeps (the informers' transform), and what a desired object
 * is compared with it as. Of every kind, the metadata the operator reads (`cachedMeta`). Of a
 * StatefulSet, a Deployment or a Job: that, what readiness is read from (`STATUS_VIEWS`) and
 * `spec.replicas` (hibernation scales it) — their pod templates, with every default the API
 * server filled in, were most of the cache: 1 000 assessments hold 30 000 objects
 * (docs/benchmarks.md, "Operator footprint"). Of a Service or a NetworkPolicy (12 of a
 * namespace's 29 objects): that and `specDigest`, the digest of the part of the spec the operator
 * sets, computed here from the live spec the API server sent; a desired object's view holds the
 * digest of its own, so a hand edit of that part no longer matches and is put back at the next
 * pass. The spec and status of other kinds are small and kept whole (a quota's status feeds a
 * metric).
 */
export function cachedView<T extends KubeObject>(obj: T): T {
  const o = obj as T & { spec?: Spec & { replicas?: number }; status?: Record<string, unknown> };
  const metadata = cachedMeta(o.kind, o.metadata);
  if (SPEC_VIEWS[obj.kind]) {
    return {
      apiVersion: o.apiVersion,
      kind: o.kind,
      metadata,
      specDigest: specDigest(o.kind, o.spec ?? {}),
    } as unknown as T;
  }
  const status = STATUS_VIEWS[obj.kind];
  if (!status) return { ...o, metadata };
  const replicas = o.spec?.replicas;
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata,
    ...(replicas !== undefined && { spec: { replicas } }),
    ...(o.status !== undefined && { status: status(o.status) }),
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
