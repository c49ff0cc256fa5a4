import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GRADER, type GraderPlan } from '@epreuve/crds';
import type { KubeClient, KubeObject } from '@epreuve/kube';
import type { FastifyInstance } from 'fastify';
import { buildGradeServer } from '../../sandboxes/src/grader/server.ts';

/**
 * Stands in for the graders the operator runs in candidate namespaces (the integration tier has
 * no kubelet): one real grade server per namespace, in this process, behind one loopback port.
 * The API reaches a namespace's grader at `<url>/ns/<namespace>` (its EPREUVE_GRADER_URL).
 */
const graders = new Map<string, FastifyInstance>();
let router: { server: Server; url: string } | undefined;

/** The URL template to give the API (EPREUVE_GRADER_URL). */
export async function graderUrlTemplate(): Promise<string> {
  if (!router) {
    const server = createServer(async (req, res) => {
      const m = /^\/ns\/([^/]+)(\/.*)$/.exec(req.url ?? '');
      const app = m && graders.get(m[1]!);
      if (!app) {
        res.statusCode = 502;
        return res.end();
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const out = await app.inject({
        method: req.method as 'POST',
        url: m[2]!,
        headers: req.headers as Record<string, string>,
        payload: Buffer.concat(chunks),
      });
      res.writeHead(out.statusCode, out.headers as Record<string, string>);
      res.end(out.rawPayload);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.unref();
    router = { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  }
  return `${router.url}/ns/{namespace}`;
}

/** A sandbox Secret as the kubelet mounts it: a directory with one file per key. */
export function credentialsDir(values: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'epreuve-credentials-'));
  for (const [k, v] of Object.entries(values)) writeFileSync(join(dir, k), v);
  return dir;
}

/**
 * Starts the grader of one candidate namespace on the given sandboxes and writes its token Secret
 * there, as the operator does. `credentials` maps a sandbox to its Secret's keys.
 */
export async function standInGrader(
  client: KubeClient,
  namespace: string,
  sandboxes: Array<Omit<GraderPlan[number], 'credentials'> & { credentials: Record<string, string> }>,
): Promise<void> {
  const plan: GraderPlan = sandboxes.map((s) => ({ ...s, credentials: credentialsDir(s.credentials) }));
  const token = randomBytes(24).toString('base64url');
  graders.get(namespace)?.close();
  graders.set(namespace, await buildGradeServer({ plan, token: () => token }));
  await client.create({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: GRADER.secretName, namespace },
    stringData: { [GRADER.tokenKey]: token },
  } as KubeObject);
}
