import { KINDS } from '@epreuve/crds';
import { type KubeObject, resourceFor } from '@epreuve/kube';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { candidateNamespace } from '../../crds/src/index.ts';
import { assessmentObject, sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually, kube, kubectl } from '../harness/kube.ts';
import { reportPodsReady } from '../harness/kubelet-stand-in.ts';
import { OperatorProcess } from '../harness/operator.ts';

/**
 * The operator's Kubernetes Events against the real API server: what `kubectl describe assessment`
 * shows of each step and failure, written as events.k8s.io/v1 Events by `epreuve.dev/operator`.
 */
const kubeconfig = inject('kubeconfig');
const client = kube(kubeconfig);
const ASMT = KINDS.Assessment;
const NS = resourceFor('v1', 'Namespace');
const EVENTS = '/apis/events.k8s.io/v1';
type Asmt = KubeObject & { status?: { phase?: string } };
type Event = KubeObject & {
  reason: string;
  type: string;
  action: string;
  note?: string;
  reportingController: string;
  reportingInstance: string;
  regarding: { kind: string; name: string; uid?: string };
  series?: { count: number };
};

let team: string;
let operator: OperatorProcess;

beforeAll(async () => {
  team = await createTestNamespace(kubeconfig, 'events');
  const tpl = sample<KubeObject & { spec: Record<string, unknown> }>('data-engineer.yaml');
  await client.apply({ ...tpl, metadata: { name: 'data-engineer', namespace: team } } as KubeObject, {
    fieldManager: 'test',
  });
  // A template whose quota cannot hold its own sandboxes.
  await client.apply(
    {
      ...tpl,
      metadata: { name: 'too-small', namespace: team },
      spec: { ...tpl.spec, resources: { cpu: '1', memory: '1Gi', storage: '5Gi' } },
    } as KubeObject,
    { fieldManager: 'test' },
  );
  operator = await new OperatorProcess(kubeconfig, {
    EPREUVE_LEADER_ELECT: 'false',
    EPREUVE_POD_NAME: 'operator-events-0',
  }).start();
});

afterAll(async () => {
  await operator?.stop();
  await client.delete(NS, undefined, team);
});

const get = (name: string) => client.get<Asmt>(ASMT, team, name);
const eventsOf = async (name: string) =>
  (await client.request<{ items: Event[] }>('GET', `${EVENTS}/namespaces/${team}/events`)).items.filter(
    (e) => e.regarding.name === name,
  );
const describeAsmt = async (name: string) => {
  const out = await kubectl(kubeconfig, ['describe', 'assessment', name, '-n', team]);
  expect(out.code, out.stderr).toBe(0);
  return out.stdout;
};
/** The lines of `kubectl describe`'s Events table. */
const eventLines = (described: string) =>
  described.slice(described.indexOf('\nEvents:')).split('\n').slice(1);

describe('Kubernetes Events', () => {
  it('kubectl describe assessment lists Provisioning then Ready, from epreuve.dev/operator', async () => {
    await client.create(assessmentObject(team, 'described') as KubeObject);
    const ns = candidateNamespace(team, 'described');
    await eventually(async () => {
      await reportPodsReady(client, ns);
      expect((await get('described'))?.status?.phase).toBe('Ready');
    }, 60_000);
    const described = await eventually(async () => {
      const out = await describeAsmt('described');
      expect(out).toContain('\nEvents:');
      expect(out).toMatch(/Normal\s+Ready\b/);
      return out;
    }, 20_000);
    const lines = eventLines(described);
    const provisioning = lines.findIndex((l) => /Normal\s+Provisioning\s/.test(l));
    const ready = lines.findIndex((l) => /Normal\s+Ready\s/.test(l));
    expect(provisioning, `no Provisioning event in:\n${described}`).not.toBe(-1);
    expect(ready).toBeGreaterThan(provisioning);
    expect(lines[provisioning]).toContain('epreuve.dev/operator');
    expect(lines[provisioning]).toContain(`objects applied in ${ns}`);

    // The objects behind it: events.k8s.io/v1, about the Assessment (by uid), with action and instance.
    const a = (await get('described'))!;
    const events = await eventsOf('described');
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['Provisioning', 'Ready']));
    for (const e of events) {
      expect(e).toMatchObject({
        reportingController: 'epreuve.dev/operator',
        reportingInstance: 'operator-events-0',
        action: 'Provision',
        regarding: { kind: 'Assessment', name: 'described', uid: a.metadata.uid },
      });
    }
    const listed = await kubectl(kubeconfig, ['events', '--for', 'assessment/described', '-n', team]);
    expect(listed.stdout).toMatch(/Normal\s+Provisioning\s/);
    expect(listed.stdout).toMatch(/Normal\s+Ready\s/);
    // Each step told once, however many passes the reconciler made.
    expect(events.filter((e) => e.reason === 'Ready')).toHaveLength(1);
  });

  it('a failure shows as a Warning with the reason of the status condition', async () => {
    await client.create(
      assessmentObject(team, 'squeezed', { templateRef: { name: 'too-small' } }) as KubeObject,
    );
    const described = await eventually(async () => {
      const out = await describeAsmt('squeezed');
      expect(out).toMatch(/Warning\s+QuotaExceeded\s/);
      return out;
    }, 30_000);
    expect(eventLines(described).filter((l) => /QuotaExceeded/.test(l))).toHaveLength(1);
    // The Event and the status are two writes: the phase may land a moment after the Event.
    await eventually(async () => expect((await get('squeezed'))?.status?.phase).toBe('Failed'), 30_000);
  });

  it('deleting an assessment tells CleaningUp, then Deleted once its namespace is gone', async () => {
    await client.delete(ASMT, team, 'described');
    await eventually(async () => expect(await get('described')).toBeUndefined(), 60_000);
    const reasons = await eventually(async () => {
      const r = (await eventsOf('described')).map((e) => `${e.action}/${e.reason}`);
      expect(r).toContain('Delete/Deleted');
      return r;
    }, 20_000);
    expect(reasons).toEqual(expect.arrayContaining(['Delete/CleaningUp', 'Delete/Deleted']));
    // No write failed for this file's assessments. (The operator sees the whole shared control
    // plane: Events about other files' assessments in namespaces being deleted are refused, and
    // counted as failed, which is right and harmless.)
    const notRecorded = operator.output
      .split('\n')
      .filter((line) => line.includes('event not recorded') && line.includes(`"namespace":"${team}"`));
    expect(notRecorded).toEqual([]);
    expect(await operator.metric('epreuve_event_writes_total', { result: 'created' })).toBeGreaterThanOrEqual(
      5,
    );
  }, 90_000);
});
