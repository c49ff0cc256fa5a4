import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { guides, questionIds } from './index.ts';

describe('interview guides', () => {
  it('ship the data-engineering and backend-fundamentals banks, every question with a reference answer', () => {
    const all = guides();
    expect([...all.keys()].sort()).toEqual(['backend-fundamentals', 'data-engineering']);
    expect(questionIds(all.get('backend-fundamentals')!)).toHaveLength(50);
    expect(questionIds(all.get('data-engineering')!).length).toBeGreaterThan(60);
    for (const g of all.values())
      for (const s of g.sections)
        for (const q of s.questions) expect(q.answer.length, q.id).toBeGreaterThan(5);
  });

  it('cover the subjects the seeds name', () => {
    const titles = guides()
      .get('data-engineering')!
      .sections.map((s) => s.title)
      .join(' ');
    for (const t of ['FastAPI', 'MongoDB', 'Pandas', 'Kubernetes', 'CI/CD', 'Sécurité'])
      expect(titles).toContain(t);
  });

  it('refuse a malformed guide, naming the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'guides-'));
    writeFileSync(
      join(dir, 'bad.yaml'),
      'id: bad\ntitle: Bad\nlanguage: fr\nsections:\n  - title: S\n    questions:\n      - id: q1\n        question: Why?\n',
    );
    expect(() => guides(dir)).toThrow(/bad\.yaml is invalid: sections\.0\.questions\.0\.answer/);
  });
});
