export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

/**
 * Delay before attempt `attempt + 1` after `attempt` failures (1, 2, …): exponential from
 * `baseMs`, capped at `capMs`, with "equal jitter" (half fixed, half random) so that receivers
 * coming back from an outage are not hit by every sender at the same instant, while the delay
 * still grows with each failure.
 */
export function backoffMs(attempt: number, opts: BackoffOptions, random: () => number = Math.random): number {
  const exp = Math.min(opts.capMs, opts.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
