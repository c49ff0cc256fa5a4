import { inject } from 'vitest';

/**
 * What every e2e suite does with the platform on the real node: call its API as a client from this
 * machine would (the NodePort, the staff API key by default), and wait for something to hold.
 */
export type Json = Record<string, any>;

const { apiUrl, apiKey } = inject('e2e');

/** One API call; the body parsed when there is one. */
export async function api(method: string, path: string, o: { token?: string; body?: unknown } = {}) {
  const res = await fetch(`${apiUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${o.token ?? apiKey}`,
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: o.body !== undefined ? JSON.stringify(o.body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Json };
}

/** `fn`'s first value that is neither undefined nor false, polled every `intervalMs`; says what it waited for. */
export async function eventually<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  timeoutMs = 300_000,
  intervalMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
}
