import type { AssessmentObject } from './assessments.ts';
import type { SubmissionObject } from './grading.ts';
import type { SandboxRequestLog } from './request-log.ts';

/**
 * Integrity signals of one assessment for a reviewer: what the sandbox gateway saw
 * (status.signals, written by the gateway), when the first answer came, and how the candidate used
 * the data API. Signals to look at, never verdicts: nothing here changes a grade or refuses anyone.
 */

/** How the candidate used their data API sandboxes (from each one's reviewer log). */
export interface DataApiUsage {
  /** Whether every data API answered (its log lives in the sandbox: gone once the namespace is). */
  available: boolean;
  /** The candidate's authenticated calls since the data API started. */
  calls: number;
  firstCallAt: string | null;
  lastCallAt: string | null;
  /** Calls answered 4xx/5xx among those still in the log (the log keeps the most recent). */
  errorResponses: number;
}

/** A flag the page words (EN/FR): a code and the number it is about. */
export interface SignalFlag {
  code: 'clientAddresses' | 'concurrentSessions' | 'firstAnswerAfter' | 'dataApiCalls';
  value: number;
}

export interface IntegritySignals {
  firstConnectionAt: string | null;
  /** Logged-in connections through the gateway. */
  connections: number;
  /** The first 16 distinct client addresses (deleted with the assessment). */
  clientAddresses: string[];
  /** Distinct client addresses, counted up to 64. */
  clientAddressCount: number;
  maxConcurrentSessions: number;
  sandboxes: Array<{ name: string; connections: number }>;
  firstAnswerAt: string | null;
  /** From the first connection through the gateway to the first answer submitted. */
  secondsToFirstAnswer: number | null;
  /** Read from the sandboxes when asked (a single scorecard with ?dataApi=true); null otherwise. */
  dataApi: DataApiUsage | null;
  flags: SignalFlag[];
}

/** Pure: a data API's reviewer logs summed up. */
export function dataApiUsage(logs: SandboxRequestLog[]): DataApiUsage {
  let calls = 0;
  let errorResponses = 0;
  const times: string[] = [];
  for (const log of logs) {
    const items = log.items;
    const last = items.at(-1);
    // seq numbers the candidate's calls from 1: the last one is how many there were, even once
    // the bounded log has dropped the oldest.
    calls += typeof last?.seq === 'number' && last.seq > 0 ? last.seq : items.length;
    for (const item of items) {
      if (typeof item.status === 'number' && item.status >= 400) errorResponses += 1;
      if (typeof item.time === 'string') times.push(item.time);
    }
  }
  times.sort();
  return {
    available: logs.length > 0 && logs.every((l) => l.available),
    calls,
    firstCallAt: times[0] ?? null,
    lastCallAt: times.at(-1) ?? null,
    errorResponses,
  };
}

/** Pure: the signals of one assessment from its status, its submissions and its data API usage. */
export function integritySignals(
  a: AssessmentObject,
  submissions: SubmissionObject[],
  dataApi: DataApiUsage | null,
): IntegritySignals {
  const seen = a.status?.signals ?? {};
  const firstConnectionAt = seen.firstConnectionAt ?? null;
  const firstAnswerAt = submissions.map((s) => s.spec.submittedAt).sort()[0] ?? null;
  const gap =
    firstConnectionAt && firstAnswerAt
      ? (Date.parse(firstAnswerAt) - Date.parse(firstConnectionAt)) / 1000
      : NaN;
  // An answer before any connection (from the page's console) has no such delay: null, not negative.
  const secondsToFirstAnswer = Number.isFinite(gap) && gap >= 0 ? Math.round(gap) : null;
  const clientAddressCount = seen.clientAddressCount ?? seen.clientAddresses?.length ?? 0;
  const maxConcurrentSessions = seen.maxConcurrent ?? 0;
  const flags: SignalFlag[] = [];
  if (clientAddressCount > 1) flags.push({ code: 'clientAddresses', value: clientAddressCount });
  if (maxConcurrentSessions > 1) flags.push({ code: 'concurrentSessions', value: maxConcurrentSessions });
  if (secondsToFirstAnswer !== null) flags.push({ code: 'firstAnswerAfter', value: secondsToFirstAnswer });
  if (dataApi?.available) flags.push({ code: 'dataApiCalls', value: dataApi.calls });
  return {
    firstConnectionAt,
    connections: seen.connections ?? 0,
    clientAddresses: seen.clientAddresses ?? [],
    clientAddressCount,
    maxConcurrentSessions,
    sandboxes: seen.sandboxes ?? [],
    firstAnswerAt,
    secondsToFirstAnswer,
    dataApi,
    flags,
  };
}
