import { type CloudEvent, parseDeliveryLog, type WebhookDelivery } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import { addEvents, dueDeliveries, nextDueInMs, recordAttempt, redeliver, trim } from './log.ts';

const now = new Date('2026-02-01T10:00:00Z');
const policy = { size: 3, maxAttempts: 3, baseMs: 1000, capMs: 60_000 };
const event = (id: string): CloudEvent => ({
  specversion: '1.0',
  id,
  source: '/teams/t',
  type: 'dev.epreuve.assessment.ready.v1',
  subject: 'assessments/a',
  time: now.toISOString(),
  datacontenttype: 'application/json',
  data: { team: 't', assessment: 'a', template: 'x' },
});

describe('webhook delivery log', () => {
  it('adds each event once, due now', () => {
    const log: WebhookDelivery[] = [];
    expect(addEvents(log, [event('a'), event('a'), event('b')], now)).toEqual(['a', 'b']);
    expect(addEvents(log, [event('a')], now)).toEqual([]);
    expect(dueDeliveries(log, now).map((d) => d.id)).toEqual(['a', 'b']);
  });

  it('retries with backoff, then gives up after maxAttempts; a 2xx delivers', () => {
    const log: WebhookDelivery[] = [];
    addEvents(log, [event('a'), event('b')], now);
    const [a, b] = log as [WebhookDelivery, WebhookDelivery];
    recordAttempt(a, { at: now.toISOString(), status: 500, ms: 3 }, policy, now, () => 1);
    expect(a).toMatchObject({ state: 'pending', attempts: 1, nextAttemptAt: '2026-02-01T10:00:01.000Z' });
    expect(nextDueInMs(log, now)).toBe(0); // b is still due now
    recordAttempt(b, { at: now.toISOString(), status: 204, ms: 3 }, policy, now);
    expect(b).toMatchObject({ state: 'delivered', attempts: 1, nextAttemptAt: undefined });
    expect(nextDueInMs(log, now)).toBe(1000);
    recordAttempt(
      a,
      { at: now.toISOString(), error: 'no answer within 10 ms', ms: 10 },
      policy,
      now,
      () => 1,
    );
    expect(a.nextAttemptAt).toBe('2026-02-01T10:00:02.000Z');
    recordAttempt(
      a,
      { at: now.toISOString(), status: 302, error: 'redirects are not followed', ms: 1 },
      policy,
      now,
    );
    expect(a).toMatchObject({ state: 'failed', attempts: 3, nextAttemptAt: undefined });
    expect(a.history.map((h) => h.status ?? h.error)).toEqual([500, 'no answer within 10 ms', 302]);
    expect(nextDueInMs(log, now)).toBeUndefined();
  });

  it('keeps the last attempts only', () => {
    const log: WebhookDelivery[] = [];
    addEvents(log, [event('a')], now);
    for (let i = 0; i < 8; i++)
      recordAttempt(
        log[0]!,
        { at: now.toISOString(), status: 500 + i, ms: 1 },
        { ...policy, maxAttempts: 50 },
        now,
      );
    expect(log[0]!.history.map((h) => h.status)).toEqual([503, 504, 505, 506, 507]);
  });

  it('redelivers with the same id and body and a fresh attempt budget', () => {
    const log: WebhookDelivery[] = [];
    addEvents(log, [event('a')], now);
    recordAttempt(log[0]!, { at: now.toISOString(), status: 200, ms: 1 }, policy, now);
    const body = JSON.stringify(log[0]!.event);
    redeliver(log, ['a', 'unknown'], now);
    expect(log[0]).toMatchObject({ state: 'pending', attempts: 0, redeliveries: 1, id: 'a' });
    expect(JSON.stringify(log[0]!.event)).toBe(body);
    expect(dueDeliveries(log, now)).toHaveLength(1);
  });

  it('is bounded: oldest finished deliveries go first, pending ones last', () => {
    const log: WebhookDelivery[] = [];
    addEvents(log, ['a', 'b', 'c', 'd', 'e'].map(event), now);
    recordAttempt(log[1]!, { at: now.toISOString(), status: 200, ms: 1 }, policy, now);
    recordAttempt(log[3]!, { at: now.toISOString(), status: 200, ms: 1 }, policy, now);
    const { log: kept, dropped } = trim(log, 3);
    expect(dropped).toBe(2);
    expect(kept.map((d) => d.id)).toEqual(['a', 'c', 'e']);
    const all = trim(kept, 1);
    expect(all.log.map((d) => d.id)).toEqual(['e']);
    expect(trim(all.log, 5)).toEqual({ log: all.log, dropped: 0 });
  });

  it('reads a damaged log as empty rather than stopping delivery', () => {
    expect(parseDeliveryLog(undefined)).toEqual([]);
    expect(parseDeliveryLog('{not json')).toEqual([]);
    expect(parseDeliveryLog('[{"id": 1}]')).toEqual([]);
    const log: WebhookDelivery[] = [];
    addEvents(log, [event('a')], now);
    expect(parseDeliveryLog(JSON.stringify(log))).toEqual(log);
  });
});
