import { LABELS } from '@epreuve/crds';
import { type KubeClient, KubeError, type KubeObject } from '@epreuve/kube';
import { describe, expect, it } from 'vitest';
import type { AssessmentObject, AssessmentStore } from './assessments.ts';
import { Conflict, Unavailable } from './errors.ts';
import type { GraderClient } from './grader-client.ts';
import {
  GradingService,
  graderTokens,
  legacySubmissionName,
  overLimit,
  type SubmissionObject,
  submissionName,
} from './grading.ts';

const sub = (name: string, task: string, at: string): SubmissionObject =>
  ({
    apiVersion: 'epreuve.dev/v1alpha1',
    kind: 'Submission',
    metadata: { name, namespace: 'hiring', creationTimestamp: at },
    spec: { assessmentRef: { name: 'jane' }, task, answer: 'SELECT 1', submittedAt: at },
  }) as SubmissionObject;

describe('overLimit', () => {
  const limits = { maxAttempts: 2, maxSubmissions: 3 };

  it('lets the first attempts in and refuses the one past the cap, naming it', () => {
    const a = sub('jane-t-aaaaa', 't', '2026-11-30T07:00:00Z');
    const b = sub('jane-t-bbbbb', 't', '2026-11-30T07:00:01Z');
    const c = sub('jane-t-ccccc', 't', '2026-11-30T07:00:02Z');
    expect(overLimit([a, b, c], a, 't', limits)).toBeUndefined();
    expect(overLimit([a, b, c], b, 't', limits)).toBeUndefined();
    expect(overLimit([a, b, c], c, 't', limits)).toEqual({
      en: 'you have used all 2 attempts at task t',
      fr: 'vous avez utilisé les 2 tentatives de la tâche t',
    });
  });

  it('orders racing submissions of the same second by name, so every replica agrees on who fits', () => {
    const at = '2026-11-30T07:00:00Z';
    const racing = ['jane-t-zzzzz', 'jane-t-mmmmm', 'jane-t-aaaaa'].map((n) => sub(n, 't', at));
    const fits = racing.filter((s) => !overLimit(racing, s, 't', limits)).map((s) => s.metadata.name);
    expect(fits.sort()).toEqual(['jane-t-aaaaa', 'jane-t-mmmmm']);
  });

  it('counts every admitted submission, whatever its name: a later one never slips in', () => {
    const at = '2026-11-30T07:00:00Z';
    const admitted = ['jane-t-mmmmm', 'jane-t-zzzzz'].map((n) => ({
      ...sub(n, 't', at),
      status: { graded: true },
    })) as SubmissionObject[];
    const late = sub('jane-t-aaaaa', 't', at); // same second, a name that sorts first
    expect(overLimit([...admitted, late], late, 't', limits)?.en).toBe(
      'you have used all 2 attempts at task t',
    );
  });

  it('caps submissions across tasks too', () => {
    const all = ['a', 'b', 'c', 'd'].map((task, i) => sub(`jane-${task}-x`, task, `2026-11-30T07:00:0${i}Z`));
    expect(overLimit(all, all[3]!, 'd', limits)).toEqual({
      en: "you have used all 3 submissions of this assessment (the template's grading.maxSubmissions)",
      fr: 'vous avez utilisé les 3 soumissions de cette évaluation (grading.maxSubmissions du modèle)',
    });
    expect(overLimit(all, all[2]!, 'c', limits)).toBeUndefined();
  });
});

describe('graderTokens', () => {
  it('reads a namespace’s token once per TTL, not once per answer', async () => {
    let reads = 0;
    let t = 0;
    const tokens = graderTokens(
      async (ns) => {
        reads++;
        return `token-${ns}-${reads}`;
      },
      1000,
      () => t,
    );
    expect(await tokens.get('a')).toBe('token-a-1');
    expect(await tokens.get('a')).toBe('token-a-1');
    expect(reads).toBe(1);
    t = 1001;
    expect(await tokens.get('a')).toBe('token-a-2');
    expect(reads).toBe(2);
  });

  it('forgets a token on demand (a 401), and never caches a missing one', async () => {
    let value: string | undefined;
    let reads = 0;
    const tokens = graderTokens(async () => {
      reads++;
      return value;
    });
    expect(await tokens.get('a')).toBeUndefined();
    value = 'first';
    expect(await tokens.get('a')).toBe('first');
    value = 'second';
    expect(await tokens.get('a')).toBe('first');
    tokens.forget('a');
    expect(await tokens.get('a')).toBe('second');
    expect(reads).toBe(3);
  });
});

const assessment = (name: string, uid: string) =>
  ({ metadata: { name, namespace: 'hiring', uid } }) as AssessmentObject;

describe('submissionName', () => {
  it('tells apart assessment `ann` + task `schema-design` and `ann-schema` + `design`', () => {
    const ann = submissionName(assessment('ann', 'uid-1'), 'schema-design', 1);
    const annSchema = submissionName(assessment('ann-schema', 'uid-2'), 'design', 1);
    expect(ann).not.toBe(annSchema);
    expect(ann).toMatch(/^ann-schema-design-[0-9a-f]{10}-1$/);
  });

  it('differs for a later assessment of the same name, and stays a DNS-1123 name at the longest', () => {
    expect(submissionName(assessment('jane', 'uid-1'), 't', 1)).not.toBe(
      submissionName(assessment('jane', 'uid-2'), 't', 1),
    );
    const longest = submissionName(assessment('a'.repeat(63), 'uid'), 'b'.repeat(63), 100);
    expect(longest.length).toBeLessThanOrEqual(253);
    expect(longest).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
  });
});

describe('GradingService admission', () => {
  const a = assessment('jane', 'uid-jane');
  const limits = { maxAttempts: 2, maxSubmissions: 10 };
  const store = {
    templateOf: () => ({
      spec: {
        grading: limits,
        tasks: [{ id: 't', sandbox: 'db', prompt: 'p', points: 1, grader: { manual: {} } }],
      },
    }),
  } as unknown as AssessmentStore;
  const ours = (name: string): SubmissionObject =>
    ({
      metadata: {
        name,
        namespace: 'hiring',
        labels: { [LABELS.assessment]: 'jane', [LABELS.task]: 't' },
        ownerReferences: [{ kind: 'Assessment', name: 'jane', uid: 'uid-jane' }],
      },
      spec: { assessmentRef: { name: 'jane' }, task: 't', answer: 'x', submittedAt: '2026-11-30T07:00:00Z' },
    }) as unknown as SubmissionObject;
  /** A KubeClient holding `existing`; every create of a held name is a 409. */
  const fakeClient = (
    existing: SubmissionObject[],
    holder: (name: string) => SubmissionObject | undefined,
  ) => {
    const created: string[] = [];
    const client = {
      list: async () => ({ items: [...existing] }),
      create: async (o: KubeObject) => {
        created.push(o.metadata.name!);
        if (holder(o.metadata.name!)) throw new KubeError(409, 'AlreadyExists', 'exists');
        return o;
      },
      get: async (_type: unknown, _ns: string, name: string) => holder(name),
      mergePatch: async (_t: unknown, _ns: string, name: string, patch: object) => ({
        ...ours(name),
        ...patch,
      }),
      delete: async () => undefined,
    } as unknown as KubeClient;
    return { client, created };
  };
  const service = (client: KubeClient) => new GradingService(client, store, {} as GraderClient);

  it('counts an attempt stored under the older name: the next one takes slot 2', async () => {
    const { client, created } = fakeClient([ours(legacySubmissionName(a, 't', 1))], () => undefined);
    const s = await service(client).submit(a, 't', 'answer');
    expect(created).toEqual([submissionName(a, 't', 2)]);
    expect(s.metadata.name).toBe(submissionName(a, 't', 2));
  });

  it('refuses with 409 when another assessment’s object holds the name, without looping', async () => {
    const foreign = { ...ours('x'), metadata: { ...ours('x').metadata, ownerReferences: [] } };
    const { client, created } = fakeClient([], () => foreign as SubmissionObject);
    const err = await service(client)
      .submit(a, 't', 'answer')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Conflict);
    expect((err as Error).message).toBe(
      `submission name ${submissionName(a, 't', 1)} is held by another object; tell the recruiter`,
    );
    expect(created).toHaveLength(1);
  });

  it('gives up with 503 after a bounded number of rounds when its own slots keep being taken', async () => {
    // Every name is held by one of ours that the list never shows (a racer faster than each count).
    const { client, created } = fakeClient([], (name) => ours(name));
    const err = await service(client)
      .submit(a, 't', 'answer')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Unavailable);
    expect((err as Error).message).toBe('too many submissions of task t at once; try again in a moment');
    expect(created).toHaveLength(limits.maxAttempts + 3);
  });
});
