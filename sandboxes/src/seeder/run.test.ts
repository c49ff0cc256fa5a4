import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MONGO_EXERCISES } from '../exercises/mongo.ts';
import { parsePlan, probeTimeoutMs, resolveReferences, rolelessOptIn, runSeed, waitFor } from './run.ts';

describe('rolelessOptIn', () => {
  it('is off unless EPREUVE_ALLOW_ROLELESS_USERS is true', () => {
    expect(rolelessOptIn({})).toBe(false);
    expect(rolelessOptIn({ EPREUVE_ALLOW_ROLELESS_USERS: '' })).toBe(false);
    expect(rolelessOptIn({ EPREUVE_ALLOW_ROLELESS_USERS: 'false' })).toBe(false);
    expect(rolelessOptIn({ EPREUVE_ALLOW_ROLELESS_USERS: 'true' })).toBe(true);
  });
  it('refuses anything else, naming the variable', () => {
    expect(() => rolelessOptIn({ EPREUVE_ALLOW_ROLELESS_USERS: 'yes' })).toThrow(
      'EPREUVE_ALLOW_ROLELESS_USERS must be true or false, got "yes"',
    );
  });
});

describe('resolveReferences', () => {
  const devices = MONGO_EXERCISES.find((e) => e.id === 'sessions-per-device')!;
  it('resolves catalogue exercises as the API does, the template’s own reference and collection first', () => {
    expect(
      resolveReferences({
        name: 'events',
        references: [
          { task: 'a', exercise: 'sessions-per-device' },
          { task: 'b', exercise: 'sessions-per-device', reference: '[{"$count": "n"}]' },
          { task: 'c', reference: '[{"$count": "n"}]', collection: 'card_events' },
        ],
      }),
    ).toEqual([
      { task: 'a', reference: devices.reference, collection: 'app_sessions' },
      { task: 'b', reference: '[{"$count": "n"}]', collection: 'app_sessions' },
      { task: 'c', reference: '[{"$count": "n"}]', collection: 'card_events' },
    ]);
  });
  it('leaves out exercises that are not MongoDB pipelines (SQL, manual)', () => {
    expect(
      resolveReferences({
        name: 'events',
        references: [{ task: 'x', exercise: 'rank-customers-by-country' }],
      }),
    ).toEqual([]);
  });
  it('fails, naming the task and what is missing, when nothing gives a collection or a reference', () => {
    expect(() =>
      resolveReferences({ name: 'events', references: [{ task: 'x', reference: '[{"$count": "n"}]' }] }),
    ).toThrow('task x on sandbox events: no collection');
    expect(() =>
      resolveReferences({ name: 'events', references: [{ task: 'y', exercise: 'nope' }] }),
    ).toThrow(/unknown exercise "nope"/);
  });
});

describe('parsePlan', () => {
  const entry = {
    name: 'events',
    kind: 'mongo',
    host: 'events.ns.svc',
    port: 27017,
    dataset: 'retail@1',
    credentials: '/c',
  };
  it('accepts a store and the references of a MongoDB sandbox', () => {
    const store = { host: 'grader-store.ns.svc', port: 27017, credentials: '/etc/epreuve/grader-store' };
    const plan = parsePlan(
      JSON.stringify([{ ...entry, store, references: [{ task: 'a', exercise: 'sessions-per-device' }] }]),
    );
    expect(plan[0]).toMatchObject({ store });
  });
  it('fails early on a reference task it cannot resolve', () => {
    expect(() =>
      parsePlan(JSON.stringify([{ ...entry, references: [{ task: 'a', exercise: 'nope' }] }])),
    ).toThrow(/unknown exercise "nope"/);
  });
});

describe('runSeed', () => {
  it('refuses hidden variants or references of a MongoDB sandbox without a grader store, before connecting', async () => {
    const base = {
      name: 'events',
      kind: 'mongo' as const,
      // Nothing listens here: the refusal must come before any connection attempt.
      host: '127.0.0.1',
      port: 1,
      dataset: 'retail@1',
      credentials: mkdtempSync(join(tmpdir(), 'epreuve-run-test-')),
    };
    for (const key of [
      'database',
      'username',
      'password',
      'admin-username',
      'admin-password',
      'grader-username',
      'grader-password',
    ])
      writeFileSync(join(base.credentials, key), 'x');
    for (const extra of [
      { hiddenVariants: 1 },
      { references: [{ task: 'a', exercise: 'sessions-per-device' }] },
    ])
      await expect(
        runSeed([{ ...base, ...extra }], { size: 'small', waitTimeoutMs: 1, log: () => {} }),
      ).rejects.toThrow(/need the grader store/);
    rmSync(base.credentials, { recursive: true });
  });
});

describe('waitFor', () => {
  it('numbers its attempts, whose connection waits grow from 1 s to 5 s', async () => {
    const seen: number[] = [];
    const lines: string[] = [];
    const got = await waitFor(
      'db',
      async (n) => {
        seen.push(n);
        if (n < 2) throw new Error('not yet');
        return 'up';
      },
      10_000,
      (l) => lines.push(l),
    );
    expect(got).toBe('up');
    expect(seen).toEqual([1, 2]);
    expect(lines).toEqual(['waiting for db: not yet (attempt 1, next in 0.5 s)']);
    expect([1, 2, 3, 5, 9].map(probeTimeoutMs)).toEqual([1000, 2000, 3000, 5000, 5000]);
  });
});
