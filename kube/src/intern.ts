/**
 * One copy of each repeated string a cache holds (namespaces, label values): JSON.parse makes a
 * new string for every value it reads, so a cache of thousands of objects otherwise holds as many
 * copies of `epreuve`, of each namespace's name, of each sandbox's. Bounded: past `max` distinct
 * strings the pool starts over (the strings already shared stay shared; namespaces deleted long
 * ago stop being held).
 */
export class StringPool {
  private readonly pool = new Map<string, string>();
  private readonly max: number;

  constructor(max = 50_000) {
    this.max = max;
  }

  /** The pool's copy of `s` (itself, the first time it is seen). */
  intern(s: string): string {
    const shared = this.pool.get(s);
    if (shared !== undefined) return shared;
    if (this.pool.size >= this.max) this.pool.clear();
    this.pool.set(s, s);
    return s;
  }

  /** A copy of `record` whose values (and keys) are the pool's strings. */
  internValues(record: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(record)) out[this.intern(k)] = this.intern(v);
    return out;
  }

  get size(): number {
    return this.pool.size;
  }
}
