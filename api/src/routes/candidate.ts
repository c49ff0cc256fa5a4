import {
  ANNOTATIONS,
  DATA_API_CREDENTIAL_KEYS as API_KEYS,
  credentialsSecretName,
  DB_CREDENTIAL_KEYS as KEYS,
  sandboxHostLabel,
  type Timeline,
  timeline,
} from '@epreuve/crds';
import type { KubeClient } from '@epreuve/kube';
import { findExercise } from '@epreuve/sandboxes/exercises';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Problem } from '../plugins/problem.ts';
import { type A, type AssessmentStore, namespaceOfAssessment } from '../services/assessments.ts';
import type { GradingService } from '../services/grading.ts';
import type { LinkSigner } from '../services/links.ts';
import { readSecretData } from '../services/secrets.ts';

/** Where a candidate's own tools reach a sandbox: through the gateway, or (no gateway) directly. */
export interface Endpoint {
  host: string;
  port: number;
  /** none: plain (in-cluster only); trusted: a publicly trusted certificate; private: encrypted, self-signed. */
  tls: 'none' | 'trusted' | 'private';
  /** Connect to this IP address, sending `host` as the TLS server name (no DNS record for it). */
  address?: string;
}

export interface GatewaySettings {
  domain: string;
  port: number;
  certTrusted: boolean;
  /** Where to connect when the domain has no DNS record; the name still routes (SNI). */
  address?: string;
}

/** The endpoint the candidate page shows for one sandbox (pure). */
export function candidateEndpoint(
  team: string,
  assessment: string,
  sandbox: { name: string; host?: string; port?: number },
  inClusterHost: string,
  gateway: GatewaySettings | undefined,
): Endpoint {
  if (!gateway) return { host: sandbox.host ?? inClusterHost, port: sandbox.port ?? 0, tls: 'none' };
  return {
    host: `${sandboxHostLabel(team, assessment, sandbox.name)}.${gateway.domain}`,
    port: gateway.port,
    tls: gateway.certTrusted ? 'trusted' : 'private',
    ...(gateway.address ? { address: gateway.address } : {}),
  };
}

/** Connection snippets the candidate can paste: psql, mongosh, curl and Python. */
export function snippets(kind: string, at: Endpoint, c: Record<string, string>): Record<string, string> {
  const user = encodeURIComponent(c[KEYS.username] ?? '');
  const pwd = encodeURIComponent(c[KEYS.password] ?? '');
  const database = c[KEYS.database];
  const { host, port, tls, address } = at;
  // Without a DNS record: tools that can connect to an address while naming the host get it.
  const hosts: Record<string, string> = address ? { hostsEntry: `${address} ${host}` } : {};
  switch (kind) {
    case 'postgres': {
      // libpq before 16 cannot verify against the system CAs; sslmode=require encrypts everywhere.
      const params = [
        ...(tls === 'none' ? [] : ['sslmode=require']),
        ...(address ? [`hostaddr=${address}`] : []),
      ];
      const url = `postgresql://${user}:${pwd}@${host}:${port}/${database}${params.length ? `?${params.join('&')}` : ''}`;
      return {
        url,
        psql: `psql "${url}"`,
        python: `import psycopg\nconn = psycopg.connect("${url}")`,
        ...hosts,
      };
    }
    case 'mongo': {
      const tlsParams =
        tls === 'none' ? '' : `&tls=true${tls === 'private' ? '&tlsAllowInvalidCertificates=true' : ''}`;
      const url = `mongodb://${user}:${pwd}@${host}:${port}/${database}?authSource=${database}&directConnection=true${tlsParams}`;
      return {
        url,
        mongosh: `mongosh "${url}"`,
        python: `from pymongo import MongoClient\ndb = MongoClient("${url}")["${database}"]`,
        ...hosts,
      };
    }
    default: {
      const url = `${tls === 'none' ? 'http' : 'https'}://${host}:${port}`;
      const insecure = tls === 'private';
      return {
        url,
        curl: `curl ${insecure ? '-k ' : ''}${address ? `--connect-to ${host}:${port}:${address}:${port} ` : ''}-H "X-API-Key: ${c[API_KEYS.apiKey]}" "${url}/v1/customers?limit=100"`,
        python: `import requests\nr = requests.get("${url}/v1/customers", headers={"X-API-Key": "${c[API_KEYS.apiKey]}"}, params={"limit": 100}${insecure ? ', verify=False' : ''})`,
        ...hosts,
      };
    }
  }
}

/** Candidate routes: their session (tasks, time left, connection details) and the start of the clock. */
export default async function candidateRoutes(
  app: FastifyInstance,
  opts: {
    store: AssessmentStore;
    client: KubeClient;
    links: LinkSigner;
    grading: GradingService;
    writesPerMinute: number;
    /** The sandbox gateway candidates connect through; absent: in-cluster addresses. */
    gateway?: GatewaySettings;
  },
) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  // Sandbox credentials never change once created, so a short cache spares the API server a read
  // per session poll (the candidate page refreshes; the countdown runs in the browser).
  const credentials = new Map<string, { at: number; data: Record<string, string> | undefined }>();
  async function readCredentials(ns: string, name: string): Promise<Record<string, string> | undefined> {
    const key = `${ns}/${name}`;
    const hit = credentials.get(key);
    if (hit && Date.now() - hit.at < 60_000) return hit.data;
    const data = await readSecretData(opts.client, ns, name);
    if (data) credentials.set(key, { at: Date.now(), data });
    if (credentials.size > 10_000) credentials.delete(credentials.keys().next().value!);
    return data;
  }

  async function session(a: A, lang: 'en' | 'fr') {
    const t = opts.store.template(a.metadata.namespace!, a.spec.templateRef.name);
    const started = a.status?.startedAt ?? a.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt];
    const expiresAt = a.status?.expiresAt ?? null;
    const ns = namespaceOfAssessment(a);
    const sandboxes = await Promise.all(
      (a.status?.sandboxes ?? []).map(async (s) => {
        const found = await readCredentials(ns, s.secretName ?? credentialsSecretName(s.name));
        const creds = found ?? {};
        const at = candidateEndpoint(
          a.metadata.namespace!,
          a.metadata.name!,
          s,
          `${s.name}.${ns}.svc`,
          opts.gateway,
        );
        const own =
          s.kind === 'dataApi'
            ? { apiKey: creds[API_KEYS.apiKey] }
            : {
                database: creds[KEYS.database],
                username: creds[KEYS.username],
                password: creds[KEYS.password],
              };
        return {
          name: s.name,
          kind: s.kind,
          ready: s.ready,
          host: at.host,
          port: at.port,
          tls: at.tls,
          ...own,
          snippets: found ? snippets(s.kind, at, creds) : null,
        };
      }),
    );
    return {
      assessment: a.metadata.name!,
      candidate: a.spec.candidate.name,
      title: t?.spec.title ?? a.spec.templateRef.name,
      description: t?.spec.description ?? null,
      phase: a.status?.phase ?? 'Pending',
      startPolicy: a.spec.startPolicy,
      started: Boolean(started),
      expiresAt,
      timeLeftSeconds: expiresAt
        ? Math.max(0, Math.floor((Date.parse(expiresAt) - Date.now()) / 1000))
        : null,
      // Titles only: prompts are static and large, served once by /candidate/tasks.
      tasks: tasksOf(a, lang).map(({ prompt: _prompt, ...task }) => task),
      sandboxes,
    };
  }

  function tasksOf(a: A, lang: 'en' | 'fr') {
    const t = opts.store.template(a.metadata.namespace!, a.spec.templateRef.name);
    return (t?.spec.tasks ?? []).map((task) => {
      const ex = task.exercise ? safeExercise(task.exercise) : undefined;
      return {
        id: task.id,
        sandbox: task.sandbox,
        points: task.points,
        title: task.title ?? ex?.title[lang] ?? task.id,
        prompt: task.prompt ?? ex?.prompt[lang] ?? '',
        answer: ex?.kind === 'mongo' ? 'pipeline' : task.grader?.manual ? 'text' : 'sql',
      };
    });
  }

  const query = z.object({ lang: z.enum(['en', 'fr']).default('en') });

  r.get(
    '/candidate/session',
    {
      schema: { tags: ['candidate'], summary: 'Time left, tasks and connection details', querystring: query },
      onRequest: app.requireCandidate(),
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return session(request.candidate!.assessment, request.query.lang);
    },
  );

  r.get(
    '/candidate/tasks',
    {
      schema: { tags: ['candidate'], summary: 'The tasks with their prompts (Markdown)', querystring: query },
      onRequest: app.requireCandidate(),
    },
    async (request, reply) => {
      reply.header('cache-control', 'private, max-age=300');
      return { tasks: tasksOf(request.candidate!.assessment, request.query.lang) };
    },
  );

  r.post(
    '/candidate/start',
    {
      schema: {
        tags: ['candidate'],
        summary: 'Start the clock (OnFirstAccess); returns a link that expires with the assessment',
        querystring: query,
      },
      onRequest: app.requireCandidate(),
    },
    async (request, reply) => {
      const { assessment, linkId } = request.candidate!;
      if (assessment.spec.startPolicy !== 'OnFirstAccess')
        throw new Problem(409, 'this assessment started when it was created');
      const updated = await opts.store.markArrived(assessment, new Date());
      request.log.info(
        {
          audit: {
            actor: `candidate:${assessment.metadata.namespace}/${assessment.metadata.name}`,
            action: 'candidate.start',
          },
        },
        'audit: candidate.start',
      );
      const t = opts.store.template(assessment.metadata.namespace!, assessment.spec.templateRef.name);
      if (!t)
        throw new Problem(409, `the template ${assessment.spec.templateRef.name} of this assessment is gone`);
      const { startedAt, expiresAt } = timeline(updated, t) as Required<Timeline>;
      // Same link id, a shorter life: the token now expires with the assessment.
      const token = await opts.links.sign({
        assessment: `${assessment.metadata.namespace}/${assessment.metadata.name}`,
        linkId,
        expiresAt,
      });
      reply.header('cache-control', 'no-store');
      return { token, startedAt: startedAt.toISOString(), expiresAt: expiresAt.toISOString() };
    },
  );

  r.post(
    '/candidate/tasks/:task/submissions',
    {
      schema: {
        tags: ['candidate'],
        summary: 'Submit an answer; it is graded against your own sandbox',
        params: z.object({ task: z.string().min(1).max(63) }),
        body: z.object({
          answer: z.string().min(1).max(20000).describe('SQL, a JSON aggregation pipeline, or text'),
        }),
      },
      onRequest: app.requireCandidate(),
      config: { rateLimit: { max: opts.writesPerMinute, timeWindow: '1 minute' } },
    },
    async (request, reply) => {
      const { assessment } = request.candidate!;
      if (assessment.status?.phase !== 'Ready')
        throw new Problem(409, 'your sandboxes are not ready yet; try again in a moment');
      const started =
        assessment.status?.startedAt ?? assessment.metadata.annotations?.[ANNOTATIONS.candidateArrivedAt];
      if (!started) throw new Problem(409, 'start the assessment first');
      const s = await opts.grading.submit(assessment, request.params.task, request.body.answer);
      request.log.info(
        {
          audit: {
            actor: `candidate:${assessment.metadata.namespace}/${assessment.metadata.name}`,
            action: 'candidate.submit',
            task: request.params.task,
            pass: s.status?.pass,
          },
        },
        'audit: candidate.submit',
      );
      reply.code(201).header('cache-control', 'no-store');
      return {
        id: s.metadata.name!,
        task: s.spec.task,
        submittedAt: s.spec.submittedAt,
        graded: s.status?.graded ?? false,
        pass: s.status?.pass ?? null,
        explanation: s.status?.explanation ?? null,
        points: s.status?.points ?? null,
      };
    },
  );
}

function safeExercise(id: string) {
  try {
    return findExercise(id);
  } catch {
    return undefined;
  }
}
