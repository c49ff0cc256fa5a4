import { describe, expect, it } from 'vitest';
import { assessmentStatus } from './assessment.ts';
import {
  mergeSignals,
  SIGNALS_COUNTED_ADDRESSES,
  SIGNALS_KEPT_ADDRESSES,
  type SignalsDelta,
} from './signals.ts';

const delta = (over: Partial<SignalsDelta> = {}): SignalsDelta => ({
  connections: 1,
  maxConcurrent: 1,
  addresses: ['10.0.0.1'],
  sandboxes: { warehouse: 1 },
  firstConnectionAt: '2026-11-30T10:00:00.000Z',
  lastConnectionAt: '2026-11-30T10:00:00.000Z',
  ...over,
});

describe('mergeSignals', () => {
  it('starts from nothing', () => {
    expect(mergeSignals(undefined, delta())).toEqual({
      firstConnectionAt: '2026-11-30T10:00:00.000Z',
      lastConnectionAt: '2026-11-30T10:00:00.000Z',
      connections: 1,
      maxConcurrent: 1,
      clientAddresses: ['10.0.0.1'],
      clientAddressCount: 1,
      sandboxes: [{ name: 'warehouse', connections: 1 }],
    });
  });

  it('adds counts, keeps the earliest first and latest last, and never lowers the maximum', () => {
    const stored = mergeSignals(undefined, delta({ maxConcurrent: 3, connections: 4 }));
    const next = mergeSignals(
      stored,
      delta({
        maxConcurrent: 2,
        connections: 2,
        addresses: ['10.0.0.1', '10.0.0.2'],
        sandboxes: { warehouse: 1, events: 1 },
        firstConnectionAt: '2026-11-30T11:00:00.000Z',
        lastConnectionAt: '2026-11-30T11:05:00.000Z',
      }),
    );
    expect(next).toMatchObject({
      firstConnectionAt: '2026-11-30T10:00:00.000Z',
      lastConnectionAt: '2026-11-30T11:05:00.000Z',
      connections: 6,
      maxConcurrent: 3,
      clientAddresses: ['10.0.0.1', '10.0.0.2'],
      clientAddressCount: 2,
      sandboxes: [
        { name: 'events', connections: 1 },
        { name: 'warehouse', connections: 2 },
      ],
    });
  });

  it('keeps at most 16 addresses, counts up to 64, and the count never goes down', () => {
    const many = Array.from({ length: 100 }, (_, i) => `10.0.${Math.floor(i / 256)}.${i % 256}`);
    const big = mergeSignals(undefined, delta({ addresses: many }));
    expect(big.clientAddresses).toHaveLength(SIGNALS_KEPT_ADDRESSES);
    expect(big.clientAddressCount).toBe(SIGNALS_COUNTED_ADDRESSES);
    // A restarted gateway that has seen only two addresses does not erase the count.
    const after = mergeSignals(
      { ...big, clientAddressCount: 20 },
      delta({ addresses: ['192.0.2.1', '192.0.2.2'] }),
    );
    expect(after.clientAddressCount).toBe(20);
    expect(after.clientAddresses).toEqual(big.clientAddresses);
    // And what it writes is valid for the CRD's schema (bounded lists, bounded count).
    expect(assessmentStatus.safeParse({ signals: big }).success).toBe(true);
  });

  it('the schema refuses an unbounded address list', () => {
    const addresses = Array.from({ length: SIGNALS_KEPT_ADDRESSES + 1 }, (_, i) => `10.0.0.${i}`);
    const res = assessmentStatus.safeParse({ signals: { clientAddresses: addresses } });
    expect(res.success).toBe(false);
    expect(res.error?.issues[0]?.path).toEqual(['signals', 'clientAddresses']);
  });
});
