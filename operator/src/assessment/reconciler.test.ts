import type { Informer, KubeClient } from '@epreuve/kube';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.ts';
import { createMetrics } from '../metrics.ts';
import { assessment } from './fixtures.test-helpers.ts';
import { AssessmentReconciler, type AssessmentReconcilerDeps } from './reconciler.ts';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
trace.setGlobalTracerProvider(provider);
afterAll(() => provider.shutdown());

const cache = (objects: Record<string, unknown>) =>
  ({ get: (key: string) => objects[key] }) as unknown as Informer<never>;

describe('AssessmentReconciler tracing', () => {
  it('opens a reconcile span linked to the traceparent the API wrote', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const a = {
      ...assessment(
        {},
        {
          annotations: { 'epreuve.dev/traceparent': `00-${traceId}-00f067aa0ba902b7-01` },
          finalizers: ['epreuve.dev/cleanup'],
        },
      ),
      status: { phase: 'Expired' as const },
    };
    const managed = new Proxy({}, { get: () => cache({}) }) as AssessmentReconcilerDeps['managed'];
    const reconciler = new AssessmentReconciler({
      client: {} as KubeClient, // an Expired assessment whose namespace is gone needs no API call
      assessments: cache({ 'hiring/jane-doe': a }) as never,
      templates: cache({}) as never,
      managed,
      config: loadConfig({}),
      metrics: createMetrics(),
      log: pino({ level: 'silent' }),
    });
    expect(await reconciler.reconcile('hiring/jane-doe')).toEqual({});
    const span = exporter.getFinishedSpans().find((s) => s.name === 'reconcile Assessment');
    expect(span?.attributes['epreuve.assessment']).toBe('hiring/jane-doe');
    expect(span?.links[0]?.context.traceId).toBe(traceId);
  });

  it('ignores a malformed traceparent', async () => {
    exporter.reset();
    const a = {
      ...assessment({}, { annotations: { 'epreuve.dev/traceparent': 'garbage' } }),
      status: { phase: 'Expired' as const },
    };
    const reconciler = new AssessmentReconciler({
      client: {} as KubeClient,
      assessments: cache({
        'hiring/jane-doe': { ...a, metadata: { ...a.metadata, finalizers: ['epreuve.dev/cleanup'] } },
      }) as never,
      templates: cache({}) as never,
      managed: new Proxy({}, { get: () => cache({}) }) as AssessmentReconcilerDeps['managed'],
      config: loadConfig({}),
      metrics: createMetrics(),
      log: pino({ level: 'silent' }),
    });
    await reconciler.reconcile('hiring/jane-doe');
    expect(exporter.getFinishedSpans()[0]?.links).toEqual([]);
  });
});
