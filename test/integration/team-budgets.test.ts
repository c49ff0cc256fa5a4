import { type KubeObject, resourceFor } from '@epreuve/kube';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApi } from '../harness/api.ts';
import { sample } from '../harness/fixtures.ts';
import { createTestNamespace, eventually } from '../harness/kube.ts';
import { TestIssuer } from '../harness/oidc.ts';

/**
 * Team budgets (issue 15, item 6) on the real API against the real API server: a team's active
 * assessments are capped (per team, with a default), refused with a problem+json naming the
 * budget and the count; an ended one frees its place; and a ResourceQuota on
 * count/assessments.epreuve.dev in the team namespace is the API server's own backstop, which the
 * API reports the same way (kubectl and Argo CD meet it too).
 */
const kubeconfig = inject('kubeconfig');
const issuer = new TestIssuer();
const KEY = 'epk_team-budget-tests-key-0123456789abcdef';
let team: string;
let quotaTeam: string;
let api: Awaited<ReturnType<typeof startApi>>;

const create = (t: string, name: string, headers: Record<string, string> = {}) =>
  api.app.inject({
    method: 'POST',
    url: `/api/v1/teams/${t}/assessments`,
    headers: { authorization: `Bearer ${KEY}`, ...headers },
    payload: {
      name,
      templateRef: { name: 'data-engineer' },
      candidate: { name: 'Jane Doe', email: 'jane@example.com' },
    },
  });
const inCache = (t: string, name: string) =>
  eventually(async () => expect(api.store.assessments.get(`${t}/${name}`)).toBeDefined());

beforeAll(async () => {
  await issuer.start();
  team = await createTestNamespace(kubeconfig, 'team-budget');
  quotaTeam = await createTestNamespace(kubeconfig, 'team-quota');
  api = await startApi(kubeconfig, {
    issuer,
    apiKey: KEY,
    apiKeyTeams: [team, quotaTeam],
    env: {
      EPREUVE_TEAM_BUDGETS: JSON.stringify({ [team]: 2 }),
      EPREUVE_MAX_ACTIVE_ASSESSMENTS_PER_TEAM: '100',
    },
  });
  for (const t of [team, quotaTeam]) {
    await api.client.apply(
      { ...sample('data-engineer.yaml'), metadata: { name: 'data-engineer', namespace: t } } as KubeObject,
      { fieldManager: 'test' },
    );
  }
  await eventually(async () => expect(api.store.template(team, 'data-engineer')).toBeDefined());
});

afterAll(async () => {
  await api?.stop();
  await issuer.stop();
});

describe('team budgets', () => {
  it('refuses the assessment past the team budget, naming the budget and the count; replays still answer', async () => {
    const first = await create(team, 'one', { 'idempotency-key': 'budget-one' });
    expect(first.statusCode).toBe(201);
    await inCache(team, 'one');
    expect((await create(team, 'two')).statusCode).toBe(201);
    await inCache(team, 'two');
    const third = await create(team, 'three');
    expect(third.statusCode).toBe(409);
    expect(third.headers['content-type']).toMatch(/problem\+json/);
    expect(third.json().detail).toMatch(new RegExp(`team ${team} has 2 active assessments, its budget is 2`));
    // A retry of an accepted request is not a new assessment: it is answered, not refused.
    expect((await create(team, 'one', { 'idempotency-key': 'budget-one' })).statusCode).toBe(200);
    const metrics = await api.app.metricsRegistry.metrics();
    expect(metrics).toContain(`epreuve_team_active_assessments{team="${team}"} 2`);
    expect(metrics).toContain(`epreuve_team_assessment_budget{team="${team}"} 2`);
  });

  it('an ended (revoked) assessment frees its place', async () => {
    const revoke = await api.app.inject({
      method: 'POST',
      url: `/api/v1/teams/${team}/assessments/two/revoke`,
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(revoke.statusCode).toBe(200);
    await eventually(async () => expect(api.store.assessments.get(`${team}/two`)?.spec.revoked).toBe(true));
    expect((await create(team, 'three')).statusCode).toBe(201);
  });

  it('a ResourceQuota on Assessments is enforced by the API server, and the API says so', async () => {
    await api.client.create({
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: 'epreuve-assessments', namespace: quotaTeam },
      spec: { hard: { 'count/assessments.epreuve.dev': '1' } },
    } as KubeObject);
    // The quota controller fills in status.used before the admission plugin enforces it.
    await eventually(async () => {
      const q = await api.client.get<KubeObject & { status?: { used?: Record<string, string> } }>(
        resourceFor('v1', 'ResourceQuota'),
        quotaTeam,
        'epreuve-assessments',
      );
      expect(q?.status?.used?.['count/assessments.epreuve.dev']).toBe('0');
    }, 30_000);
    expect((await create(quotaTeam, 'q-one')).statusCode).toBe(201);
    await inCache(quotaTeam, 'q-one');
    const refused = await create(quotaTeam, 'q-two');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().detail).toMatch(/exceeded quota: epreuve-assessments/);
  });
});
