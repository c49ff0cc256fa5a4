import { ANNOTATIONS } from '@epreuve/crds';
import type { Informer, KubeClient, KubeObject } from '@epreuve/kube';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { loadApiConfig } from '../../config.ts';
import { type AssessmentObject, AssessmentStore, type TemplateObject } from '../../services/assessments.ts';
import { LinkSigner } from '../../services/links.ts';

/**
 * The candidate auth hook through the app (no cluster: an informer cache the test replaces objects
 * in, as a watch event would, and the API server read answering the same). Its synchronous path
 * (a token verified before) must refuse a replaced, revoked or ended link on the very next request.
 */
const key = 'team-a/jane';
const assessment = (linkId: string, extra: { revoked?: boolean; phase?: string } = {}) =>
  ({
    metadata: { namespace: 'team-a', name: 'jane', uid: 'u1', annotations: { [ANNOTATIONS.linkId]: linkId } },
    spec: {
      templateRef: { name: 't' },
      candidate: { name: 'Jane' },
      startPolicy: 'Immediate',
      ...(extra.revoked ? { revoked: true } : {}),
    },
    status: { phase: extra.phase ?? 'Provisioning' },
  }) as unknown as AssessmentObject;
let current = assessment('one');
const informer = <T extends KubeObject>(get: (k: string) => T | undefined) =>
  ({ get, list: () => [], hasSynced: () => true }) as unknown as Informer<T>;
const client = { get: async () => current } as unknown as KubeClient;
const signer = await LinkSigner.ephemeral();
const app = await buildApp({
  config: loadApiConfig({ EPREUVE_LOAD_SAMPLE_INTERVAL_MS: '600000' }),
  client,
  store: new AssessmentStore(
    client,
    informer<AssessmentObject>((k) => (k === key ? current : undefined)),
    informer<TemplateObject>(() => undefined),
  ),
  links: signer,
});
afterAll(() => app.close());
const token = await signer.sign({
  assessment: key,
  linkId: 'one',
  expiresAt: new Date(Date.now() + 3600_000),
});
const session = async (t = token) =>
  (await app.inject({ url: '/api/v1/candidate/session', headers: { authorization: `Bearer ${t}` } }))
    .statusCode;

describe('requireCandidate', () => {
  it('lets a polling candidate through, and refuses their link on the next request once replaced, revoked or ended', async () => {
    current = assessment('one');
    expect(await session()).toBe(200);
    expect(await session()).toBe(200); // verified before: the synchronous path
    current = assessment('two');
    expect(await session()).toBe(401);
    current = assessment('one', { revoked: true });
    expect(await session()).toBe(403);
    current = assessment('one', { phase: 'Expired' });
    expect(await session()).toBe(403);
    current = assessment('one');
    expect(await session()).toBe(200);
  });

  it('refuses a missing or forged token (401)', async () => {
    expect((await app.inject({ url: '/api/v1/candidate/session' })).statusCode).toBe(401);
    expect(await session(`${token.slice(0, -4)}AAAA`)).toBe(401);
  });
});
