import { randomBytes } from 'node:crypto';
import {
  ALLOW_ROLELESS_USERS_ENV,
  ANNOTATIONS,
  type Assessment,
  type AssessmentTemplate,
  candidateNamespace,
  credentialsMountPath,
  credentialsSecretName,
  DATA_API_ADMIN_PORT,
  DATA_API_CREDENTIAL_KEYS,
  DB_CREDENTIAL_KEYS,
  GRADER,
  GRADER_STORE,
  type GraderPlan,
  type GraderStoreLocation,
  LABELS,
  MANAGED_BY,
  POSTGRES_ADMIN_USER,
  SANDBOX_DATABASE,
  type Sandbox,
  type SandboxKind,
  SEED_PLAN_ENV,
  type SeedPlan,
  sandboxKind,
} from '@epreuve/crds';
import { type KubeObject, parseQuantity } from '@epreuve/kube';
import type { OperatorConfig, Size } from '../config.ts';

/**
 * Desired state of a candidate namespace, as pure functions of (assessment, template, config).
 * Each object holds only the fields Épreuve owns; it is server-side applied as is.
 */

export const PORTS: Record<SandboxKind, number> = { postgres: 5432, mongo: 27017, dataApi: 8080 };
export const SANDBOX_SERVICE_ACCOUNT = 'sandbox';
export const SEEDER_SERVICE_ACCOUNT = 'seeder';
export const SEED_JOB = 'seed';
const UID = { postgres: 999, mongo: 999, node: 1000 };

export interface Context {
  assessment: Assessment;
  template: AssessmentTemplate;
  config: OperatorConfig;
  /** Set for a warm pool's namespace (issue 16, operator/src/pool): its name and labels instead of the assessment's. */
  pooled?: PooledNamespace;
}

// ---- warm pool (issue 16) ----
/**
 * A warm pool's namespace: where the objects go and what they are labelled with. Its objects keep
 * the pool's labels after a claim, so a claim changes no pod template (and restarts no pod); the
 * claim shows on the Namespace itself.
 */
export interface PooledNamespace {
  name: string;
  /** Labels of every object in the namespace. */
  labels: Record<string, string>;
  /** Labels and annotations of the Namespace only (the template spec it was built from, or its claim). */
  namespaceLabels: Record<string, string>;
  namespaceAnnotations?: Record<string, string>;
}

/** Labels of every object of the context's namespace. */
const labelsOf = (ctx: Context): Record<string, string> => ctx.pooled?.labels ?? ownerLabels(ctx.assessment);
/** The context's namespace: the pool's, or the assessment's. */
export const nsOf = (ctx: Context): string => ctx.pooled?.name ?? namespaceOf(ctx.assessment);
// ---- end warm pool ----

/** Labels every managed object carries; the operator's informers select on the first. */
export function ownerLabels(a: Assessment): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.assessment]: a.metadata.name!,
    [LABELS.ownerNamespace]: a.metadata.namespace!,
  };
}

/**
 * Where an assessment lives: `status.namespace` once the operator wrote it (a claimed pool
 * namespace keeps its pool name). Before that first status write nothing exists yet, and a cold
 * start creates the namespace under the name derived from the assessment's.
 */
export function namespaceOf(a: Assessment): string {
  return a.status?.namespace ?? candidateNamespace(a.metadata.namespace!, a.metadata.name!);
}

function meta(ctx: Context, name: string, extra: Record<string, string> = {}) {
  return {
    name,
    namespace: nsOf(ctx),
    labels: { ...labelsOf(ctx), ...extra },
  };
}

function sandboxLabels(s: Sandbox): Record<string, string> {
  return {
    'app.kubernetes.io/name': sandboxKind(s) === 'dataApi' ? 'data-api' : sandboxKind(s),
    'app.kubernetes.io/instance': s.name,
    [LABELS.sandbox]: s.name,
  };
}

export function namespace(ctx: Context): KubeObject {
  const v = ctx.config.EPREUVE_POD_SECURITY_VERSION;
  const pss: Record<string, string> = {};
  for (const mode of ['enforce', 'audit', 'warn']) {
    pss[`pod-security.kubernetes.io/${mode}`] = 'restricted';
    pss[`pod-security.kubernetes.io/${mode}-version`] = v;
  }
  const a = ctx.assessment;
  if (ctx.pooled)
    return {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: ctx.pooled.name,
        labels: { ...ctx.pooled.labels, ...ctx.pooled.namespaceLabels, ...pss },
        ...(ctx.pooled.namespaceAnnotations && { annotations: ctx.pooled.namespaceAnnotations }),
      },
    };
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: namespaceOf(a),
      labels: { ...ownerLabels(a), ...pss },
      annotations: { [ANNOTATIONS.owner]: `${a.metadata.namespace}/${a.metadata.name}` },
    },
  };
}

export function resourceQuota(ctx: Context): KubeObject {
  const r = withGraderStore(ctx, ctx.template.spec.resources);
  return {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: meta(ctx, 'sandbox-quota'),
    spec: {
      hard: {
        'limits.cpu': r.cpu,
        'limits.memory': r.memory,
        'requests.cpu': r.cpu,
        'requests.memory': r.memory,
        'requests.storage': r.storage,
        persistentvolumeclaims: '8',
        pods: '16',
        services: '8',
        'services.nodeports': '0',
        'services.loadbalancers': '0',
      },
    },
  };
}

export function limitRange(ctx: Context): KubeObject {
  const r = ctx.template.spec.resources;
  return {
    apiVersion: 'v1',
    kind: 'LimitRange',
    metadata: meta(ctx, 'sandbox-limits'),
    spec: {
      limits: [
        {
          type: 'Container',
          default: { cpu: '500m', memory: '512Mi' },
          defaultRequest: { cpu: '50m', memory: '64Mi' },
          max: { cpu: r.cpu, memory: r.memory },
        },
        { type: 'PersistentVolumeClaim', max: { storage: r.storage } },
      ],
    },
  };
}

/**
 * Default deny both ways; sandboxes may talk to each other; the platform namespace (API, grader)
 * may reach them. Cluster DNS: always for the seed Job, which finds the sandboxes by Service name;
 * for every pod only when the template asks for it.
 */
export function networkPolicies(ctx: Context): KubeObject[] {
  const np = (name: string, spec: object): KubeObject => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(ctx, name),
    spec,
  });
  const clusterDns = {
    to: [
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
        podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
      },
    ],
    ports: [
      { protocol: 'UDP', port: 53 },
      { protocol: 'TCP', port: 53 },
    ],
  };
  // Everything but the grader and its store: sandboxes and the seed Job talk among themselves and to the platform.
  const notGrader = {
    matchExpressions: [
      { key: 'app.kubernetes.io/name', operator: 'NotIn', values: [GRADER.name, GRADER_STORE.name] },
    ],
  };
  const platformNamespace = {
    matchLabels: { 'kubernetes.io/metadata.name': ctx.config.EPREUVE_PLATFORM_NAMESPACE },
  };
  const policies = [
    np('default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
    np('allow-same-namespace', {
      podSelector: notGrader,
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: {} }] }],
      egress: [{ to: [{ podSelector: {} }] }],
    }),
    np('allow-platform-ingress', {
      podSelector: notGrader,
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            {
              namespaceSelector: {
                matchLabels: { 'kubernetes.io/metadata.name': ctx.config.EPREUVE_PLATFORM_NAMESPACE },
              },
            },
          ],
        },
      ],
    }),
    // The grader runs answers: only the API may call it; it may reach the sandboxes it grades on.
    np('allow-api-to-grader', {
      podSelector: { matchLabels: GRADER_LABELS },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          from: [{ namespaceSelector: platformNamespace, podSelector: { matchLabels: API_POD_LABELS } }],
          ports: [{ protocol: 'TCP', port: GRADER.port }],
        },
      ],
      // It finds the sandboxes by Service name, so cluster DNS too, whatever the template's egress.
      egress: [{ to: [{ podSelector: notGrader }] }, clusterDns],
    }),
    np('allow-seed-dns', {
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'seeder' } },
      policyTypes: ['Egress'],
      egress: [clusterDns],
    }),
  ];
  if (ctx.template.spec.network.egress === 'dns-only')
    policies.push(np('allow-dns', { podSelector: {}, policyTypes: ['Egress'], egress: [clusterDns] }));
  return [...policies, ...graderStorePolicies(ctx)];
}

/**
 * Lets the API read this namespace's sandbox credentials (to show the candidate theirs and to
 * grade as the grader role). It binds a ClusterRole the chart pre-creates; the operator may bind
 * that one role by name and nothing else, so it never holds `escalate` or a wildcard `bind`.
 */
export function apiReaderBinding(ctx: Context): KubeObject {
  const [namespace, name] = ctx.config.EPREUVE_API_SERVICE_ACCOUNT.split('/');
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: meta(ctx, 'epreuve-api-sandbox-reader'),
    roleRef: {
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'ClusterRole',
      name: ctx.config.EPREUVE_SANDBOX_READER_CLUSTER_ROLE,
    },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  };
}

export function serviceAccounts(ctx: Context): KubeObject[] {
  return [SANDBOX_SERVICE_ACCOUNT, SEEDER_SERVICE_ACCOUNT].map((name) => ({
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: meta(ctx, name),
    automountServiceAccountToken: false,
  }));
}

/** Random credentials; `random(n)` returns n bytes from a CSPRNG (injected for tests). */

export function credentialsSecret(ctx: Context, s: Sandbox, random: (n: number) => Buffer): KubeObject {
  const token = () => random(24).toString('base64url');
  const kind = sandboxKind(s);
  const data: Record<string, string> =
    kind === 'postgres'
      ? {
          [DB_CREDENTIAL_KEYS.database]: SANDBOX_DATABASE,
          [DB_CREDENTIAL_KEYS.username]: 'candidate',
          [DB_CREDENTIAL_KEYS.password]: token(),
          [DB_CREDENTIAL_KEYS.adminUsername]: POSTGRES_ADMIN_USER,
          [DB_CREDENTIAL_KEYS.adminPassword]: token(),
          [DB_CREDENTIAL_KEYS.graderUsername]: 'grader',
          [DB_CREDENTIAL_KEYS.graderPassword]: token(),
        }
      : kind === 'mongo'
        ? {
            [DB_CREDENTIAL_KEYS.database]: SANDBOX_DATABASE,
            [DB_CREDENTIAL_KEYS.username]: 'candidate',
            [DB_CREDENTIAL_KEYS.password]: token(),
            [DB_CREDENTIAL_KEYS.adminUsername]: 'root',
            [DB_CREDENTIAL_KEYS.adminPassword]: token(),
            [DB_CREDENTIAL_KEYS.graderUsername]: 'grader',
            [DB_CREDENTIAL_KEYS.graderPassword]: token(),
          }
        : { [DATA_API_CREDENTIAL_KEYS.apiKey]: token(), [DATA_API_CREDENTIAL_KEYS.adminKey]: token() };
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(ctx, credentialsSecretName(s.name), sandboxLabels(s)),
    type: 'Opaque',
    stringData: data,
  };
}

const restrictedContainer = {
  allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] },
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
};

function podSecurity(uid: number) {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    fsGroup: uid,
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * Where candidates' pods run (operator.sandboxPlacement in the chart): the fields that are set,
 * and nothing when none is, so an operator without placement writes the same pods as before.
 */
function placement(ctx: Context) {
  const { nodeSelector, tolerations, affinity } = ctx.config.EPREUVE_SANDBOX_PLACEMENT;
  return {
    ...(nodeSelector && Object.keys(nodeSelector).length > 0 ? { nodeSelector } : {}),
    ...(tolerations && tolerations.length > 0 ? { tolerations } : {}),
    ...(affinity && Object.keys(affinity).length > 0 ? { affinity } : {}),
  };
}

const secretEnv = (name: string, secret: string, key: string) => ({
  name,
  valueFrom: { secretKeyRef: { name: secret, key } },
});

const scratch = (name: string, mountPath: string) => ({
  volume: { name, emptyDir: {} },
  mount: { name, mountPath },
});

function statefulSet(
  ctx: Context,
  s: Sandbox,
  opts: {
    image: string;
    uid: number;
    size: Size;
    dataPath: string;
    storage: string;
    container: object;
    scratch: ReturnType<typeof scratch>[];
  },
): KubeObject {
  const labels = { ...labelsOf(ctx), ...sandboxLabels(s) };
  const storageClass = ctx.config.EPREUVE_STORAGE_CLASS;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: meta(ctx, s.name, sandboxLabels(s)),
    spec: {
      replicas: 1,
      serviceName: s.name,
      selector: { matchLabels: sandboxLabels(s) },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: SANDBOX_SERVICE_ACCOUNT,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurity(opts.uid),
          ...placement(ctx),
          containers: [
            {
              name: sandboxKind(s) === 'dataApi' ? 'data-api' : sandboxKind(s),
              image: opts.image,
              imagePullPolicy: ctx.config.EPREUVE_IMAGE_PULL_POLICY,
              ports: [{ name: 'db', containerPort: PORTS[sandboxKind(s)], protocol: 'TCP' }],
              resources: opts.size,
              securityContext: restrictedContainer,
              volumeMounts: [{ name: 'data', mountPath: opts.dataPath }, ...opts.scratch.map((v) => v.mount)],
              ...opts.container,
            },
          ],
          volumes: opts.scratch.map((v) => v.volume),
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data', labels: labelsOf(ctx) },
          spec: {
            accessModes: ['ReadWriteOnce'],
            resources: { requests: { storage: opts.storage } },
            ...(storageClass ? { storageClassName: storageClass } : {}),
          },
        },
      ],
    },
  };
}

/**
 * A readiness probe plus a startup probe doing the same check every second: the pod turns Ready
 * within a second of its server answering (the kubelet runs the readiness probe as soon as the
 * startup probe passes), while the readiness probe keeps its slower period for the pod's life.
 * The startup budget is generous (initdb on a slow volume), and past it the kubelet restarts.
 */
export function probes(readiness: Record<string, unknown> & { periodSeconds: number }) {
  return {
    startupProbe: { ...readiness, periodSeconds: 1, failureThreshold: 300 },
    readinessProbe: readiness,
  };
}

export function postgresStatefulSet(ctx: Context, s: Sandbox): KubeObject {
  const pg = s.postgres!;
  const secret = credentialsSecretName(s.name);
  return statefulSet(ctx, s, {
    image: ctx.config.EPREUVE_IMAGE_POSTGRES.replace('{version}', pg.version),
    uid: UID.postgres,
    size: ctx.config.EPREUVE_SANDBOX_SIZES.postgres,
    dataPath: '/var/lib/postgresql/data',
    storage: pg.storage,
    scratch: [scratch('run', '/var/run/postgresql'), scratch('tmp', '/tmp')],
    container: {
      // No background workers, so no parallel query: an answer on a hidden variant started as many
      // parallel workers as a hidden value said, and the candidate read the count as the jump in
      // process ids between two of their own connections (red team 5). A postmaster setting: an
      // answer's set_config cannot raise it. The official image's entrypoint passes it on too.
      args: ['postgres', '-c', 'max_worker_processes=0'],
      env: [
        { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
        { name: 'POSTGRES_DB', value: SANDBOX_DATABASE },
        secretEnv('POSTGRES_USER', secret, DB_CREDENTIAL_KEYS.adminUsername),
        secretEnv('POSTGRES_PASSWORD', secret, DB_CREDENTIAL_KEYS.adminPassword),
        // The project's PostgreSQL image ships the standard datasets as data directories
        // (hack/images/postgres/preload.ts) and copies this one in instead of initdb: the seed
        // Job, which loads the standard size, verifies it and sets up the roles. Other images ignore it.
        { name: 'EPREUVE_PRELOAD_DATASET', value: `${pg.dataset}-standard` },
      ],
      ...probes({
        exec: { command: ['pg_isready', '-U', 'postgres', '-h', '127.0.0.1'] },
        periodSeconds: 5,
        timeoutSeconds: 3,
      }),
    },
  });
}

export function mongoStatefulSet(ctx: Context, s: Sandbox): KubeObject {
  const mongo = s.mongo!;
  const secret = credentialsSecretName(s.name);
  return statefulSet(ctx, s, {
    image: ctx.config.EPREUVE_IMAGE_MONGO.replace('{version}', mongo.version),
    uid: UID.mongo,
    size: ctx.config.EPREUVE_SANDBOX_SIZES.mongo,
    dataPath: '/data/db',
    storage: mongo.storage,
    scratch: [scratch('configdb', '/data/configdb'), scratch('tmp', '/tmp')],
    container: {
      env: [
        secretEnv('MONGO_INITDB_ROOT_USERNAME', secret, DB_CREDENTIAL_KEYS.adminUsername),
        secretEnv('MONGO_INITDB_ROOT_PASSWORD', secret, DB_CREDENTIAL_KEYS.adminPassword),
        // The project's FerretDB image ships the standard datasets already loaded
        // (hack/images/ferretdb/preload.ts) and copies this one in: the seed Job, which loads the
        // standard size, then finds its migrations applied. Other images ignore both.
        { name: 'EPREUVE_PRELOAD_DATASET', value: `${mongo.dataset}-standard` },
        { name: 'EPREUVE_PRELOAD_DATABASE', value: SANDBOX_DATABASE },
      ],
      ...probes({ tcpSocket: { port: PORTS.mongo }, periodSeconds: 5, timeoutSeconds: 3 }),
    },
  });
}

/**
 * A one-replica Deployment of one of the project's Node images (the data API, the grader): uid 1000
 * on a read-only root with a scratch `/tmp`, the sandbox ServiceAccount, no token, no service links.
 */
function nodeDeployment(
  ctx: Context,
  name: string,
  selector: Record<string, string>,
  container: Record<string, unknown> & { volumeMounts?: object[] },
  volumes: object[] = [],
): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(ctx, name, selector),
    spec: {
      replicas: 1,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels: { ...labelsOf(ctx), ...selector } },
        spec: {
          serviceAccountName: SANDBOX_SERVICE_ACCOUNT,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurity(UID.node),
          ...placement(ctx),
          containers: [
            {
              ...container,
              imagePullPolicy: ctx.config.EPREUVE_IMAGE_PULL_POLICY,
              securityContext: restrictedContainer,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...(container.volumeMounts ?? [])],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }, ...volumes],
        },
      },
    },
  };
}

export function dataApiDeployment(ctx: Context, s: Sandbox): KubeObject {
  const api = s.dataApi!;
  const key = credentialsVolumes([s], [DATA_API_CREDENTIAL_KEYS.apiKey]);
  return nodeDeployment(
    ctx,
    s.name,
    sandboxLabels(s),
    {
      name: 'data-api',
      image: ctx.config.EPREUVE_IMAGE_DATA_API,
      ports: [
        { name: 'http', containerPort: PORTS.dataApi, protocol: 'TCP' },
        { name: 'admin', containerPort: DATA_API_ADMIN_PORT, protocol: 'TCP' },
      ],
      env: [
        { name: 'DATASET', value: api.dataset },
        { name: 'PAGE_SIZE', value: String(api.pageSize) },
        { name: 'RATE_LIMIT_PER_MINUTE', value: String(api.rateLimitPerMinute) },
        { name: 'FAULT_RATE', value: String(api.faultRate) },
        { name: 'PORT', value: String(PORTS.dataApi) },
        { name: 'ADMIN_PORT', value: String(DATA_API_ADMIN_PORT) },
        // A file, not a variable: a warm pool namespace's key is replaced at its claim without a
        // restart (the data API re-reads it; the operator also sets it through /admin at once).
        { name: 'API_KEY_FILE', value: `${credentialsMountPath(s.name)}/${DATA_API_CREDENTIAL_KEYS.apiKey}` },
        // Lets the platform read the request log and switch faults; never given to the candidate.
        secretEnv('ADMIN_KEY', credentialsSecretName(s.name), DATA_API_CREDENTIAL_KEYS.adminKey),
      ],
      ...probes({ httpGet: { path: '/healthz', port: PORTS.dataApi }, periodSeconds: 5 }),
      resources: ctx.config.EPREUVE_SANDBOX_SIZES.dataApi,
      volumeMounts: key.mounts,
    },
    key.volumes,
  );
}

export function service(ctx: Context, s: Sandbox): KubeObject {
  const port = PORTS[sandboxKind(s)];
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(ctx, s.name, sandboxLabels(s)),
    spec: {
      type: 'ClusterIP',
      selector: sandboxLabels(s),
      ports: [
        { name: sandboxKind(s) === 'dataApi' ? 'http' : 'db', port, targetPort: port, protocol: 'TCP' },
        // The platform's own port (request log, fault switch); the gateway routes only the first.
        ...(sandboxKind(s) === 'dataApi'
          ? [{ name: 'admin', port: DATA_API_ADMIN_PORT, targetPort: DATA_API_ADMIN_PORT, protocol: 'TCP' }]
          : []),
      ],
    },
  };
}

/**
 * Each database sandbox's credentials Secret as a read-only volume at `credentialsMountPath`,
 * one file per key: all keys (the seeder), or only `keys` (the grader gets the grader's alone).
 */
function credentialsVolumes(sandboxes: Sandbox[], keys?: string[]) {
  return {
    mounts: sandboxes.map((s) => ({
      name: `credentials-${s.name}`,
      mountPath: credentialsMountPath(s.name),
      readOnly: true,
    })),
    volumes: sandboxes.map((s) => ({
      name: `credentials-${s.name}`,
      secret: {
        secretName: credentialsSecretName(s.name),
        ...(keys && { items: keys.map((key) => ({ key, path: key })) }),
      },
    })),
  };
}

/** Sandboxes the seed Job loads (the data API serves its dataset itself). */
export function seededSandboxes(t: AssessmentTemplate): Sandbox[] {
  return t.spec.sandboxes.filter((s) => sandboxKind(s) !== 'dataApi');
}

/**
 * The seed Job: loads every database sandbox. Its plan names hosts and datasets; credentials are
 * mounted read-only from each sandbox's Secret. It runs once: a Job's pod template is immutable.
 */
export function seedJob(ctx: Context): KubeObject | undefined {
  const seeded = seededSandboxes(ctx.template);
  if (seeded.length === 0) return undefined;
  const ns = nsOf(ctx);
  const credentials = credentialsVolumes(seeded);
  const store = graderStoreMount(ctx);
  // A PostgreSQL sandbox with check tasks gets a grader-only copy of what the data API serves
  // (its default size), which the checks compare a candidate's collection with.
  const dataApi = ctx.template.spec.sandboxes.find((s) => s.dataApi)?.dataApi;
  const checked = (s: Sandbox) =>
    (ctx.template.spec.tasks ?? []).some((t) => t.sandbox === s.name && t.grader?.check);
  const plan: SeedPlan = seeded.map((s) => ({
    name: s.name,
    kind: s.postgres ? 'postgres' : 'mongo',
    host: `${s.name}.${ns}.svc`,
    port: PORTS[sandboxKind(s)],
    dataset: (s.postgres ?? s.mongo)!.dataset,
    credentials: credentialsMountPath(s.name),
    hiddenVariants: ctx.template.spec.grading.hiddenVariants,
    ...(s.mongo && { store: graderStoreLocation(ctx), references: mongoReferenceTasks(ctx, s) }),
    ...(dataApi && s.postgres && checked(s)
      ? { collectionSource: { dataset: dataApi.dataset, size: 'standard' as const } }
      : {}),
  }));
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: meta(ctx, SEED_JOB, { 'app.kubernetes.io/name': 'seeder' }),
    spec: {
      backoffLimit: 4,
      activeDeadlineSeconds: 1800,
      template: {
        metadata: { labels: { ...labelsOf(ctx), 'app.kubernetes.io/name': 'seeder' } },
        spec: {
          restartPolicy: 'Never',
          serviceAccountName: SEEDER_SERVICE_ACCOUNT,
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: podSecurity(UID.node),
          ...placement(ctx),
          containers: [
            {
              name: 'seeder',
              image: ctx.config.EPREUVE_IMAGE_SEEDER,
              imagePullPolicy: ctx.config.EPREUVE_IMAGE_PULL_POLICY,
              args: ['seed'],
              env: [
                { name: SEED_PLAN_ENV, value: JSON.stringify(plan) },
                ...(ctx.config.EPREUVE_ALLOW_ROLELESS_USERS
                  ? [{ name: ALLOW_ROLELESS_USERS_ENV, value: 'true' }]
                  : []),
              ],
              resources: ctx.config.EPREUVE_SANDBOX_SIZES.seeder,
              securityContext: restrictedContainer,
              volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...credentials.mounts, ...store.mounts],
            },
          ],
          volumes: [{ name: 'tmp', emptyDir: {} }, ...credentials.volumes, ...store.volumes],
        },
      },
    },
  };
}

/** The labels of the grader's pod: the network policies single it out by them. */
export const GRADER_LABELS = { 'app.kubernetes.io/name': GRADER.name } as const;

/** The API's pods, in the platform namespace (the chart's labels): the grader's only client. */
export const API_POD_LABELS = { 'app.kubernetes.io/name': 'epreuve-api' } as const;

/** A random token the API presents to the grader. Created once, like the sandboxes' credentials. */
export function graderSecret(ctx: Context, random: (n: number) => Buffer): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(ctx, GRADER.secretName, GRADER_LABELS),
    type: 'Opaque',
    stringData: { [GRADER.tokenKey]: random(32).toString('base64url') },
  };
}

/** The grader's objects: it runs candidates' answers next to their databases, never in the API. */
export interface GraderObjects {
  service: KubeObject;
  workload: KubeObject;
  /** Its store, when a MongoDB sandbox needs one (graderStoreObjects). */
  store?: { service: KubeObject; workload: KubeObject };
}

/**
 * The grader Deployment and Service, when the template has a database sandbox. It mounts the grader's
 * and the candidate's keys of each sandbox's Secret (never the admin's), has memory and CPU
 * limits of its own inside the namespace quota, and runs the sandboxes image's `grade-server`.
 */
export function graderObjects(ctx: Context): GraderObjects | undefined {
  const seeded = seededSandboxes(ctx.template);
  if (seeded.length === 0) return undefined;
  const ns = nsOf(ctx);
  const plan: GraderPlan = seeded.map((s) => ({
    name: s.name,
    kind: s.postgres ? 'postgres' : 'mongo',
    host: `${s.name}.${ns}.svc`,
    port: PORTS[sandboxKind(s)],
    credentials: credentialsMountPath(s.name),
    hiddenVariants: ctx.template.spec.grading.hiddenVariants,
    ...(s.mongo && { store: graderStoreLocation(ctx) }),
  }));
  const store = graderStoreMount(ctx);
  const size = ctx.config.EPREUVE_SANDBOX_SIZES.grader;
  // V8 collects before the cgroup kills: three quarters of the limit for the heap.
  const heapMiB = Math.floor((parseQuantity(size.limits.memory) / 2 ** 20) * 0.75);
  // The candidate's own keys too: the console (issue 17) runs their statements as them, so they
  // write only what the candidate may; never the admin keys.
  const credentials = credentialsVolumes(seeded, [
    DB_CREDENTIAL_KEYS.database,
    DB_CREDENTIAL_KEYS.graderUsername,
    DB_CREDENTIAL_KEYS.graderPassword,
    DB_CREDENTIAL_KEYS.username,
    DB_CREDENTIAL_KEYS.password,
  ]);
  return {
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(ctx, GRADER.name, GRADER_LABELS),
      spec: {
        selector: GRADER_LABELS,
        ports: [{ name: 'http', port: GRADER.port, targetPort: GRADER.port, protocol: 'TCP' }],
      },
    },
    workload: nodeDeployment(
      ctx,
      GRADER.name,
      GRADER_LABELS,
      {
        name: GRADER.name,
        image: ctx.config.EPREUVE_IMAGE_SEEDER,
        args: ['grade-server'],
        ports: [{ name: 'http', containerPort: GRADER.port, protocol: 'TCP' }],
        env: [
          { name: GRADER.planEnv, value: JSON.stringify(plan) },
          { name: 'NODE_OPTIONS', value: `--max-old-space-size=${heapMiB}` },
        ],
        ...probes({ httpGet: { path: '/readyz', port: GRADER.port }, periodSeconds: 2 }),
        resources: size,
        volumeMounts: [
          { name: 'token', mountPath: GRADER.tokenMountPath, readOnly: true },
          ...credentials.mounts,
          ...store.mounts,
        ],
      },
      [
        {
          name: 'token',
          secret: { secretName: GRADER.secretName, items: [{ key: GRADER.tokenKey, path: GRADER.tokenKey }] },
        },
        ...credentials.volumes,
        ...store.volumes,
      ],
    ),
    ...(store.volumes.length > 0 && { store: graderStoreObjects(ctx) }),
  };
}

/*
 * The grader store: a MongoDB-protocol server of its own for a template with a MongoDB sandbox,
 * holding that sandbox's hidden variants and reference results. The local server (FerretDB)
 * enforces no roles, so what must stay out of the candidate's reach cannot rely on them: it lives
 * where only the seed Job and the grader can connect (NetworkPolicy below), under a credential
 * only they mount, on a Service the gateway never routes (it routes the template's sandboxes).
 */

/** The store's pod labels: the network policies single it out by them. */
export const GRADER_STORE_LABELS = { 'app.kubernetes.io/name': GRADER_STORE.name } as const;
/** The store's PersistentVolumeClaim: a few small variants and reference results. */
const GRADER_STORE_STORAGE = '256Mi';

/**
 * The template's resources plus the grader store's, when there is one: the store is the platform's
 * integrity machinery, not the candidate's sandboxes, so it comes on top of what the template
 * budgets (quotaShortfall leaves it out for the same reason).
 */
export function withGraderStore(
  ctx: Context,
  r: { cpu: string; memory: string; storage: string },
): { cpu: string; memory: string; storage: string } {
  if (mongoSandboxes(ctx).length === 0) return r;
  const size = ctx.config.EPREUVE_SANDBOX_SIZES.graderStore.limits;
  const add = (a: string, b: string) => parseQuantity(a) + parseQuantity(b);
  const mebibytes = (n: number) => `${Math.ceil(n / 2 ** 20)}Mi`;
  return {
    cpu: `${Math.round(add(r.cpu, size.cpu) * 1000)}m`,
    memory: mebibytes(add(r.memory, size.memory)),
    storage: mebibytes(add(r.storage, GRADER_STORE_STORAGE)),
  };
}

/** The template's MongoDB sandboxes: each gets its hidden variants and references in the store. */
const mongoSandboxes = (ctx: Context) => ctx.template.spec.sandboxes.filter((s) => s.mongo);

/** Where the seed Job and the grader find the store (only when a MongoDB sandbox needs it). */
function graderStoreLocation(ctx: Context): GraderStoreLocation {
  return {
    host: `${GRADER_STORE.name}.${nsOf(ctx)}.svc`,
    port: GRADER_STORE.port,
    credentials: GRADER_STORE.mountPath,
  };
}

/** The store's Secret as a read-only volume (seed Job and grader), when there is a store. */
function graderStoreMount(ctx: Context) {
  if (mongoSandboxes(ctx).length === 0) return { mounts: [], volumes: [] };
  return {
    mounts: [{ name: 'grader-store', mountPath: GRADER_STORE.mountPath, readOnly: true }],
    volumes: [{ name: 'grader-store', secret: { secretName: GRADER_STORE.secretName } }],
  };
}

/**
 * The tasks graded on MongoDB sandbox `s`, as the template states them (the seeder resolves
 * catalogue exercises): their reference results are computed at seed time into the store.
 */
function mongoReferenceTasks(ctx: Context, s: Sandbox): NonNullable<SeedPlan[number]['references']> {
  return (ctx.template.spec.tasks ?? [])
    .filter((t) => t.sandbox === s.name && !t.grader?.manual && (!t.grader || t.grader.mongoResult))
    .map((t) => ({
      task: t.id,
      ...(t.exercise && { exercise: t.exercise }),
      ...(t.grader?.mongoResult?.reference && { reference: t.grader.mongoResult.reference }),
      ...(t.grader?.mongoResult?.collection && { collection: t.grader.mongoResult.collection }),
    }));
}

/** The store's only user (the seeder's and the grader's), random; created once like the others. */
export function graderStoreSecret(ctx: Context, random: (n: number) => Buffer): KubeObject | undefined {
  if (mongoSandboxes(ctx).length === 0) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(ctx, GRADER_STORE.secretName, GRADER_STORE_LABELS),
    type: 'Opaque',
    stringData: {
      [DB_CREDENTIAL_KEYS.adminUsername]: 'epreuve-grader',
      [DB_CREDENTIAL_KEYS.adminPassword]: random(24).toString('base64url'),
    },
  };
}

/** The store's StatefulSet (the sandbox MongoDB image, its own volume) and Service. */
export function graderStoreObjects(ctx: Context): { service: KubeObject; workload: KubeObject } | undefined {
  const mongo = mongoSandboxes(ctx)[0]?.mongo;
  if (!mongo) return undefined;
  const storageClass = ctx.config.EPREUVE_STORAGE_CLASS;
  const env = (name: string, key: string) => secretEnv(name, GRADER_STORE.secretName, key);
  return {
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(ctx, GRADER_STORE.name, GRADER_STORE_LABELS),
      spec: {
        type: 'ClusterIP',
        selector: GRADER_STORE_LABELS,
        ports: [{ name: 'db', port: GRADER_STORE.port, targetPort: GRADER_STORE.port, protocol: 'TCP' }],
      },
    },
    workload: {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta(ctx, GRADER_STORE.name, GRADER_STORE_LABELS),
      spec: {
        replicas: 1,
        serviceName: GRADER_STORE.name,
        selector: { matchLabels: GRADER_STORE_LABELS },
        template: {
          metadata: { labels: { ...labelsOf(ctx), ...GRADER_STORE_LABELS } },
          spec: {
            serviceAccountName: SANDBOX_SERVICE_ACCOUNT,
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: podSecurity(UID.mongo),
            ...placement(ctx),
            containers: [
              {
                name: 'mongo',
                image: ctx.config.EPREUVE_IMAGE_MONGO.replace('{version}', mongo.version),
                imagePullPolicy: ctx.config.EPREUVE_IMAGE_PULL_POLICY,
                ports: [{ name: 'db', containerPort: GRADER_STORE.port, protocol: 'TCP' }],
                env: [
                  env('MONGO_INITDB_ROOT_USERNAME', DB_CREDENTIAL_KEYS.adminUsername),
                  env('MONGO_INITDB_ROOT_PASSWORD', DB_CREDENTIAL_KEYS.adminPassword),
                ],
                ...probes({ tcpSocket: { port: GRADER_STORE.port }, periodSeconds: 5, timeoutSeconds: 3 }),
                resources: ctx.config.EPREUVE_SANDBOX_SIZES.graderStore,
                securityContext: restrictedContainer,
                volumeMounts: [
                  { name: 'data', mountPath: '/data/db' },
                  { name: 'configdb', mountPath: '/data/configdb' },
                  { name: 'tmp', mountPath: '/tmp' },
                ],
              },
            ],
            volumes: [
              { name: 'configdb', emptyDir: {} },
              { name: 'tmp', emptyDir: {} },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels: labelsOf(ctx) },
            spec: {
              accessModes: ['ReadWriteOnce'],
              resources: { requests: { storage: GRADER_STORE_STORAGE } },
              ...(storageClass ? { storageClassName: storageClass } : {}),
            },
          },
        ],
      },
    },
  };
}

/**
 * Only the seed Job and the grader may connect to the store; the store itself talks to no one.
 * (The namespace-wide policies leave it out: see `notGrader` in networkPolicies.)
 */
export function graderStorePolicies(ctx: Context): KubeObject[] {
  if (mongoSandboxes(ctx).length === 0) return [];
  const clients = {
    matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: [GRADER.name, 'seeder'] }],
  };
  const port = [{ protocol: 'TCP', port: GRADER_STORE.port }];
  const policy = (name: string, spec: object): KubeObject => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(ctx, name),
    spec,
  });
  return [
    policy('allow-grader-store-ingress', {
      podSelector: { matchLabels: GRADER_STORE_LABELS },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ from: [{ podSelector: clients }], ports: port }],
    }),
    // The grader's own egress reaches sandboxes only; the seed Job's reaches every pod already.
    policy('allow-grader-to-grader-store', {
      podSelector: { matchLabels: GRADER_LABELS },
      policyTypes: ['Egress'],
      egress: [{ to: [{ podSelector: { matchLabels: GRADER_STORE_LABELS } }], ports: port }],
    }),
  ];
}

export type WorkloadKind = 'StatefulSet' | 'Deployment';

/** One sandbox's objects: its Service and its workload, of the kind decided here and nowhere else. */
export interface SandboxObjects {
  sandbox: string;
  workloadKind: WorkloadKind;
  service: KubeObject;
  workload: KubeObject;
}

/** Databases keep their volume across restarts (StatefulSet); the data API is stateless (Deployment). */
function workloadOf(ctx: Context, s: Sandbox): Pick<SandboxObjects, 'workloadKind' | 'workload'> {
  switch (sandboxKind(s)) {
    case 'postgres':
      return { workloadKind: 'StatefulSet', workload: postgresStatefulSet(ctx, s) };
    case 'mongo':
      return { workloadKind: 'StatefulSet', workload: mongoStatefulSet(ctx, s) };
    case 'dataApi':
      return { workloadKind: 'Deployment', workload: dataApiDeployment(ctx, s) };
  }
}

export function sandboxObjects(ctx: Context, s: Sandbox): SandboxObjects {
  return { sandbox: s.name, service: service(ctx, s), ...workloadOf(ctx, s) };
}

/** The candidate namespace's desired state, grouped by how and when each group is written. */
export interface DesiredState {
  namespace: KubeObject;
  /** One credentials Secret per sandbox: created once, never applied again (see the reconciler). */
  secrets: KubeObject[];
  /** Quota, limits, network policies, service accounts and role bindings: before any workload. */
  guardRails: KubeObject[];
  workloads: SandboxObjects[];
  /** The seed Job, when a sandbox needs seeding. */
  seed?: KubeObject;
  /** The grader, when a sandbox holds a database answers run on. */
  grader?: GraderObjects;
}

/**
 * Pure but for `random`, the CSPRNG the Secrets' credentials come from (injected for tests and
 * only used by the reconciler the first time it creates a Secret).
 */
export function desiredState(ctx: Context, random: (bytes: number) => Buffer = randomBytes): DesiredState {
  const sandboxes = ctx.template.spec.sandboxes;
  return {
    namespace: namespace(ctx),
    secrets: [
      ...sandboxes.map((s) => credentialsSecret(ctx, s, random)),
      ...(seededSandboxes(ctx.template).length ? [graderSecret(ctx, random)] : []),
      ...[graderStoreSecret(ctx, random)].filter((x) => x !== undefined),
    ],
    guardRails: [
      resourceQuota(ctx),
      limitRange(ctx),
      ...networkPolicies(ctx),
      ...serviceAccounts(ctx),
      apiReaderBinding(ctx),
    ],
    workloads: sandboxes.map((s) => sandboxObjects(ctx, s)),
    seed: seedJob(ctx),
    grader: graderObjects(ctx),
  };
}

/** What is applied inside the namespace once it and its Secrets exist, guard rails first. */
export function namespaceContents(state: DesiredState): KubeObject[] {
  return [
    ...state.guardRails,
    ...state.workloads.map((w) => w.service),
    ...state.workloads.map((w) => w.workload),
    ...(state.grader?.store ? [state.grader.store.service, state.grader.store.workload] : []),
    ...(state.grader ? [state.grader.service, state.grader.workload] : []),
    ...(state.seed ? [state.seed] : []),
  ];
}

/**
 * Everything server-side applied, as one list in apply order: the namespace first, then what it
 * holds. Secrets are left out: they are created once, not applied (see `DesiredState.secrets`).
 */
export function desiredObjects(ctx: Context): KubeObject[] {
  const state = desiredState(ctx);
  return [state.namespace, ...namespaceContents(state)];
}
