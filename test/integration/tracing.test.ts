import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ANNOTATIONS, candidateNamespace, KINDS } from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { sha256 } from '../../api/src/services/staff-auth.ts';
import { ApiProcess } from '../harness/api-process.ts';
import { JaegerServer, type JaegerSpan, type JaegerTrace, tag } from '../harness/jaeger.ts';
import { createTestNamespace, eventually, kube } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * Traces you can open: the API and the operator, real processes configured only by the standard
 * OTEL_* variables, export to a real Jaeger (its OTLP receiver behind basic auth) (built from its Go module); the test finds, through
 * Jaeger's query API as the UI would, the trace of `POST /assessments` with its Kubernetes client
 * spans as children, and the reconcile spans up to the first Ready linked to it (the API writes its
 * request span's traceparent on the Assessment; each reconcile span links to it). A log line of
 * that request carries the same trace id.
 */
const CHART = join(import.meta.dirname, '..', '..', 'charts', 'epreuve');
const ASMT = KINDS.Assessment;
const NS = resourceFor('v1', 'Namespace');
const API_KEY = 'epk_tracing-test-key-0123456789abcdef';
const POST_ROUTE = 'POST /api/v1/teams/:team/assessments';

describe('traces in a real Jaeger: POST /assessments → reconcile → Ready', () => {
  const kubeconfig = inject('kubeconfig');
  const client = kube(kubeconfig);
  const jaeger = new JaegerServer();
  let team: string;
  let leaseNs: string;
  let api: ApiProcess;
  let operator: OperatorProcess;
  let name: string;
  /** The API request span, from the traceparent the API wrote on the Assessment. */
  let request: { traceId: string; spanId: string };
  const timings: Record<string, number> = {};

  beforeAll(async () => {
    let t = Date.now();
    await jaeger.start();
    timings.jaegerStartMs = Date.now() - t;
    team = await createTestNamespace(kubeconfig, 'trace');
    leaseNs = await createTestNamespace(kubeconfig, 'trace-system');
    await client.apply(
      {
        ...parse(readFileSync(join(CHART, 'samples', 'data-engineer.yaml'), 'utf8')),
        metadata: { name: 'data-engineer', namespace: team },
      } as KubeObject,
      { fieldManager: 'test' },
    );
    // Exactly what the chart sets (otel.endpoint, otel.headers, otel.resourceAttributes), plus a
    // short batch delay.
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint,
      OTEL_EXPORTER_OTLP_HEADERS: jaeger.otlpHeaders,
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=tracing-test',
    };
    operator = await new OperatorProcess(kubeconfig, {
      ...otel,
      EPREUVE_LEADER_ELECT: 'true',
      EPREUVE_LEADER_ELECTION_NAMESPACE: leaseNs,
    }).start();
    api = await new ApiProcess(kubeconfig, {
      ...otel,
      EPREUVE_API_KEYS: JSON.stringify([
        { name: 'ci', sha256: sha256(API_KEY), role: 'recruiter', teams: [team] },
      ]),
    }).start();

    t = Date.now();
    const res = await fetch(`${api.url}/api/v1/teams/${team}/assessments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        templateRef: { name: 'data-engineer' },
        candidate: { name: 'Trace Doe', email: 'trace@example.com' },
      }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    name = ((await res.json()) as { name: string }).name;
    const created = await client.get<KubeObject>(ASMT, team, name);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(
      created?.metadata.annotations?.[ANNOTATIONS.traceparent] ?? '',
    );
    expect(m, 'the traceparent annotation of a sampled request span').not.toBeNull();
    request = { traceId: m![1]!, spanId: m![2]! };

    const phase = async () =>
      (await client.get<KubeObject & { status?: { phase?: string } }>(ASMT, team, name))?.status?.phase;
    await eventually(
      async () => {
        await reportPodsReady(client, candidateNamespace(team, name));
        expect(await phase()).toBe('Ready');
      },
      // A hang guard, not a timing goal.
      120_000,
      500,
    ).catch((err) => {
      throw new Error(`operator log:\n${operator.output.slice(-3000)}\n${err.message}`);
    });
    timings.postToReadyMs = Date.now() - t;
  }, 240_000);

  afterAll(async () => {
    console.info('tracing test timings:', timings);
    await api?.stop();
    await operator?.stop();
    await jaeger.stop();
    for (const ns of [team, leaseNs]) if (ns) await client.delete(NS, undefined, ns);
  });

  const service = (t: JaegerTrace, s: JaegerSpan) => t.processes[s.processID]?.serviceName;
  const childOf = (s: JaegerSpan, parent: { traceId: string; spanId: string }) =>
    s.references.some(
      (r) => r.refType === 'CHILD_OF' && r.traceID === parent.traceId && r.spanID === parent.spanId,
    );

  it('refuses exports without the credentials (so the headers were sent)', async () => {
    const res = await fetch(`${jaeger.otlpEndpoint}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [] }),
    });
    expect(res.status).toBe(401);
  });

  it('holds the trace of POST /assessments, with the Kubernetes client spans as its children', async () => {
    const t = Date.now();
    const trace = await eventually(async () => {
      const found = await jaeger.trace(request.traceId);
      expect(found?.spans.some((s) => s.spanID === request.spanId)).toBe(true);
      expect(found!.spans.some((s) => s.operationName === 'kube POST assessments')).toBe(true);
      return found!;
    }, 30_000);
    timings.apiTraceFoundMs = Date.now() - t;
    const root = trace.spans.find((s) => s.spanID === request.spanId)!;
    expect(root.operationName).toBe(POST_ROUTE);
    expect(service(trace, root)).toBe('epreuve-api');
    expect(tag(root, 'http.response.status_code')).toBe(201);
    // The SDK read OTEL_RESOURCE_ATTRIBUTES.
    expect(trace.processes[root.processID]!.tags).toContainEqual(
      expect.objectContaining({ key: 'deployment.environment.name', value: 'tracing-test' }),
    );
    const create = trace.spans.find((s) => s.operationName === 'kube POST assessments')!;
    expect(childOf(create, request)).toBe(true);
    expect(service(trace, create)).toBe('epreuve-api');
    // And it is found by the UI's search too: service and operation.
    const searched = await jaeger.traces({ service: 'epreuve-api', operation: POST_ROUTE });
    expect(searched.map((t) => t.traceID)).toContain(request.traceId);
  });

  it('holds the reconcile spans up to the first Ready, each linked to that request, with their client spans', async () => {
    const key = `${team}/${name}`;
    const traces = await eventually(async () => {
      const found = await jaeger.traces({
        service: 'epreuve-operator',
        operation: 'reconcile Assessment',
        tags: { 'epreuve.assessment': key },
      });
      const spans = found.flatMap((t) => t.spans);
      expect(spans.some((s) => tag(s, 'epreuve.assessment.phase') === 'Ready')).toBe(true);
      return found;
    }, 30_000);
    const reconciles = traces.flatMap((t) =>
      t.spans.filter((s) => s.operationName === 'reconcile Assessment'),
    );
    expect(reconciles.length).toBeGreaterThanOrEqual(2);
    for (const r of reconciles) {
      expect(tag(r, 'epreuve.assessment')).toBe(key);
      // The span link to the API request, as Jaeger shows links: a FOLLOWS_FROM reference.
      expect(r.references).toContainEqual({
        refType: 'FOLLOWS_FROM',
        traceID: request.traceId,
        spanID: request.spanId,
      });
    }
    // The pass that made it Ready and the ones that provisioned: their writes are their child spans.
    const ready = reconciles.find((s) => tag(s, 'epreuve.assessment.phase') === 'Ready')!;
    const spansOf = (r: JaegerSpan) => traces.find((t) => t.traceID === r.traceID)!.spans;
    const children = (r: JaegerSpan) =>
      spansOf(r)
        .filter((s) => childOf(s, { traceId: r.traceID, spanId: r.spanID }))
        .map((s) => s.operationName);
    expect(children(ready)).toContain('kube PATCH assessments/status');
    const provisioning = reconciles.filter((r) => children(r).includes('kube PATCH namespaces'));
    expect(provisioning.length).toBeGreaterThanOrEqual(1);
    expect(Math.min(...provisioning.map((r) => r.startTime))).toBeLessThan(ready.startTime);
    expect(service(traces[0]!, reconciles[0]!)).toBe('epreuve-operator');
  });

  it('writes the request’s trace id on its log lines', () => {
    const lines = api.logLines.filter((l) => l.trace_id === request.traceId);
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(['audit: assessment.create', 'request completed']),
    );
    for (const l of lines) expect(l.span_id).toBe(request.spanId);
  });
});
