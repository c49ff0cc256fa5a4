import { ANNOTATIONS } from '@epreuve/crds';
import { describe, expect, it } from 'vitest';
import type { AssessmentObject, AssessmentStore } from './assessments.ts';
import { CandidateLinks, LinkSigner } from './links.ts';

const KEY = 'team-a/jane';
const withLink = (linkId: string, revoked = false) =>
  ({
    metadata: { namespace: 'team-a', name: 'jane', annotations: { [ANNOTATIONS.linkId]: linkId } },
    spec: { templateRef: { name: 't' }, candidate: { name: 'Jane' }, ...(revoked ? { revoked } : {}) },
  }) as unknown as AssessmentObject;

/** A store whose cache still shows `cached` while the API server already has `server` (a fake: unit tier). */
function lagging(cached: AssessmentObject, server: AssessmentObject | undefined) {
  const reads: string[] = [];
  const store = {
    assessments: { get: (key: string) => (key === KEY ? cached : undefined) },
    fresh: async (key: string) => {
      reads.push(key);
      return server;
    },
  } as unknown as AssessmentStore;
  return { store, reads };
}

async function tokenFor(signer: LinkSigner, linkId: string) {
  return signer.sign({ assessment: KEY, linkId, expiresAt: new Date(Date.now() + 3600_000) });
}

describe('CandidateLinks.authenticate while the cache lags', () => {
  it('accepts a link issued a moment ago that the cache has not seen, after asking the API server', async () => {
    const signer = await LinkSigner.ephemeral();
    const { store, reads } = lagging(withLink('old'), withLink('new'));
    const links = new CandidateLinks(store, signer, { publicUrl: 'https://x', maxAgeMs: 3600_000 });
    const { assessment, linkId } = await links.authenticate(await tokenFor(signer, 'new'));
    expect(linkId).toBe('new');
    expect(assessment.metadata.annotations?.[ANNOTATIONS.linkId]).toBe('new');
    expect(reads).toEqual([KEY]);
  });

  it('says "replaced" when the API server agrees, and asks it once a minute per link, not per request', async () => {
    const signer = await LinkSigner.ephemeral();
    const { store, reads } = lagging(withLink('new'), withLink('new'));
    const links = new CandidateLinks(store, signer, { publicUrl: 'https://x', maxAgeMs: 3600_000 });
    const old = await tokenFor(signer, 'old');
    for (let i = 0; i < 5; i++)
      await expect(links.authenticate(old)).rejects.toThrow(/replaced by a newer one/);
    expect(reads).toEqual([KEY]);
  });

  it('still refuses a link whose assessment the API server shows revoked or gone', async () => {
    const signer = await LinkSigner.ephemeral();
    const revoked = lagging(withLink('old'), withLink('new', true));
    await expect(
      new CandidateLinks(revoked.store, signer, { publicUrl: 'https://x', maxAgeMs: 3600_000 }).authenticate(
        await tokenFor(signer, 'new'),
      ),
    ).rejects.toThrow(/revoked/);
    const gone = lagging(withLink('old'), undefined);
    await expect(
      new CandidateLinks(gone.store, signer, { publicUrl: 'https://x', maxAgeMs: 3600_000 }).authenticate(
        await tokenFor(signer, 'new'),
      ),
    ).rejects.toThrow(/replaced by a newer one/);
  });
});
