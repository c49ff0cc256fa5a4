/**
 * Which logins in progress (connections routed to a sandbox, not logged in yet) make room for a
 * new one, under a per-sandbox total cap. Pure, over plain records, so the choice is tested alone.
 *
 * The per-address cap (server.ts) bounds one address; this bounds many: an attacker with N
 * addresses could otherwise hold N × the per-address cap of logins open against one sandbox. Room
 * is taken from the address holding the most logins in progress (the newcomer's own counted), its
 * oldest first; among addresses holding as many, the oldest connection goes. So:
 * - logged-in connections are never in the list: a candidate's sessions are never evicted;
 * - the newcomer is never evicted on arrival: a candidate's new login always starts;
 * - an address with few logins in progress (the candidate's one or two) loses them last: an
 *   attacker must open, from addresses holding none, as many connections as the cap within the
 *   candidate's login (a few round trips) to push it out, and each costs a TLS handshake.
 */
export interface Waiting {
  /** The client's address. */
  client: string;
}

/**
 * The connections to cut so that `waiting` (oldest first) plus one newcomer from `newcomer` fits
 * in `cap` (≥ 1): none when it already fits.
 */
export function pendingToEvict<T extends Waiting>(waiting: readonly T[], newcomer: string, cap: number): T[] {
  const left = [...waiting];
  const evicted: T[] = [];
  while (left.length + 1 > cap && left.length > 0) {
    const counts = new Map<string, number>([[newcomer, 1]]);
    for (const c of left) counts.set(c.client, (counts.get(c.client) ?? 0) + 1);
    let victim = 0;
    // Oldest first, so on a tie the first seen (the oldest connection) stays the victim.
    for (let i = 1; i < left.length; i++) {
      if (counts.get(left[i]!.client)! > counts.get(left[victim]!.client)!) victim = i;
    }
    evicted.push(...left.splice(victim, 1));
  }
  return evicted;
}
