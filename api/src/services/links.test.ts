import { ANNOTATIONS } from '@epreuve/crds';
import { describe, expect, it, vi } from 'vitest';
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

describe('CandidateLinks.authenticateNow (a candidate page polling with one token)', () => {
  /** A store whose cache holds `current.a`, which a test replaces as the informer would. */
  function polling(a: AssessmentObject) {
    const current = { a };
    const store = {
      assessments: { get: (key: string) => (key === KEY ? current.a : undefined) },
      fresh: async () => current.a,
    } as unknown as AssessmentStore;
    return { current, store };
  }

  it('answers without the signature check once the token was verified, and not before', async () => {
    const signer = await LinkSigner.ephemeral();
    const token = await tokenFor(signer, 'one');
    const links = new CandidateLinks(polling(withLink('one')).store, signer, {
      publicUrl: 'https://x',
      maxAgeMs: 3600_000,
    });
    expect(links.authenticateNow(token)).toBeUndefined();
    expect(signer.verifiedBefore(token)).toBeUndefined();
    await links.authenticate(token);
    expect(signer.verifiedBefore(token)?.linkId).toBe('one');
    expect(links.authenticateNow(token)?.linkId).toBe('one');
    // A forged token that was never verified is not taken from the cache of another.
    expect(links.authenticateNow(`${token.slice(0, -2)}AA`)).toBeUndefined();
  });

  it('forgets a token once it expired: the next call verifies it (and says "expired")', async () => {
    const signer = await LinkSigner.ephemeral();
    const token = await signer.sign({
      assessment: KEY,
      linkId: 'one',
      expiresAt: new Date(Date.now() + 2000),
    });
    const links = new CandidateLinks(polling(withLink('one')).store, signer, {
      publicUrl: 'https://x',
      maxAgeMs: 3600_000,
    });
    await links.authenticate(token);
    vi.useFakeTimers({ now: Date.now() + 3000 });
    try {
      expect(signer.verifiedBefore(token)).toBeUndefined();
      expect(links.authenticateNow(token)).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses a replaced, revoked or ended link on the very next call after it was accepted', async () => {
    const signer = await LinkSigner.ephemeral();
    const token = await tokenFor(signer, 'one');
    const { current, store } = polling(withLink('one'));
    const links = new CandidateLinks(store, signer, { publicUrl: 'https://x', maxAgeMs: 3600_000 });
    await links.authenticate(token);
    expect(links.authenticateNow(token)?.linkId).toBe('one');

    current.a = withLink('two'); // replaced: not answered from the cache, and authenticate refuses
    expect(links.authenticateNow(token)).toBeUndefined();
    await expect(links.authenticate(token)).rejects.toThrow(/replaced by a newer one/);

    current.a = withLink('one', true); // revoked
    expect(() => links.authenticateNow(token)).toThrow(/revoked/);
    await expect(links.authenticate(token)).rejects.toThrow(/revoked/);

    current.a = { ...withLink('one'), status: { phase: 'Expired' } } as AssessmentObject; // ended
    expect(() => links.authenticateNow(token)).toThrow(/ended/);
    await expect(links.authenticate(token)).rejects.toThrow(/ended/);

    const gone = polling(undefined as unknown as AssessmentObject);
    const links2 = new CandidateLinks(gone.store, signer, { publicUrl: 'https://x', maxAgeMs: 3600_000 });
    expect(() => links2.authenticateNow(token)).toThrow(/not valid/); // verified before, assessment gone
  });
});
