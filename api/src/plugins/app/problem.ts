import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { z } from 'zod';
import {
  Conflict,
  DomainError,
  Forbidden,
  Invalid,
  type Localized,
  Malformed,
  Misconfigured,
  NotFound,
  Unauthenticated,
  Unavailable,
} from '../../services/errors.ts';
import type { ProblemView } from '../../views.ts';

type InvalidParams = NonNullable<z.output<typeof ProblemView>['invalid_params']>;

/**
 * An HTTP-level refusal that is not the domain's (a rate limit, load shedding): thrown by the
 * external plugins' hooks, answered as problem+json like the rest.
 */
export class Problem extends Error {
  readonly status: number;
  readonly headers?: Record<string, string>;
  /** The detail in each page language, where a candidate may read it (English is `message`). */
  readonly localized?: Localized;

  constructor(status: number, detail: string | Localized, opts: { headers?: Record<string, string> } = {}) {
    super(typeof detail === 'string' ? detail : detail.en);
    this.status = status;
    this.headers = opts.headers;
    if (typeof detail !== 'string') this.localized = detail;
  }
}

export const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The one place domain errors become status codes. */
const STATUS_OF: Array<[abstract new (...args: never[]) => DomainError, number]> = [
  [Malformed, 400],
  [Unauthenticated, 401],
  [Forbidden, 403],
  [NotFound, 404],
  [Conflict, 409],
  [Invalid, 422],
  [Misconfigured, 500],
  [Unavailable, 503],
];

export function sendProblem(
  reply: FastifyReply,
  p: { status: number; detail: string; invalidParams?: InvalidParams },
) {
  const body: z.output<typeof ProblemView> = {
    type: 'about:blank',
    title: TITLES[p.status] ?? 'Error',
    status: p.status,
    detail: p.detail,
    instance: reply.request.url.split('?')[0]!,
    ...(p.invalidParams ? { invalid_params: p.invalidParams } : {}),
  };
  return reply.code(p.status).type('application/problem+json').send(body);
}

/**
 * Errors the router raises before any route runs (fastify's `frameworkErrors`): a path that is not
 * valid percent-encoding, a path segment over the router's 100 characters. Both are malformed
 * requests: 400 problem+json, like a parameter that fails its schema.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  // No hook ran (observability's onRequest sets it on every other response).
  reply.header('x-request-id', request.id);
  const detail =
    error.code === 'FST_ERR_MAX_PARAM_LENGTH'
      ? 'a path segment is longer than any this API accepts'
      : 'the path is not valid percent-encoding';
  return sendProblem(reply, { status: 400, detail });
}

/**
 * Where the request carried a field a domain error names: the first of params, querystring, body
 * and headers whose declared schema has it (`duration` → `body.duration`, `cursor` →
 * `querystring.cursor`); the field as is when none does.
 */
function locate(request: FastifyRequest, field: string): string {
  const top = field.split('.')[0]!;
  const schema = request.routeOptions.schema as Record<string, unknown> | undefined;
  for (const part of ['params', 'querystring', 'body', 'headers']) {
    const s = schema?.[part];
    if (s instanceof z.ZodObject && top in s.shape) return `${part}.${field}`;
  }
  return field;
}

interface ValidationItem {
  instancePath?: string;
  message?: string;
  params?: { issue?: { path?: Array<string | number> }; missingProperty?: string };
}

/** Field paths like `body.candidate.email` from fastify / zod validation errors. */
function validationParams(err: FastifyError & { validationContext?: string }): InvalidParams {
  return ((err.validation as ValidationItem[] | undefined) ?? []).map((v) => {
    const path =
      v.params?.issue?.path?.join('.') ?? v.instancePath?.replace(/^\//, '').replaceAll('/', '.') ?? '';
    const name = [err.validationContext, path || v.params?.missingProperty].filter(Boolean).join('.');
    return { name, reason: v.message ?? 'invalid' };
  });
}

/**
 * Every error leaves as RFC 9457 problem+json: domain errors with their status (and the field at
 * fault), validation errors with the path of each bad field, fastify's own 4xx (body too large,
 * unsupported media type, malformed JSON) as they are, anything else as a 500 that reveals no
 * internals.
 */
export default fp(
  async function problemPlugin(app: FastifyInstance) {
    app.setErrorHandler((error: FastifyError & { validationContext?: string }, request, reply) => {
      const err: unknown = error;
      if (err instanceof DomainError) {
        const status = STATUS_OF.find(([type]) => err instanceof type)?.[1] ?? 500;
        if (err instanceof Unauthenticated) reply.header('www-authenticate', 'Bearer');
        if (err instanceof Unavailable && err.retryAfterSeconds)
          reply.header('retry-after', String(err.retryAfterSeconds));
        if (status >= 500) request.log.error({ err }, err.message);
        return sendProblem(reply, {
          status,
          detail: err.localized?.[request.pageLanguage()] ?? err.message,
          invalidParams: err.field
            ? [{ name: locate(request, err.field), reason: err.reason ?? 'invalid' }]
            : undefined,
        });
      }
      if (err instanceof Problem) {
        if (err.headers) reply.headers(err.headers);
        return sendProblem(reply, {
          status: err.status,
          detail: err.localized?.[request.pageLanguage()] ?? err.message,
        });
      }
      if (error.validation) {
        const params = validationParams(error);
        const detail = params.map((p) => `${p.name}: ${p.reason}`).join('; ') || error.message;
        return sendProblem(reply, { status: 400, detail, invalidParams: params });
      }
      const code = error.statusCode;
      const status = code && code >= 400 && code < 500 ? code : 500;
      if (status === 500) request.log.error({ err: error }, 'unhandled error');
      return sendProblem(reply, {
        status,
        detail:
          status === 500
            ? 'Something went wrong on our side; the request id is in the x-request-id header.'
            : error.message,
      });
    });
    app.setNotFoundHandler((request, reply) =>
      sendProblem(reply, {
        status: 404,
        detail: `no route for ${request.method} ${request.url.split('?')[0]}`,
      }),
    );
  },
  { name: 'problem' },
);
