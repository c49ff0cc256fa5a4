import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { KubeClient } from '@epreuve/kube';
import { afterEach, describe, expect, it } from 'vitest';
import type { AssessmentObject } from './assessments.ts';
import { MAX_REPLY_BYTES } from './grader-client.ts';
import { RequestLogs } from './request-log.ts';

const adminKey = Buffer.from('platform-admin-key').toString('base64');
const client = { get: async () => ({ data: { 'admin-key': adminKey } }) } as unknown as KubeClient;
const assessment = {
  metadata: { name: 'jane', namespace: 'hiring', uid: 'u1' },
  spec: { templateRef: { name: 't' } },
  status: {
    phase: 'Ready',
    namespace: 'epreuve-jane',
    sandboxes: [{ name: 'source', kind: 'dataApi', ready: true, host: '127.0.0.1' }],
  },
} as unknown as AssessmentObject;

let server: Server | undefined;
afterEach(() => server?.close());

/** A data API admin port answering `body` to /admin/requests. */
async function dataApi(body: string): Promise<number> {
  server = createServer((_, res) => res.end(body));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('RequestLogs.read', () => {
  it('returns the log a data API sends', async () => {
    const port = await dataApi(JSON.stringify({ data: [{ path: '/v1/customers', status: 200 }] }));
    const [log] = await new RequestLogs(client, port).read(assessment, { limit: 10 });
    expect(log).toEqual({
      sandbox: 'source',
      available: true,
      items: [{ path: '/v1/customers', status: 200 }],
    });
  });

  it('reads at most the reply cap of a data API (it runs in the candidate namespace), and says it is unavailable', async () => {
    const port = await dataApi(`{"data":["${'x'.repeat(MAX_REPLY_BYTES)}"]}`);
    const [log] = await new RequestLogs(client, port).read(assessment, { limit: 10 });
    expect(log).toEqual({ sandbox: 'source', available: false, items: [] });
  });
});
