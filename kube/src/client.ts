import { type Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createInterface } from 'node:readline';
import type { KubeConfig } from '@kubernetes/client-node';
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Credentials, fromKubeConfig, loadCredentials } from './kubeconfig.ts';
import { type ResourceType, resourceFor, resourcePath } from './resources.ts';
import { TokenBucket } from './token-bucket.ts';
import type { KubeList, KubeObject } from './types.ts';

/** A failed API call, with the Status the API server returned. */
export class KubeError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly causes: Array<{ field?: string; message?: string; reason?: string }>;

  constructor(code: number, reason: string, message: string, causes: KubeError['causes'] = []) {
    super(message);
    this.name = 'KubeError';
    this.code = code;
    this.reason = reason;
    this.causes = causes;
  }
}

export const isNotFound = (err: unknown) => err instanceof KubeError && err.code === 404;
export const isConflict = (err: unknown) => err instanceof KubeError && err.code === 409;
export const isGone = (err: unknown) => err instanceof KubeError && err.code === 410;

export interface ClientOptions {
  /** Client-side request budget, as client-go's QPS and burst (controller-runtime: 20 / 30). */
  qps?: number;
  burst?: number;
  userAgent?: string;
  /** Called after every request, for metrics: method, resource plural (or path) and status code. */
  onResponse?: (method: string, resource: string, code: number, seconds: number) => void;
  /**
   * Custom kinds this client creates, applies or updates as whole objects, beside the built-in
   * ones (Épreuve's: `Object.values(KINDS)` from `@epreuve/crds`; this layer knows no kind of its own).
   */
  kinds?: readonly ResourceType[];
  /** Retries of throttled (429), failed (5xx) and reset requests; `false` turns them off. */
  retry?: RetryOptions | false;
  /** Called before each retry, for metrics (client-go's `rest_client_request_retries_total`). */
  onRetry?: (method: string, resource: string, code: number | string, delayMs: number) => void;
  /**
   * A request (watches aside) whose connection stays silent this long fails with ETIMEDOUT, and is
   * retried if idempotent. Default 300 000: undici's headers and body timeouts, which this client
   * used before it moved to node's http.
   */
  requestTimeoutMs?: number;
}

export interface RetryOptions {
  /** Attempts in all, the first included (client-go retries a Retry-After response up to 10 times). */
  maxAttempts?: number;
  /** Exponential backoff without Retry-After: base · 2^retry, capped at maxDelayMs, half of it jittered. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** No retry starts later than this after the first attempt: the error is returned then. */
  maxElapsedMs?: number;
}

const RETRY_DEFAULTS: Required<RetryOptions> = {
  maxAttempts: 10,
  baseDelayMs: 100,
  maxDelayMs: 10_000,
  maxElapsedMs: 30_000,
};

/** Network errors after which the request may or may not have reached the API server. */
const CONNECTION_ERRORS = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT']);

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

export type WatchEvent<T> = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: T };

const tracer = trace.getTracer('epreuve-kube-client');

/**
 * A small REST client: raw JSON in and out, server-side apply done right, one connection pool, a
 * QPS budget. Authentication comes from kubeconfig.ts (client-node only for exec plugins).
 * client-node's typed serializer renames fields (`x-kubernetes-*`, `default`, `enum`) and its
 * object API opens a new connection pool per request; this avoids both.
 */
export class KubeClient {
  private readonly credentials: Credentials;
  private readonly server: string;
  private readonly bucket: TokenBucket;
  private readonly options: ClientOptions;
  private auth?: { headers: Record<string, string>; agent: Agent; at: number };

  /** A client for the pod's service account, or $KUBECONFIG / ~/.kube/config outside a cluster. */
  static fromEnvironment(options: ClientOptions = {}): KubeClient {
    return new KubeClient(loadCredentials(), options);
  }

  /** From credentials (kubeconfig.ts), or a client-node KubeConfig a caller already loaded. */
  constructor(source: Credentials | KubeConfig, options: ClientOptions = {}) {
    this.credentials = 'authenticate' in source ? source : fromKubeConfig(source);
    this.server = this.credentials.server;
    this.options = options;
    this.bucket = new TokenBucket(options.qps ?? 20, options.burst ?? 30);
  }

  /** The REST resource of a kind: one of this client's `kinds`, else a built-in one. */
  resourceOf(apiVersion: string, kind: string): ResourceType {
    return (
      this.options.kinds?.find((k) => k.apiVersion === apiVersion && k.kind === kind) ??
      resourceFor(apiVersion, kind)
    );
  }

  /** Headers and connection pool, refreshed every minute so rotated tokens are picked up. */
  private async authentication() {
    if (!this.auth || Date.now() - this.auth.at > 60_000) {
      const { headers, agent } = await this.credentials.authenticate();
      this.auth = { headers, agent: this.auth?.agent ?? agent, at: Date.now() };
    }
    return this.auth;
  }

  private url(path: string, query: RequestOptions['query'] = {}): string {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  /**
   * One API call, retried as `retry` allows: a 429 (API Priority and Fairness or max-in-flight
   * rejected it, honouring its Retry-After), and — for idempotent requests only — a 5xx or a reset
   * connection, with capped exponential backoff and jitter. Each attempt takes a QPS token.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const resource = resourceOfPath(path);
    return tracer.startActiveSpan(`kube ${method} ${resource}`, { kind: SpanKind.CLIENT }, async (span) => {
      const retry = this.options.retry === false ? { ...RETRY_DEFAULTS, maxAttempts: 1 } : this.retryOptions;
      const firstAt = Date.now();
      try {
        for (let attempt = 1; ; attempt++) {
          await this.bucket.take();
          const started = performance.now();
          let res: IncomingMessage;
          let text: string;
          try {
            const { headers, agent } = await this.authentication();
            const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
            res = await send(this.url(path, opts.query), {
              method,
              agent,
              signal: opts.signal,
              timeoutMs: this.options.requestTimeoutMs ?? 300_000,
              headers: {
                ...headers,
                accept: 'application/json',
                'user-agent': this.options.userAgent ?? 'epreuve',
                ...(body !== undefined
                  ? {
                      'content-type': opts.contentType ?? 'application/json',
                      'content-length': String(Buffer.byteLength(body)),
                    }
                  : {}),
              },
              body,
            });
            text = await readText(res);
          } catch (err) {
            // As fetch did: an aborted request fails with the signal's reason.
            opts.signal?.throwIfAborted();
            const code = connectionErrorCode(err);
            const delay =
              code && isIdempotent(method, opts.contentType) && !opts.signal?.aborted
                ? backoffDelay(retry, attempt, firstAt, undefined)
                : undefined;
            if (delay === undefined)
              throw new Error(`${method} ${path}: ${(err as Error).message}`, { cause: err });
            await this.beforeRetry(span, method, resource, code!, delay, attempt, opts.signal);
            continue;
          }
          const status = res.statusCode ?? 0;
          span.setAttribute('http.response.status_code', status);
          this.options.onResponse?.(method, resource, status, (performance.now() - started) / 1000);
          if (status >= 200 && status < 300) return (text ? JSON.parse(text) : undefined) as T;
          const error = statusError(status, text);
          // A 429 was refused before any handler ran (API Priority and Fairness, max-in-flight), so
          // even a create or a JSON patch is safe to send again. A 5xx may come after the write was
          // done (a timeout, a lost etcd response): only a request that gives the same result twice
          // (GET, PUT with its resourceVersion, DELETE, apply, merge patch) is sent again.
          const retriable = status === 429 || (status >= 500 && isIdempotent(method, opts.contentType));
          const retryAfter = res.headers['retry-after'];
          const delay =
            retriable && !opts.signal?.aborted
              ? backoffDelay(retry, attempt, firstAt, retryAfterMs(retryAfter ?? null))
              : undefined;
          if (delay === undefined) throw error;
          await this.beforeRetry(span, method, resource, status, delay, attempt, opts.signal);
        }
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  private get retryOptions(): Required<RetryOptions> {
    return { ...RETRY_DEFAULTS, ...(this.options.retry || {}) };
  }

  private async beforeRetry(
    span: Span,
    method: string,
    resource: string,
    code: number | string,
    delayMs: number,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    span.addEvent('retry', { 'http.response.status_code': String(code), 'retry.delay_ms': delayMs });
    span.setAttribute('http.request.resend_count', attempt);
    this.options.onRetry?.(method, resource, code, delayMs);
    await wait(delayMs, signal);
    signal?.throwIfAborted();
  }

  async get<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: { signal?: AbortSignal } = {},
  ): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', resourcePath(type, namespace, name), { signal: opts.signal });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  list<T>(
    type: ResourceType,
    opts: {
      namespace?: string;
      labelSelector?: string;
      limit?: number;
      continue?: string;
      signal?: AbortSignal;
    } = {},
  ): Promise<KubeList<T>> {
    return this.request('GET', resourcePath(type, opts.namespace), {
      query: { labelSelector: opts.labelSelector, limit: opts.limit, continue: opts.continue },
      signal: opts.signal,
    });
  }

  /** Server-side apply. `obj` holds only the fields this manager owns. */
  apply<T extends KubeObject>(
    obj: KubeObject,
    opts: { fieldManager: string; force?: boolean; subresource?: 'status'; dryRun?: boolean },
  ): Promise<T> {
    const type = this.resourceOf(obj.apiVersion, obj.kind);
    const path =
      resourcePath(type, obj.metadata.namespace, obj.metadata.name) +
      (opts.subresource ? `/${opts.subresource}` : '');
    return this.request('PATCH', path, {
      body: obj,
      contentType: 'application/apply-patch+yaml',
      query: {
        fieldManager: opts.fieldManager,
        force: opts.force ?? true,
        dryRun: opts.dryRun ? 'All' : undefined,
      },
    });
  }

  create<T extends KubeObject>(
    obj: KubeObject,
    opts: { fieldManager?: string; signal?: AbortSignal } = {},
  ): Promise<T> {
    const type = this.resourceOf(obj.apiVersion, obj.kind);
    return this.request('POST', resourcePath(type, obj.metadata.namespace), {
      body: obj,
      signal: opts.signal,
      query: { fieldManager: opts.fieldManager, fieldValidation: 'Strict' },
    });
  }

  /** PUT: replaces an object; fails with 409 if its resourceVersion is stale (optimistic locking). */
  update<T extends KubeObject>(obj: KubeObject, opts: { signal?: AbortSignal } = {}): Promise<T> {
    const type = this.resourceOf(obj.apiVersion, obj.kind);
    return this.request('PUT', resourcePath(type, obj.metadata.namespace, obj.metadata.name), {
      body: obj,
      signal: opts.signal,
    });
  }

  /** JSON merge patch (RFC 7386), optionally on a subresource. */
  mergePatch<T>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    subresource?: string,
  ): Promise<T> {
    return this.request(
      'PATCH',
      resourcePath(type, namespace, name) + (subresource ? `/${subresource}` : ''),
      {
        body: patch,
        contentType: 'application/merge-patch+json',
      },
    );
  }

  /** JSON patch (RFC 6902), e.g. a `test` on resourceVersion before touching finalizers. */
  jsonPatch<T>(type: ResourceType, namespace: string | undefined, name: string, ops: unknown[]): Promise<T> {
    return this.request('PATCH', resourcePath(type, namespace, name), {
      body: ops,
      contentType: 'application/json-patch+json',
    });
  }

  /** Deletes an object; false when it was already gone. */
  async delete(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
    opts: {
      propagationPolicy?: 'Background' | 'Foreground' | 'Orphan';
      uid?: string;
      /** Delete only this version: a 409 when the object changed since it was read. */
      resourceVersion?: string;
    } = {},
  ): Promise<boolean> {
    try {
      await this.request('DELETE', resourcePath(type, namespace, name), {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          propagationPolicy: opts.propagationPolicy ?? 'Background',
          ...(opts.uid || opts.resourceVersion
            ? {
                preconditions: {
                  ...(opts.uid && { uid: opts.uid }),
                  ...(opts.resourceVersion && { resourceVersion: opts.resourceVersion }),
                },
              }
            : {}),
        },
      });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /**
   * Streams watch events until the server closes the watch, the signal aborts, or nothing arrives
   * for `idleTimeoutMs` (a silent, half-dead connection). Throws KubeError on an HTTP error.
   */
  async watch<T>(
    type: ResourceType,
    query: Record<string, string | number | boolean | undefined>,
    onEvent: (event: WatchEvent<T>) => void,
    opts: { signal?: AbortSignal; idleTimeoutMs: number },
  ): Promise<'closed' | 'idle'> {
    await this.bucket.take();
    const { headers, agent } = await this.authentication();
    const controller = new AbortController();
    const abort = () => controller.abort();
    opts.signal?.addEventListener('abort', abort, { once: true });
    let idle = false;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idle = true;
        controller.abort();
      }, opts.idleTimeoutMs);
    };
    try {
      arm();
      // No request timeout: the idle timer above is the watch's own.
      const res = await send(
        this.url(resourcePath(type, query.namespace as string | undefined), {
          ...query,
          namespace: undefined,
          watch: true,
        }),
        {
          method: 'GET',
          agent,
          signal: controller.signal,
          headers: {
            ...headers,
            accept: 'application/json',
            'user-agent': this.options.userAgent ?? 'epreuve',
          },
        },
      );
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) throw statusError(status, await readText(res));
      const lines = createInterface({ input: res, crlfDelay: Number.POSITIVE_INFINITY });
      for await (const line of lines) {
        arm();
        if (line.trim()) onEvent(JSON.parse(line) as WatchEvent<T>);
      }
      return 'closed';
    } catch (err) {
      if (controller.signal.aborted) return idle ? 'idle' : 'closed';
      throw err;
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', abort);
    }
  }
}

/**
 * One HTTP exchange with node's http/https: resolves with the response once its headers are in,
 * its body still to read. `timeoutMs`: the connection may stay silent this long, then the request
 * fails with ETIMEDOUT. An aborted signal destroys the request (and its response's stream).
 */
function send(
  url: string,
  o: {
    method: string;
    headers: Record<string, string>;
    body?: string;
    agent: Agent;
    signal?: AbortSignal;
    timeoutMs?: number;
  },
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(
      url,
      { method: o.method, headers: o.headers, agent: o.agent, signal: o.signal },
      resolve,
    );
    req.on('error', reject);
    if (o.timeoutMs) {
      const ms = o.timeoutMs;
      req.setTimeout(ms, () =>
        req.destroy(
          Object.assign(new Error(`the API server sent nothing for ${ms / 1000} s`), { code: 'ETIMEDOUT' }),
        ),
      );
    }
    req.end(o.body);
  });
}

/** A response's whole body as text (a reset connection or an abort rejects it). */
async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Waits `ms`, or less if the signal aborts first; leaves no listener behind. */
function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Idempotent requests: sending one twice leaves the same state as sending it once. */
function isIdempotent(method: string, contentType: string | undefined): boolean {
  if (method === 'GET' || method === 'HEAD' || method === 'PUT' || method === 'DELETE') return true;
  // Server-side apply and merge patch set fields to values; a JSON patch may add or test.
  return (
    method === 'PATCH' &&
    (contentType === 'application/apply-patch+yaml' || contentType === 'application/merge-patch+json')
  );
}

/** The code of a connection-level failure (on the error or a cause of it), if it is one. */
function connectionErrorCode(err: unknown): string | undefined {
  for (let e = err as { code?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.code && CONNECTION_ERRORS.has(e.code)) return e.code;
  }
  return undefined;
}

/** Retry-After in ms: delta-seconds (what the API server sends) or an HTTP date. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * How long to wait before attempt `attempt + 1`, or undefined to give up (attempts or time spent).
 * Retry-After is honoured with up to 10 % jitter added, so throttled clients do not return in step.
 */
export function backoffDelay(
  o: Required<RetryOptions>,
  attempt: number,
  firstAt: number,
  retryAfter: number | undefined,
  random: () => number = Math.random,
): number | undefined {
  if (attempt >= o.maxAttempts) return undefined;
  let delay: number;
  if (retryAfter !== undefined) delay = retryAfter + retryAfter * 0.1 * random();
  else {
    const cap = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1));
    delay = cap / 2 + (cap / 2) * random();
  }
  delay = Math.round(delay);
  return Date.now() + delay - firstAt > o.maxElapsedMs ? undefined : delay;
}

/** The resource plural of a REST path (plus /subresource), for span names and metric labels. */
export function resourceOfPath(path: string): string {
  const segs = path.split('?')[0]!.split('/').filter(Boolean);
  const rest = segs.slice(segs[0] === 'api' ? 2 : 3);
  const [plural, , sub] = rest[0] === 'namespaces' && rest.length >= 3 ? rest.slice(2) : rest;
  return sub ? `${plural}/${sub}` : (plural ?? path);
}

function statusError(code: number, body: string): KubeError {
  try {
    const status = JSON.parse(body) as {
      reason?: string;
      message?: string;
      details?: { causes?: KubeError['causes'] };
    };
    return new KubeError(
      code,
      status.reason ?? 'Unknown',
      status.message ?? body,
      status.details?.causes ?? [],
    );
  } catch {
    return new KubeError(code, 'Unknown', body.slice(0, 500) || `HTTP ${code}`);
  }
}
