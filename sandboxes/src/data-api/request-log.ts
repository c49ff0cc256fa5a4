/**
 * The request log reviewers read through /admin/requests: a fixed-size ring buffer of entries,
 * and the URL redaction that keeps API keys out of it (and out of the log lines).
 */
import type { Corruption } from './faults.ts';
import { SENSITIVE_PARAM } from './pagination.ts';

export class RingBuffer<T> {
  private readonly items: T[] = [];
  private head = 0; // index of the oldest item once full
  readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.head] = item;
      this.head = (this.head + 1) % this.capacity;
    }
  }

  /** Oldest first. */
  toArray(): T[] {
    return [...this.items.slice(this.head), ...this.items.slice(0, this.head)];
  }
}

export interface LoggedRequest {
  seq: number;
  time: string;
  method: string;
  path: string;
  status: number;
  duration_ms: number;
  /** Which credential the request carried: `null` on public endpoints. */
  auth: 'ok' | 'missing' | 'invalid' | null;
  fault: LoggedFault | null;
  client: string;
}
export type LoggedFault =
  | { kind: 'error'; status: number }
  | { kind: 'slow'; delay_ms: number }
  | { kind: 'malformed'; rows: Array<{ id: unknown } & Corruption> };

/**
 * The URL as logged: values of secret-looking query parameters and every occurrence of a known
 * secret (raw or percent-encoded) are replaced, so a key sent as ?api_key=… never reaches a log.
 */
export function redactUrl(url: string, secrets: readonly string[]): string {
  let out = url;
  const q = out.indexOf('?');
  if (q >= 0) {
    const query = out
      .slice(q + 1)
      .split('&')
      .map((part) => {
        const eq = part.indexOf('=');
        if (eq < 0) return part;
        let name = part.slice(0, eq);
        try {
          name = decodeURIComponent(name.replace(/\+/g, ' '));
        } catch {}
        return SENSITIVE_PARAM.test(name) ? `${part.slice(0, eq)}=REDACTED` : part;
      })
      .join('&');
    out = `${out.slice(0, q)}?${query}`;
  }
  for (const s of secrets) {
    if (!s) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('REDACTED');
  }
  return out.length > 2000 ? `${out.slice(0, 2000)}…` : out;
}
