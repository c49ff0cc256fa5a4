import { assessmentTemplateSpec, LABELS } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import { desiredObjects } from '../assessment/desired.ts';
import { context, template } from '../assessment/fixtures.test-helpers.ts';
import { loadConfig } from '../config.ts';
import { rotatedCredentials, rotateJob } from './claim.ts';
import {
  BACKOFF_CAP_MS,
  backoffMs,
  claimedNamespace,
  type Member,
  memberContext,
  NAMESPACE_INDEXES,
  planPool,
  templateHash,
} from './members.ts';

const NOW = new Date('2026-11-30T12:00:00Z');
const pooled = (pool: Record<string, number> | undefined, status?: Record<string, unknown>) => {
  const t = template(pool ? { pool } : {});
  if (status) t.status = { pool: status as never };
  return t;
};
let n = 0;
const member = (over: Partial<Member> = {}): Member => ({
  name: `m${++n}`,
  createdAt: NOW.getTime() - 60_000 + n,
  stale: false,
  observed: 'ready',
  labelledReady: true,
  ...over,
});

describe('planPool', () => {
  it('builds up to min', () => {
    const plan = planPool(pooled({ min: 3 }), [member()], 0, NOW);
    expect(plan.create).toBe(2);
    expect(plan.remove).toEqual([]);
    expect(plan.status).toEqual({ desired: 3, ready: 1, building: 2, claimed: 0 });
  });

  it('never builds past max, and removes members above it, building and newest first', () => {
    expect(planPool(pooled({ min: 3, max: 3 }), [member(), member()], 0, NOW).create).toBe(1);
    const old = member({ createdAt: 1 });
    const newer = member({ createdAt: 2 });
    const building = member({ createdAt: 0, observed: 'building', labelledReady: false });
    const plan = planPool(pooled({ min: 1, max: 1 }), [old, newer, building], 0, NOW);
    expect(plan.remove.map((r) => [r.member.name, r.reason])).toEqual([
      [building.name, 'OverMax'],
      [newer.name, 'OverMax'],
    ]);
    expect(plan.create).toBe(0);
  });

  it('keeps healthy members above a lowered min when no max is set', () => {
    const plan = planPool(pooled({ min: 1 }), [member(), member(), member()], 0, NOW);
    expect(plan.remove).toEqual([]);
    expect(plan.create).toBe(0);
    expect(plan.status).toMatchObject({ desired: 1, ready: 3 });
  });

  it('replaces stale members at once', () => {
    const plan = planPool(pooled({ min: 2 }), [member({ stale: true }), member()], 0, NOW);
    expect(plan.remove.map((r) => r.reason)).toEqual(['Stale']);
    expect(plan.create).toBe(1);
  });

  it('replaces a failed build after a backoff, and counts it', () => {
    const failed = member({ observed: 'failed', labelledReady: false });
    const plan = planPool(pooled({ min: 2 }), [failed, member()], 0, NOW);
    expect(plan.remove.map((r) => r.reason)).toEqual(['Failed']);
    expect(plan.create).toBe(0);
    expect(plan.requeueAfterMs).toBe(10_000);
    expect(plan.status).toMatchObject({ failedBuilds: 1, lastFailureTime: '2026-11-30T12:00:00Z' });
  });

  it('backs off after failed builds in a row, doubling up to a cap', () => {
    expect([1, 2, 3].map(backoffMs)).toEqual([10_000, 20_000, 40_000]);
    expect(backoffMs(30)).toBe(BACKOFF_CAP_MS);
    const t = pooled({ min: 2 }, { failedBuilds: 2, lastFailureTime: '2026-11-30T11:59:50Z' });
    const plan = planPool(t, [], 0, NOW);
    expect(plan.create).toBe(0);
    expect(plan.requeueAfterMs).toBe(10_000);
    expect(plan.status.message).toMatch(
      /2 build\(s\) failed in a row; the next starts at 2026-11-30T12:00:10/,
    );
    // Once the wait is over, it builds again.
    expect(planPool(t, [], 0, new Date('2026-11-30T12:00:11Z')).create).toBe(2);
  });

  it('ends a run of failures when a member becomes ready', () => {
    const t = pooled({ min: 1 }, { failedBuilds: 4, lastFailureTime: '2026-11-30T11:59:59Z' });
    const plan = planPool(t, [member({ labelledReady: false })], 0, NOW);
    expect(plan.status.failedBuilds).toBeUndefined();
    expect(plan.markReady).toHaveLength(1);
  });

  it('removes every unclaimed member when the pool or the template goes', () => {
    const members = [member(), member({ observed: 'building' })];
    for (const t of [pooled(undefined), undefined]) {
      const plan = planPool(t, members, 1, NOW);
      expect(plan.remove.map((r) => r.reason)).toEqual(['PoolRemoved', 'PoolRemoved']);
      expect(plan.create).toBe(0);
    }
    const deleting = pooled({ min: 2 });
    deleting.metadata.deletionTimestamp = '2026-11-30T11:00:00Z';
    expect(planPool(deleting, members, 0, NOW).remove).toHaveLength(2);
  });
});

describe('templateHash', () => {
  it('ignores the pool block and key order, and changes with the rest of the spec', () => {
    const t = template();
    expect(templateHash(pooled({ min: 1 }))).toBe(templateHash(t));
    expect(templateHash(pooled({ min: 5, max: 9 }))).toBe(templateHash(t));
    const reordered = { ...t, spec: Object.fromEntries(Object.entries(t.spec).reverse()) } as typeof t;
    expect(templateHash(reordered)).toBe(templateHash(t));
    expect(templateHash(template({ duration: '3h' }))).not.toBe(templateHash(t));
  });
});

describe('pool schema', () => {
  it('refuses min above max and sizes out of range, naming the field', () => {
    const base = template().spec;
    expect(() => assessmentTemplateSpec.parse({ ...base, pool: { min: -1 } })).toThrow(/min/);
    expect(() => assessmentTemplateSpec.parse({ ...base, pool: { min: 51 } })).toThrow(/min/);
    expect(assessmentTemplateSpec.parse({ ...base, pool: { min: 2, max: 4 } }).pool).toEqual({
      min: 2,
      max: 4,
    });
  });
});

describe('member namespaces', () => {
  const config = loadConfig({});

  it('carry the pool labels on every object and the template spec’s hash on the Namespace', () => {
    const ctx = memberContext(template(), config, 'epreuve-pool-abcdef-12345');
    const objs = desiredObjects(ctx);
    const [ns, ...contents] = objs;
    expect(ns!.metadata.labels).toMatchObject({
      [LABELS.pool]: 'data-engineer',
      [LABELS.ownerNamespace]: 'hiring',
      [LABELS.templateHash]: templateHash(template()),
    });
    for (const o of contents) {
      expect(o.metadata.namespace).toBe('epreuve-pool-abcdef-12345');
      expect(o.metadata.labels?.[LABELS.assessment]).toBeUndefined();
      expect(o.metadata.labels?.[LABELS.pool]).toBe('data-engineer');
    }
    expect(NAMESPACE_INDEXES.pool(ns!)).toEqual(['hiring/data-engineer']);
    expect(NAMESPACE_INDEXES.claim(ns!)).toEqual([]);
  });

  it('keep their objects as built once claimed: only the Namespace shows the claim', () => {
    const t = template();
    const built = desiredObjects(memberContext(t, config, 'epreuve-pool-abcdef-12345'));
    const base = context(t);
    const claimed = desiredObjects({
      ...base,
      pooled: claimedNamespace(base.assessment, 'data-engineer', 'epreuve-pool-abcdef-12345'),
    });
    // Same pod templates: a claim restarts nothing.
    expect(claimed.slice(1)).toEqual(built.slice(1));
    expect(claimed[0]!.metadata.labels).toMatchObject({
      [LABELS.assessment]: 'jane-doe',
      [LABELS.poolState]: 'claimed',
    });
    expect(NAMESPACE_INDEXES.claim(claimed[0]!)).toEqual(['hiring/jane-doe']);
  });
});

describe('claim helpers', () => {
  it('rotate the candidate password of each database and the key of each data API, and nothing else', () => {
    let i = 0;
    const patches = rotatedCredentials(template(), (bytes) => Buffer.alloc(bytes, ++i));
    expect(patches.map((p) => [p.secret, p.kind, Object.keys(p.data)])).toEqual([
      ['warehouse-credentials', 'postgres', ['password']],
      ['events-credentials', 'mongo', ['password']],
      ['source-credentials', 'dataApi', ['api-key']],
    ]);
    expect(new Set(patches.map((p) => Object.values(p.data)[0])).size).toBe(3);
  });

  it('run the rotation as the seed Job’s pod with `rotate`, or not at all without a database', () => {
    const job = rotateJob(context()) as unknown as { metadata: { name: string }; spec: Record<string, any> };
    expect(job.metadata.name).toBe('rotate');
    expect(job.spec.template.spec.containers[0].args).toEqual(['rotate']);
    expect(job.spec.template.metadata.labels['app.kubernetes.io/name']).toBe('seeder');
    const apiOnly = template({ sandboxes: [{ name: 'source', dataApi: { dataset: 'retail@1' } }] });
    expect(rotateJob(context(apiOnly))).toBeUndefined();
  });
});
