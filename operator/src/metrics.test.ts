import type { KubeObject } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { createMetrics, phaseGauge } from './metrics.ts';

const NOW = Date.parse('2026-01-01T12:00:00Z');
const asmt = (name: string, created: string, phase?: string, deleting = false): KubeObject => ({
  apiVersion: 'epreuve.dev/v1alpha1',
  kind: 'Assessment',
  metadata: {
    name,
    namespace: 'hiring',
    creationTimestamp: created,
    ...(deleting ? { deletionTimestamp: created } : {}),
  },
  ...(phase ? { status: { phase } } : {}),
});
const quota = (ns: string, hard: Record<string, string>, used: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ResourceQuota',
  metadata: { name: 'sandbox-quota', namespace: ns, labels: { 'epreuve.dev/assessment': 'alice' } },
  status: { hard, used },
});

describe('scrape-time gauges', () => {
  it('export candidate namespaces quota, hard and used, in base units', async () => {
    const m = createMetrics();
    m.readCaches({
      assessments: () => [],
      quotas: () => [
        quota(
          'ep-hiring-alice',
          { 'limits.memory': '1Gi', 'requests.cpu': '500m' },
          { 'requests.cpu': '250m' },
        ),
      ],
    });
    const text = await m.registry.metrics();
    expect(text).toContain(
      'epreuve_namespace_quota{namespace="ep-hiring-alice",assessment="alice",resource="limits.memory",type="hard"} 1073741824',
    );
    expect(text).toContain(
      'epreuve_namespace_quota{namespace="ep-hiring-alice",assessment="alice",resource="requests.cpu",type="used"} 0.25',
    );
  });

  it('drops quotas that left the cache and skips unreadable quantities', async () => {
    const m = createMetrics();
    let quotas = [quota('ep-a', { pods: '16' }, { pods: 'lots' })];
    m.readCaches({ assessments: () => [], quotas: () => quotas });
    let text = await m.registry.metrics();
    expect(text).toMatch(/resource="pods",type="hard"\} 16/);
    expect(text).not.toMatch(/type="used"/);
    quotas = [];
    text = await m.registry.metrics();
    expect(text).not.toMatch(/epreuve_namespace_quota\{/);
  });

  it('report the age of the oldest assessment still provisioning, ignoring ready and deleted ones', async () => {
    const m = createMetrics();
    m.readCaches({
      now: () => NOW,
      quotas: () => [],
      assessments: () => [
        asmt('new', '2026-01-01T11:59:00Z'),
        asmt('slow', '2026-01-01T11:45:00Z', 'Provisioning'),
        asmt('done', '2026-01-01T10:00:00Z', 'Ready'),
        asmt('gone', '2026-01-01T09:00:00Z', 'Pending', true),
      ],
    });
    expect(await m.registry.metrics()).toMatch(/^epreuve_oldest_provisioning_assessment_seconds 900$/m);
  });

  it('report 0 before the caches are wired (a standby replica)', async () => {
    const text = await createMetrics().registry.metrics();
    expect(text).toMatch(/^epreuve_oldest_provisioning_assessment_seconds 0$/m);
  });
});

describe('known label values', () => {
  it('start at 0, so rates and alerts have a series before the first error', async () => {
    const m = createMetrics();
    m.initController('assessment');
    m.queueMetrics('assessment');
    const text = await m.registry.metrics();
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="assessment"} 0');
    expect(text).toContain('controller_runtime_reconcile_total{controller="assessment",result="error"} 0');
    expect(text).toContain('workqueue_retries_total{name="assessment"} 0');
    expect(text).toContain('epreuve_expired_total{reason="Revoked"} 0');
  });
});

// ---- hibernation (issue 17) ----
describe('epreuve_assessments{phase}', () => {
  it('counts hibernated assessments under phase="Hibernated", and every phase even at 0', async () => {
    const m = createMetrics();
    const gauge = phaseGauge(
      m,
      () =>
        [
          asmt('a', '2026-01-01T10:00:00Z', 'Hibernated'),
          asmt('b', '2026-01-01T10:00:00Z', 'Hibernated'),
          asmt('c', '2026-01-01T10:00:00Z', 'Ready'),
        ] as Array<{ status?: { phase?: string } }>,
    );
    gauge.start();
    gauge.stop();
    const text = await m.registry.metrics();
    expect(text).toContain('epreuve_assessments{phase="Hibernated"} 2');
    expect(text).toContain('epreuve_assessments{phase="Ready"} 1');
    expect(text).toContain('epreuve_assessments{phase="Expired"} 0');
  });
});
