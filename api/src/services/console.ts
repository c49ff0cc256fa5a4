import { type AssessmentTemplate, type ConsoleRequest, type ConsoleResponse, GRADER } from '@epreuve/crds';
import type { KubeClient } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type AssessmentObject, namespaceOfAssessment } from './assessments.ts';
import { refuseUnlessOpenForWork } from './candidates.ts';
import {
  Conflict,
  DomainError,
  Invalid,
  type Localized,
  Misconfigured,
  NotFound,
  Unavailable,
} from './errors.ts';
import { type ConsoleOutcome, GraderClient } from './grader-client.ts';
import { graderTokens } from './grading.ts';
import { readSecretData } from './secrets.ts';

/**
 * The console (issue 17): a candidate runs SQL on their PostgreSQL sandbox, or a pipeline on their
 * MongoDB one, from their page. The API checks the time box and relays; the grader in the
 * candidate's namespace runs it as the candidate's own database user under grading's limits, so
 * nothing runs in this process and nothing can write where the candidate may not.
 */

/** The statement failed (syntax, permission, time, size): the grader's words, with where. */
export class ConsoleFailed extends DomainError {
  readonly failure: { reason: string; position?: number };
  constructor(message: string | Localized, failure: { reason: string; position?: number }) {
    super(message);
    this.failure = failure;
  }
}

export class ConsoleService {
  private readonly grader: GraderClient;
  private readonly forgetToken?: (namespace: string) => void;
  /** Runs per assessment since this replica started: counted for the audit line, never their text. */
  private readonly runs = new Map<string, number>();

  constructor(grader: GraderClient, forgetToken?: (namespace: string) => void) {
    this.grader = grader;
    this.forgetToken = forgetToken;
  }

  /** Runs one statement, gated like a submission: sandboxes ready, the clock running, not ended. */
  async run(
    a: AssessmentObject,
    request: ConsoleRequest,
    template: Pick<AssessmentTemplate, 'spec'> | undefined,
  ): Promise<ConsoleResponse> {
    refuseUnlessOpenForWork(a, template);
    const sandbox = a.status?.sandboxes?.find((s) => s.name === request.sandbox);
    if (!sandbox)
      throw new NotFound(
        {
          en: `no sandbox ${request.sandbox} in this assessment`,
          fr: `aucun bac à sable ${request.sandbox} dans cette évaluation`,
        },
        { field: 'sandbox', reason: 'no such sandbox' },
      );
    const wanted = request.query !== undefined ? 'postgres' : 'mongo';
    if (sandbox.kind !== wanted)
      throw new Invalid(
        wanted === 'postgres'
          ? {
              en: `sandbox ${sandbox.name} is not PostgreSQL: send a pipeline`,
              fr: `le bac à sable ${sandbox.name} n’est pas PostgreSQL : envoyez un pipeline`,
            }
          : {
              en: `sandbox ${sandbox.name} is not MongoDB: send a query`,
              fr: `le bac à sable ${sandbox.name} n’est pas MongoDB : envoyez une requête`,
            },
        wanted === 'postgres' ? 'query' : 'pipeline',
        'wrong kind of sandbox',
      );
    if (!sandbox.ready)
      throw new Conflict({
        en: `sandbox ${sandbox.name} is not ready yet; try again in a moment`,
        fr: `le bac à sable ${sandbox.name} n’est pas encore prêt ; réessayez dans un instant`,
      });
    const ns = namespaceOfAssessment(a);
    let outcome = await this.grader.run(ns, request);
    // A token cached from an earlier namespace of the same name: read it again, once.
    if (outcome.kind === 'refused' && outcome.status === 401 && this.forgetToken) {
      this.forgetToken(ns);
      outcome = await this.grader.run(ns, request);
    }
    return result(outcome);
  }

  /** Counts a run of this assessment; returns the count so far (for the audit line). */
  count(a: AssessmentObject): number {
    const key = a.metadata.uid ?? `${a.metadata.namespace}/${a.metadata.name}`;
    const n = (this.runs.get(key) ?? 0) + 1;
    this.runs.delete(key); // most recent last: the oldest is dropped first when the map is full
    this.runs.set(key, n);
    if (this.runs.size > 10_000) this.runs.delete(this.runs.keys().next().value!);
    return n;
  }
}

/** The result, or why there is none. */
export function result(outcome: ConsoleOutcome): ConsoleResponse {
  switch (outcome.kind) {
    case 'ran':
      return outcome.result;
    case 'failed':
      throw new ConsoleFailed(
        outcome.messageFr ? { en: outcome.message, fr: outcome.messageFr } : outcome.message,
        {
          reason: outcome.reason,
          ...(outcome.position !== undefined && { position: outcome.position }),
        },
      );
    case 'unavailable':
      throw new Unavailable(
        {
          en: `the console cannot run this now (${outcome.reason}); try again in a moment`,
          fr: `la console ne peut pas exécuter ceci maintenant (${outcome.reason}) ; réessayez dans un instant`,
        },
        outcome.retryAfterSeconds,
      );
    case 'refused':
      throw new Misconfigured(`the grader refused the console run (${outcome.reason}); tell the recruiter`);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The candidate's console: statements relayed to the grader in their namespace. */
    candidateConsole: ConsoleService;
  }
}

/** `app.console`. */
export default fp(
  async function consolePlugin(app: FastifyInstance, opts: { client: KubeClient; graderUrl?: string }) {
    const tokens = graderTokens(
      async (namespace) =>
        (await readSecretData(opts.client, namespace, GRADER.secretName))?.[GRADER.tokenKey],
    );
    const grader = new GraderClient({
      token: tokens.get,
      // The grader's own limits end a run in seconds; this only bounds a grader that hangs.
      timeoutMs: 20_000,
      ...(opts.graderUrl && { baseUrl: (namespace) => opts.graderUrl!.replaceAll('{namespace}', namespace) }),
    });
    app.decorate('candidateConsole', new ConsoleService(grader, tokens.forget));
  },
  { name: 'console', dependencies: ['assessments'] },
);
