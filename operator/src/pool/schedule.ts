import { POOL_DAYS, type Pool, type PoolWindow } from '@epreuve/crds';

/**
 * A pool's schedule (office hours): which min and max hold at an instant, and when that next
 * changes. Pure functions of the spec and the clock; the time zone's rules (daylight saving time)
 * come from the runtime's ICU data through Intl, so no date library is needed.
 */
export interface PoolSize {
  min: number;
  max: number | undefined;
  /** The open window, as `Mon,Tue 08:00–18:00`, when one is. */
  window?: string;
}

/** Formatters are costly to build and cheap to use: one per time zone. */
const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether the runtime knows this IANA time zone. */
export function knownTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The weekday (0 = Monday) and minute of the day at `at`, in `timeZone`. */
export function localTime(at: Date, timeZone: string): { day: number; minute: number } {
  const parts = formatter(timeZone).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  const day = POOL_DAYS.indexOf(get('weekday') as (typeof POOL_DAYS)[number]);
  return { day, minute: Number(get('hour')) * 60 + Number(get('minute')) };
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Whether `w` is open at local `day`/`minute` (a window past midnight belongs to the day it opened). */
export function isOpen(w: PoolWindow, t: { day: number; minute: number }): boolean {
  const from = minutes(w.from);
  const to = minutes(w.to);
  const on = (d: number) => w.days.includes(POOL_DAYS[(d + 7) % 7]!);
  if (from < to) return on(t.day) && t.minute >= from && t.minute < to;
  return (on(t.day) && t.minute >= from) || (on(t.day - 1) && t.minute < to);
}

/** The pool's min and max at `at`: the first open window's, else the pool's own. */
export function poolSizeAt(pool: Pool, at: Date): PoolSize {
  const zone = pool.timeZone ?? 'UTC';
  if (!pool.schedule?.length || !knownTimeZone(zone)) return { min: pool.min, max: pool.max };
  const t = localTime(at, zone);
  const w = pool.schedule.find((x) => isOpen(x, t));
  if (!w) return { min: pool.min, max: pool.max };
  return { min: w.min, max: w.max ?? pool.max, window: `${w.days.join(',')} ${w.from}–${w.to}` };
}

/**
 * When the pool's size next changes after `now`, looking a day ahead minute by minute (1 440
 * cheap steps): the pool controller comes back then. Undefined without a change within the day;
 * a pool is reconciled again well before that anyway.
 */
export function nextSizeChange(pool: Pool, now: Date): Date | undefined {
  if (!pool.schedule?.length) return undefined;
  const current = poolSizeAt(pool, now);
  const start = Math.floor(now.getTime() / 60_000) * 60_000;
  for (let i = 1; i <= 1440; i++) {
    const at = new Date(start + i * 60_000);
    const size = poolSizeAt(pool, at);
    if (size.min !== current.min || size.max !== current.max) return at;
  }
  return undefined;
}
