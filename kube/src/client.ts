import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Dispatcher, fetch } from 'undici';
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
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal;
}

export type WatchEvent<T> = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'; object: T };

const tracer = trace.getTracer('epreuve-kube-client');

/**
 * A small REST client over client-node's authentication (certificates, tokens, exec plugins):
 * raw JSON in and out, server-side apply done right, one connection pool, a QPS budget.
 * client-node's typed serializer renames fields (`x-kubernetes-*`, `default`, `enum`) and its
 * object API opens a new connection pool per request; this avoids both.
 */
export class KubeClient {
  private readonly kc: KubeConfig;
  private readonly server: string;
  private readonly bucket: TokenBucket;
  private readonly options: ClientOptions;
  private auth?: { headers: Record<string, string>; dispatcher: Dispatcher; at: number };

  /** A client for the pod's service account, or $KUBECONFIG / ~/.kube/config outside a cluster. */
  static fromEnvironment(options: ClientOptions = {}): KubeClient {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    return new KubeClient(kc, options);
  }

  constructor(kc: KubeConfig, options: ClientOptions = {}) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.kc = kc;
    this.server = cluster.server.replace(/\/$/, '');
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

  /** Headers and TLS dispatcher, refreshed every minute so rotated tokens are picked up. */
  private async authentication() {
    if (!this.auth || Date.now() - this.auth.at > 60_000) {
      const ctx = new RequestContext(this.server, HttpMethod.GET);
      await this.kc.applySecurityAuthentication(ctx);
      const dispatcher = this.auth?.dispatcher ?? (ctx.getDispatcher() as Dispatcher);
      this.auth = { headers: ctx.getHeaders(), dispatcher, at: Date.now() };
    }
    return this.auth;
  }

  private url(path: string, query: RequestOptions['query'] = {}): string {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    return url.toString();
  }

  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    await this.bucket.take();
    const resource = resourceOfPath(path);
    return tracer.startActiveSpan(`kube ${method} ${resource}`, { kind: SpanKind.CLIENT }, async (span) => {
      const started = performance.now();
      try {
        const { headers, dispatcher } = await this.authentication();
        const res = await fetch(this.url(path, opts.query), {
          method,
          dispatcher,
          signal: opts.signal,
          headers: {
            ...headers,
            accept: 'application/json',
            'user-agent': this.options.userAgent ?? 'epreuve',
            ...(opts.body !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {}),
          },
          body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        });
        const text = await res.text();
        span.setAttribute('http.response.status_code', res.status);
        this.options.onResponse?.(method, resource, res.status, (performance.now() - started) / 1000);
        if (!res.ok) throw statusError(res.status, text);
        return (text ? JSON.parse(text) : undefined) as T;
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  async get<T extends KubeObject>(
    type: ResourceType,
    namespace: string | undefined,
    name: string,
  ): Promise<T | undefined> {
    try {
      return await this.request<T>('GET', resourcePath(type, namespace, name));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  list<T>(
    type: ResourceType,
    opts: { namespace?: string; labelSelector?: string; limit?: number; continue?: string } = {},
  ): Promise<KubeList<T>> {
    return this.request('GET', resourcePath(type, opts.namespace), {
      query: { labelSelector: opts.labelSelector, limit: opts.limit, continue: opts.continue },
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

  create<T extends KubeObject>(obj: KubeObject, opts: { fieldManager?: string } = {}): Promise<T> {
    const type = this.resourceOf(obj.apiVersion, obj.kind);
    return this.request('POST', resourcePath(type, obj.metadata.namespace), {
      body: obj,
      query: { fieldManager: opts.fieldManager, fieldValidation: 'Strict' },
    });
  }

  /** PUT: replaces an object; fails with 409 if its resourceVersion is stale (optimistic locking). */
  update<T extends KubeObject>(obj: KubeObject): Promise<T> {
    const type = this.resourceOf(obj.apiVersion, obj.kind);
    return this.request('PUT', resourcePath(type, obj.metadata.namespace, obj.metadata.name), { body: obj });
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
    opts: { propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'; uid?: string } = {},
  ): Promise<boolean> {
    try {
      await this.request('DELETE', resourcePath(type, namespace, name), {
        body: {
          apiVersion: 'v1',
          kind: 'DeleteOptions',
          propagationPolicy: opts.propagationPolicy ?? 'Background',
          ...(opts.uid ? { preconditions: { uid: opts.uid } } : {}),
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
    const { headers, dispatcher } = await this.authentication();
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
      const res = await fetch(
        this.url(resourcePath(type, query.namespace as string | undefined), {
          ...query,
          namespace: undefined,
          watch: true,
        }),
        {
          method: 'GET',
          dispatcher,
          signal: controller.signal,
          headers: {
            ...headers,
            accept: 'application/json',
            'user-agent': this.options.userAgent ?? 'epreuve',
          },
        },
      );
      if (!res.ok) throw statusError(res.status, await res.text());
      const lines = createInterface({
        input: Readable.fromWeb(res.body as never),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
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
