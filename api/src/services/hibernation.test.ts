import type { KubeClient } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import { type AssessmentObject, isActive } from './assessments.ts';
import { Conflict, Invalid } from './errors.ts';
import { Hibernation, ReopenBody } from './hibernation.ts';

const NOW = new Date('2026-11-23T10:00:00Z');
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** A client that records patches and serves the sandbox Secrets (a fake: unit tier). */
function fakeClient() {
  const patches: Array<{ name: string; patch: unknown }> = [];
  const secrets: Record<string, Record<string, string>> = {
    'warehouse-credentials': {
      database: b64('sandbox'),
      username: b64('candidate'),
      password: b64('candidate-secret'),
      'grader-username': b64('grader'),
      'grader-password': b64('grader-secret'),
    },
  };
  const client = {
    mergePatch: async (_t: unknown, _ns: string, name: string, patch: unknown) => {
      patches.push({ name, patch });
      return {};
    },
    get: async (_t: unknown, _ns: string, name: string) =>
      secrets[name] ? { metadata: { name }, data: secrets[name] } : undefined,
  } as unknown as KubeClient;
  return { client, patches };
}

const assessment = (status: object, spec: object = {}): AssessmentObject =>
  ({
    metadata: { name: 'jane', namespace: 'hiring' },
    spec: { templateRef: { name: 't' }, candidate: { name: 'J', email: 'j@x.io' }, ...spec },
    status,
  }) as AssessmentObject;
const hibernated = {
  phase: 'Hibernated',
  namespace: 'epreuve-jane-abcde',
  hibernatedUntil: '2026-11-24T14:00:00Z',
  sandboxes: [
    { name: 'warehouse', kind: 'postgres', ready: false, port: 5432, secretName: 'warehouse-credentials' },
    { name: 'source', kind: 'dataApi', ready: false },
  ],
};

describe('Hibernation.reopen', () => {
  it('writes the reopen annotation and returns the read-only staff credential, not the candidate one', async () => {
    const { client, patches } = fakeClient();
    const view = await new Hibernation(client, () => NOW).reopen(assessment(hibernated), '90m');
    expect(patches).toEqual([
      {
        name: 'jane',
        patch: { metadata: { annotations: { 'epreuve.dev/reopen-until': '2026-11-23T11:30:00Z' } } },
      },
    ]);
    expect(view).toEqual({
      reopenedUntil: '2026-11-23T11:30:00Z',
      hibernatedUntil: '2026-11-24T14:00:00Z',
      namespace: 'epreuve-jane-abcde',
      sandboxes: [
        {
          name: 'warehouse',
          kind: 'postgres',
          host: 'warehouse.epreuve-jane-abcde.svc',
          port: 5432,
          database: 'sandbox',
          username: 'grader',
          password: 'grader-secret',
          readOnly: 'enforced',
          portForward: 'kubectl -n epreuve-jane-abcde port-forward svc/warehouse 5432:5432',
        },
      ],
    });
    expect(JSON.stringify(view)).not.toContain('candidate-secret');
  });

  it('never reopens past the deletion time', async () => {
    const { client } = fakeClient();
    const late = new Date('2026-11-24T13:00:00Z');
    const view = await new Hibernation(client, () => late).reopen(assessment(hibernated), '4h');
    expect(view.reopenedUntil).toBe('2026-11-24T14:00:00Z');
  });

  it('refuses a window over 4h, naming duration', async () => {
    const { client, patches } = fakeClient();
    const err = await new Hibernation(client, () => NOW).reopen(assessment(hibernated), '5h').catch((e) => e);
    expect(err).toBeInstanceOf(Invalid);
    expect(err).toMatchObject({ field: 'duration', message: 'duration must be at most 4h' });
    expect(patches).toEqual([]);
  });

  it.each([
    ['running', { phase: 'Ready', namespace: 'ns' }, {}, /only a hibernated assessment.*this one is Ready/],
    ['deleted', { phase: 'Expired' }, {}, /this one is Expired/],
    ['revoked', hibernated, { revoked: true }, /revoked/],
  ])('refuses an assessment that is %s', async (_, status, spec, message) => {
    const { client, patches } = fakeClient();
    const err = await new Hibernation(client, () => NOW)
      .reopen(assessment(status, spec), '1h')
      .catch((e) => e);
    expect(err).toBeInstanceOf(Conflict);
    expect(err.message).toMatch(message);
    expect(patches).toEqual([]);
  });

  it('the body defaults to a 2h window, and refuses a malformed duration', () => {
    expect(ReopenBody.parse({})).toEqual({ duration: '2h' });
    expect(ReopenBody.safeParse({ duration: '2 days' }).success).toBe(false);
  });
});

describe('team budgets', () => {
  it('count a hibernated assessment as active (its volumes still use storage)', () => {
    expect(isActive(assessment(hibernated))).toBe(true);
    expect(isActive(assessment({ phase: 'Expired' }))).toBe(false);
  });
});
