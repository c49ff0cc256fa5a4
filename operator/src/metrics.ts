import { LABELS, PHASES } from '@epreuve/crds';
import { type KubeObject, parseQuantity, type QueueMetrics } from '@epreuve/kube';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Runnable } from './manager.ts';

/** The operator's caches, read when Prometheus scrapes (no timers, no API calls). */
export interface CacheSource {
  assessments(): Array<KubeObject & { status?: { phase?: string } }>;
  quotas(): Array<KubeObject & { status?: { hard?: Record<string, string>; used?: Record<string, string> } }>;
  now?(): number;
}

interface PoolCounts {
  desired?: number;
  ready?: number;
  building?: number;
  claimed?: number;
}

const PROVISIONING = new Set(['Pending', 'Provisioning', undefined]);

/**
 * Metrics under controller-runtime's and client-go's names, so existing dashboards and alerts
 * fit, plus Épreuve's own. One registry per process (tests create several).
 */
export function createMetrics(registry = new Registry()) {
  const reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'] as const,
    registers: [registry],
  });
  const reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'] as const,
    registers: [registry],
  });
  const reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'] as const,
    registers: [registry],
  });
  const maxConcurrent = new Gauge({
    name: 'controller_runtime_max_concurrent_reconciles',
    help: 'Maximum number of concurrent reconciles per controller',
    labelNames: ['controller'] as const,
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  const queueAdds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  const queueRetries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  const queueWait = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'How long in seconds an item stays in workqueue before being requested',
    labelNames: ['name'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [registry],
  });
  const queueWork = new Histogram({
    name: 'workqueue_work_duration_seconds',
    help: 'How long in seconds processing an item from workqueue takes',
    labelNames: ['name'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60],
    registers: [registry],
  });
  const longestRunning = new Gauge({
    name: 'workqueue_longest_running_processor_seconds',
    help: 'How many seconds has the longest running processor for workqueue been running',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  const leader = new Gauge({
    name: 'leader_election_master_status',
    help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master',
    labelNames: ['name'] as const,
    registers: [registry],
  });
  const restRequests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Number of HTTP requests to the Kubernetes API, partitioned by status code and method',
    labelNames: ['code', 'method', 'resource'] as const,
    registers: [registry],
  });
  const restLatency = new Histogram({
    name: 'rest_client_request_duration_seconds',
    help: 'Request latency in seconds, by verb',
    labelNames: ['verb'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [registry],
  });
  const restRetries = new Counter({
    name: 'rest_client_request_retries_total',
    help: 'Number of request retries, partitioned by status code (or connection error) and verb',
    labelNames: ['code', 'verb'] as const,
    registers: [registry],
  });
  const eventWrites = new Counter({
    name: 'epreuve_event_writes_total',
    help: 'Kubernetes Event writes by result: created, patched (a series grew), dropped (rate limited), failed',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const assessments = new Gauge({
    name: 'epreuve_assessments',
    help: 'Assessments by phase',
    labelNames: ['phase'] as const,
    registers: [registry],
  });
  const timeToReady = new Histogram({
    name: 'epreuve_time_to_ready_seconds',
    help: 'Seconds from an Assessment being created to every sandbox being ready',
    buckets: [5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600],
    registers: [registry],
  });
  const expired = new Counter({
    name: 'epreuve_expired_total',
    help: 'Assessments that reached their deadline or were revoked',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const failures = new Counter({
    name: 'epreuve_assessment_failures_total',
    help: 'Assessments that failed, by reason',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const objectWrites = new Counter({
    name: 'epreuve_managed_object_writes_total',
    help: 'Writes (apply, create, delete) the operator made to managed objects, by kind',
    labelNames: ['kind', 'verb'] as const,
    registers: [registry],
  });

  // Warm pools (issue 16).
  const poolClaims = new Counter({
    name: 'epreuve_pool_claims_total',
    help: 'Claims of warm pool namespaces by new assessments: claimed, lost (another claim won the member), empty (none free: cold start)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const poolClaimSeconds = new Histogram({
    name: 'epreuve_pool_claim_seconds',
    help: 'Seconds from an Assessment being created to its claim of a warm pool namespace',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  });
  const poolFailedBuilds = new Counter({
    name: 'epreuve_pool_failed_builds_total',
    help: 'Warm pool members whose build failed (seed Job failed, or not ready within the build deadline), by template',
    labelNames: ['template'] as const,
    registers: [registry],
  });
  let pools:
    | (() => Array<KubeObject & { spec?: { pool?: unknown }; status?: { pool?: PoolCounts } }>)
    | undefined;
  const poolMembers = new Gauge({
    name: 'epreuve_pool_members',
    help: "Warm pools' namespaces by state (desired = spec.pool.min, or the open schedule window's; ready, building, claimed), per template, from status.pool",
    labelNames: ['template', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const t of pools?.() ?? []) {
        const p = t.status?.pool;
        if (!t.spec?.pool || !p) continue;
        const template = `${t.metadata.namespace}/${t.metadata.name}`;
        for (const state of ['desired', 'ready', 'building', 'claimed'] as const)
          this.set({ template, state }, p[state] ?? 0);
      }
    },
  });
  for (const result of ['claimed', 'lost', 'empty']) poolClaims.inc({ result }, 0);

  // Collected on scrape from the informer caches. A standby replica has empty caches and reports
  // no quota series and 0 s, so dashboards and alerts aggregate with max/sum across replicas.
  let source: CacheSource | undefined;
  const namespaceQuota = new Gauge({
    name: 'epreuve_namespace_quota',
    help: "Candidate namespaces' ResourceQuota, hard and used, in base units (cores, bytes, count)",
    labelNames: ['namespace', 'assessment', 'resource', 'type'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const q of source?.quotas() ?? []) {
        const labels = {
          namespace: q.metadata.namespace ?? '',
          assessment: q.metadata.labels?.[LABELS.assessment] ?? '',
        };
        for (const type of ['hard', 'used'] as const)
          for (const [resource, value] of Object.entries(q.status?.[type] ?? {})) {
            const n = safeQuantity(value);
            if (n !== undefined) this.set({ ...labels, resource, type }, n);
          }
      }
    },
  });
  const oldestProvisioning = new Gauge({
    name: 'epreuve_oldest_provisioning_assessment_seconds',
    help: 'Age of the oldest Assessment still Pending or Provisioning (0 when there is none)',
    registers: [registry],
    collect() {
      const now = source?.now?.() ?? Date.now();
      let oldest = 0;
      for (const a of source?.assessments() ?? []) {
        const created = Date.parse(String(a.metadata.creationTimestamp ?? ''));
        if (!PROVISIONING.has(a.status?.phase) || a.metadata.deletionTimestamp || Number.isNaN(created))
          continue;
        oldest = Math.max(oldest, (now - created) / 1000);
      }
      this.set(oldest);
    },
  });

  // Known label values start at 0, as controller-runtime does, so rate() and alerts see a series
  // before the first error or retry.
  for (const reason of ['DeadlineReached', 'Revoked']) expired.inc({ reason }, 0);
  const initController = (controller: string) => {
    for (const result of ['success', 'error', 'requeue', 'requeue_after'])
      reconcileTotal.inc({ controller, result }, 0);
    reconcileErrors.inc({ controller }, 0);
  };

  const queueMetrics = (name: string): QueueMetrics => {
    queueAdds.inc({ name }, 0);
    queueRetries.inc({ name }, 0);
    return {
      depth: (n) => queueDepth.set({ name }, n),
      added: () => queueAdds.inc({ name }),
      retried: () => queueRetries.inc({ name }),
      queued: (s) => queueWait.observe({ name }, s),
      worked: (s) => queueWork.observe({ name }, s),
    };
  };

  return {
    registry,
    reconcileTotal,
    reconcileErrors,
    reconcileTime,
    activeWorkers,
    maxConcurrent,
    longestRunning,
    leader,
    restRequests,
    restLatency,
    restRetries,
    eventWrites,
    assessments,
    timeToReady,
    expired,
    failures,
    objectWrites,
    namespaceQuota,
    oldestProvisioning,
    poolClaims,
    poolClaimSeconds,
    poolFailedBuilds,
    poolMembers,
    /** Points `epreuve_pool_members` at the templates' cache. */
    readPools(from: NonNullable<typeof pools>) {
      pools = from;
    },
    queueMetrics,
    initController,
    /** Points the scrape-time gauges at the manager's caches. */
    readCaches(from: CacheSource) {
      source = from;
    },
  };
}

function safeQuantity(value: string): number | undefined {
  try {
    return parseQuantity(value);
  } catch {
    return undefined; // a quantity we cannot read is left out rather than failing the scrape
  }
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Sets `epreuve_assessments{phase}` from the cache every 5 s while it runs. */
export function phaseGauge(
  metrics: Metrics,
  assessments: () => Array<{ status?: { phase?: string } }>,
): Runnable {
  let timer: NodeJS.Timeout | undefined;
  const update = () => {
    const counts = Object.fromEntries(PHASES.map((p) => [p, 0])) as Record<string, number>;
    for (const a of assessments()) counts[a.status?.phase ?? 'Pending']! += 1;
    for (const [phase, n] of Object.entries(counts)) metrics.assessments.set({ phase }, n);
  };
  return {
    start() {
      update();
      timer = setInterval(update, 5000);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
