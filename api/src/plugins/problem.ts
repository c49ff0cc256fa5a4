import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import fp from 'fastify-plugin';

/** An error answered as RFC 9457 problem+json. `invalidParams` names each bad field. */
export class Problem extends Error {
  readonly status: number;
  readonly title: string;
  readonly invalidParams?: Array<{ name: string; reason: string }>;
  readonly headers?: Record<string, string>;

  constructor(
    status: number,
    detail: string,
    opts: { title?: string; invalidParams?: Problem['invalidParams']; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.status = status;
    this.title = opts.title ?? TITLES[status] ?? 'Error';
    this.invalidParams = opts.invalidParams;
    this.headers = opts.headers;
  }
}

const TITLES: Record<number, string> = {
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

export function sendProblem(
  reply: FastifyReply,
  p: { status: number; title: string; detail: string; invalidParams?: Problem['invalidParams'] },
) {
  return reply
    .code(p.status)
    .type('application/problem+json')
    .send({
      type: 'about:blank',
      title: p.title,
      status: p.status,
      detail: p.detail,
      instance: reply.request.url.split('?')[0],
      ...(p.invalidParams ? { invalid_params: p.invalidParams } : {}),
    });
}

interface ValidationItem {
  instancePath?: string;
  message?: string;
  params?: { issue?: { path?: Array<string | number> }; missingProperty?: string };
}

/** Field paths like `body.candidate.email` from fastify / zod validation errors. */
function invalidParams(err: FastifyError & { validationContext?: string }): Problem['invalidParams'] {
  return (err.validation as ValidationItem[] | undefined)?.map((v) => {
    const path =
      v.params?.issue?.path?.join('.') ?? v.instancePath?.replace(/^\//, '').replaceAll('/', '.') ?? '';
    const name = [err.validationContext, path || v.params?.missingProperty].filter(Boolean).join('.');
    return { name, reason: v.message ?? 'invalid' };
  });
}

/**
 * Every error leaves as problem+json: validation errors with the path of each bad field, known
 * problems with their status, anything else as a 500 that reveals no internals.
 */
export default fp(async function problemPlugin(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError & { validationContext?: string }, request, reply) => {
    if (err instanceof Problem) {
      if (err.headers) reply.headers(err.headers);
      return sendProblem(reply, {
        status: err.status,
        title: err.title,
        detail: err.message,
        invalidParams: err.invalidParams,
      });
    }
    if (err.validation) {
      const params = invalidParams(err) ?? [];
      const detail = params.map((p) => `${p.name}: ${p.reason}`).join('; ') || err.message;
      return sendProblem(reply, { status: 400, title: 'Bad Request', detail, invalidParams: params });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) request.log.error({ err }, 'unhandled error');
    return sendProblem(reply, {
      status,
      title: TITLES[status] ?? 'Error',
      detail:
        status === 500
          ? 'Something went wrong on our side; the request id is in the x-request-id header.'
          : err.message,
    });
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, {
      status: 404,
      title: 'Not Found',
      detail: `no route for ${request.method} ${request.url.split('?')[0]}`,
    }),
  );
});
