import {
  type CheckRequest,
  type ConsoleRequest,
  type ConsoleResponse,
  consoleFailure,
  consoleResponse,
  GRADER,
  type GradeRequest,
  type GradeResponse,
  gradeResponse,
} from '@epreuve/crds';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';

const tracer = trace.getTracer('epreuve-grader-client');

/**
 * The API's side of the grader contract: it relays an answer to the grader in the candidate's
 * namespace and returns its verdict. The answer never runs in the API process, so an answer that
 * exhausts memory or time costs that candidate's grader, never the API.
 */
export type GraderOutcome =
  | { kind: 'graded'; result: GradeResponse }
  /** The grader could not grade now (restarting, busy, its database down): the candidate retries. */
  | { kind: 'unavailable'; reason: string; retryAfterSeconds: number }
  /** The grader refused the request itself (a reference that does not run, a stale token…). */
  | { kind: 'refused'; status: number; reason: string };

/** A console run's outcome: its result, the statement's own failure, or the grader's as above. */
export type ConsoleOutcome =
  | { kind: 'ran'; result: ConsoleResponse }
  /** The statement failed (syntax, permission, time, size): said for the candidate, with where. */
  | { kind: 'failed'; reason: string; message: string; messageFr?: string; position?: number }
  | Exclude<GraderOutcome, { kind: 'graded' }>;

/** A reply as received, before it is read as an outcome. */
interface Reply {
  status: number;
  text: string;
  retryAfterSeconds: number;
}

export interface GraderClientOptions {
  /** The grader's token, read from the namespace's grader Secret. */
  token: (namespace: string) => Promise<string | undefined>;
  /** Base URL of a namespace's grader; by default its in-cluster Service. */
  baseUrl?: (namespace: string) => string;
  /** Give up on one answer after this long (the grader's own limits end it well before). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export class GraderClient {
  private readonly o: Required<GraderClientOptions>;

  constructor(o: GraderClientOptions) {
    this.o = {
      baseUrl: (ns) => `http://${GRADER.name}.${ns}.svc:${GRADER.port}`,
      // Past the grader's worst case for an answer (grade server: worstCaseMs): 2 hidden variants
      // under the default 5 s limit run at most 3 × 2 × 7 s, and a queued answer may wait 15 s.
      timeoutMs: 60_000,
      fetch: globalThis.fetch,
      ...o,
    };
  }

  /** One grading call, as a client span (a child of the request's) whose context goes to the grader. */
  grade(namespace: string, request: GradeRequest): Promise<GraderOutcome> {
    return this.traced(namespace, '/v1/grade', request);
  }

  /** A check task's checks, run by the grader on the candidate's work area; the same outcomes. */
  check(namespace: string, request: CheckRequest): Promise<GraderOutcome> {
    return this.traced(namespace, '/v1/check', request);
  }

  /** A console run (POST /v1/run): the candidate's statement, run by the grader as the candidate. */
  run(namespace: string, request: ConsoleRequest): Promise<ConsoleOutcome> {
    return this.span(namespace, '/v1/run', request.sandbox, async () => {
      const res = await this.post(namespace, '/v1/run', request);
      if ('kind' in res) return res;
      const body = safeJson(res.text) as { detail?: string } | undefined;
      if (res.status === 200) {
        const parsed = consoleResponse.safeParse(body);
        if (parsed.success) return { kind: 'ran', result: parsed.data };
      } else if (res.status === 422) {
        const failure = consoleFailure.safeParse(body);
        if (failure.success)
          return {
            kind: 'failed',
            reason: failure.data.reason,
            message: body?.detail ?? failure.data.reason,
            ...(failure.data.detailFr !== undefined && { messageFr: failure.data.detailFr }),
            ...(failure.data.position !== undefined && { position: failure.data.position }),
          };
      }
      return notRan(res);
    });
  }

  private traced(
    namespace: string,
    path: '/v1/grade' | '/v1/check',
    request: GradeRequest | CheckRequest,
  ): Promise<GraderOutcome> {
    return this.span(namespace, path, request.sandbox, async () => {
      const res = await this.post(namespace, path, request);
      if ('kind' in res) return res;
      if (res.status === 200) {
        const parsed = gradeResponse.safeParse(safeJson(res.text));
        if (parsed.success) return { kind: 'graded', result: parsed.data };
      }
      return notRan(res);
    });
  }

  /** One call as a client span (a child of the request's) whose context goes to the grader. */
  private span<T extends { kind: string; reason?: string }>(
    namespace: string,
    path: string,
    sandbox: string,
    f: () => Promise<T>,
  ): Promise<T> {
    return tracer.startActiveSpan(
      `grader POST ${path}`,
      { kind: SpanKind.CLIENT, attributes: { 'epreuve.namespace': namespace, 'epreuve.sandbox': sandbox } },
      async (span) => {
        try {
          const outcome = await f();
          span.setAttribute('epreuve.grader.outcome', outcome.kind);
          if (outcome.kind === 'unavailable' || outcome.kind === 'refused')
            span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.reason });
          return outcome;
        } finally {
          span.end();
        }
      },
    );
  }

  private async post(
    namespace: string,
    path: string,
    request: GradeRequest | CheckRequest | ConsoleRequest,
  ): Promise<Reply | Extract<GraderOutcome, { kind: 'unavailable' }>> {
    const token = await this.o.token(namespace);
    if (!token) return { kind: 'unavailable', reason: 'the grader is not set up yet', retryAfterSeconds: 5 };
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      // The grader refuses, before running anything, what it could not finish before this timeout.
      [GRADER.waitHeader]: String(this.o.timeoutMs),
    };
    propagation.inject(context.active(), headers);
    let res: Response;
    try {
      res = await this.o.fetch(`${this.o.baseUrl(namespace)}${path}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
    } catch (err) {
      const reason =
        (err as Error).name === 'TimeoutError'
          ? 'the grader did not answer in time'
          : 'the grader is not reachable (it may be restarting)';
      return { kind: 'unavailable', reason, retryAfterSeconds: 5 };
    }
    const retryAfterSeconds = Number(res.headers.get('retry-after')) || 5;
    const text = await readCapped(res, MAX_REPLY_BYTES);
    if (text === undefined)
      return {
        kind: 'unavailable',
        reason: `the grader's reply was larger than ${MAX_REPLY_BYTES >> 20} MiB`,
        retryAfterSeconds,
      };
    return { status: res.status, text, retryAfterSeconds };
  }
}

/**
 * Most bytes of one grader reply the API reads. A grader bounds what it returns (a console run's
 * JSON, a grade's texts), but the API is shared by every candidate: one reply never holds more of
 * its memory than this, whatever the grader in a candidate's namespace sends.
 */
export const MAX_REPLY_BYTES = 8 << 20;

/** The body as text, or undefined past `max` bytes (the rest is not read; the stream is cancelled). */
export async function readCapped(res: Response, max: number): Promise<string | undefined> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Any reply that is not the call's result: the grader could not, or would not, run it. */
function notRan(res: Reply): Exclude<GraderOutcome, { kind: 'graded' }> {
  const { retryAfterSeconds } = res;
  if (res.status === 200)
    return { kind: 'unavailable', reason: 'the grader answered something unexpected', retryAfterSeconds };
  const detail = (safeJson(res.text) as { detail?: string } | undefined)?.detail;
  if (res.status === 429 || res.status === 503)
    return { kind: 'unavailable', reason: detail ?? 'the grader is busy', retryAfterSeconds };
  // A sandbox the grader does not know yet: its plan lags the template (a rollout in progress).
  if (res.status === 404)
    return {
      kind: 'unavailable',
      reason: detail ?? 'the grader does not grade this sandbox yet',
      retryAfterSeconds,
    };
  // The API's or the template's mistakes (a stale token, a reference that does not run): staff's to fix.
  return { kind: 'refused', status: res.status, reason: detail ?? `the grader answered ${res.status}` };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
