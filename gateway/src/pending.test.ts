import { describe, expect, it } from 'vitest';
import { pendingToEvict } from './pending.ts';

/** Logins in progress, oldest first: `a1` is the first from address `a`. */
const waiting = (...ids: string[]) => ids.map((id) => ({ id, client: id.replace(/\d+$/, '') }));
const evict = (list: ReturnType<typeof waiting>, newcomer: string, cap: number) =>
  pendingToEvict(list, newcomer, cap).map((c) => c.id);

describe('pendingToEvict', () => {
  it('cuts nothing while the newcomer fits', () => {
    expect(evict(waiting('a1', 'b1'), 'c', 3)).toEqual([]);
    expect(evict([], 'c', 1)).toEqual([]);
  });

  it('takes room from the address holding the most, its oldest first', () => {
    expect(evict(waiting('b1', 'a1', 'a2', 'a3', 'c1'), 'd', 5)).toEqual(['a1']);
  });

  it('counts the newcomer’s own: an address already holding the most makes room from itself', () => {
    expect(evict(waiting('b1', 'a1', 'a2', 'c1'), 'a', 4)).toEqual(['a1']);
  });

  it('on a tie cuts the oldest connection, never the newcomer', () => {
    // Every address holds one (an attacker with many addresses): the oldest goes.
    expect(evict(waiting('x1', 'y1', 'k1', 'z1'), 'w', 4)).toEqual(['x1']);
    // The candidate's k1 is the oldest of the tied: it goes, but their newcomer is admitted.
    expect(evict(waiting('k1', 'x1', 'y1', 'z1'), 'k', 4)).toEqual(['k1']);
  });

  it('keeps the candidate’s one login while many addresses flood theirs', () => {
    // The candidate (k) started logging in first; 3 attacker addresses hold 3 each (cap 10).
    let list = waiting('k1', 'x1', 'x2', 'x3', 'y1', 'y2', 'y3', 'z1', 'z2');
    for (const [i, from] of ['x', 'y', 'z', 'x', 'y', 'z'].entries()) {
      const cut = new Set(pendingToEvict(list, from, 10));
      list = [...list.filter((c) => !cut.has(c)), { id: `${from}${10 + i}`, client: from }];
      expect(list.map((c) => c.id)).toContain('k1');
      expect(list.length).toBeLessThanOrEqual(10);
    }
  });

  it('cuts as many as needed to fit a smaller cap', () => {
    expect(evict(waiting('a1', 'a2', 'b1', 'a3'), 'c', 2)).toEqual(['a1', 'a2', 'b1']);
  });
});
