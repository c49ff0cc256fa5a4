import { describe, expect, it } from 'vitest';
import { graderTokens, overLimit, type SubmissionObject } from './grading.ts';

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
