import { describe, expect, it } from 'vitest';
import { GUARD_PREFIX } from './guard.ts';
import { AnswerError, explain, prepareAnswer } from './sql.ts';

describe('prepareAnswer', () => {
  it('strips trailing semicolons and whitespace', () =>
    expect(prepareAnswer('SELECT 1;;  \n')).toBe('SELECT 1'));
  it.each(['', '   ', ' ; ', '-- just a comment', '/* nothing */ ;'])(
    'refuses the empty answer %j',
    (sql) => {
      expect(() => prepareAnswer(sql)).toThrow(AnswerError);
      expect(() => prepareAnswer(sql)).toThrow(/empty/);
    },
  );
  it('refuses an oversized answer, saying how long it is', () => {
    expect(() => prepareAnswer('x'.repeat(25_000), 20_000)).toThrow(/25,000 characters; the limit is 20,000/);
  });
  it('refuses a NUL character, saying where (PostgreSQL would drop the connection on it)', () => {
    expect(() => prepareAnswer('SELECT 1\u0000')).toThrow(/NUL character \(U\+0000\) at position 9/);
  });
  it('says each refusal in French too, with French number formatting', () => {
    const fr = (sql: string, max?: number) => {
      try {
        prepareAnswer(sql, max);
      } catch (err) {
        return (err as AnswerError).fr;
      }
      throw new Error('not refused');
    };
    expect(fr('  ')).toBe('Votre réponse est vide.');
    expect(fr('x'.repeat(25_000), 20_000)).toBe(
      'Votre réponse compte 25\u202f000 caractères ; la limite est de 20\u202f000.',
    );
    expect(fr('SELECT 1\u0000')).toMatch(
      /^Votre réponse contient un caractère NUL \(U\+0000\) à la position 9 ;/,
    );
  });
  it('keeps comments and leading text of a real answer, and an unclosed comment is not empty', () => {
    expect(prepareAnswer('  -- total\nSELECT 1 /* x */ ;\n')).toBe('-- total\nSELECT 1 /* x */');
    expect(prepareAnswer('/* open')).toBe('/* open');
    expect(() => prepareAnswer('-- a\n/* b */\n;;')).toThrow(/empty/);
  });
  // A hostile answer of the largest allowed size: the regexes this replaced took seconds on each.
  it.each([
    ['spaces before a final character', `${' '.repeat(19_998)}x`],
    ['thousands of unclosed comments', '/*'.repeat(10_000)],
    ['semicolons and spaces before a final character', `${'; '.repeat(9_999)}x`],
  ])('prepares %s in linear time', (_, sql) => {
    const started = performance.now();
    prepareAnswer(sql);
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe('explain', () => {
  // A check's query is parsed once behind PREPARE (guard.ts) before it runs behind DECLARE: an
  // error's position is said in the candidate's text either way.
  it('counts positions from the start of the query, whatever was put before it', () => {
    const p = GUARD_PREFIX.length;
    const notAQuery = explain(
      { code: '42601', position: String(p + 1), message: 'syntax error at or near "DROP"' },
      5000,
      p,
    );
    expect(notAQuery).toMatchObject({ reason: 'NotAQuery' });
    const syntax = explain(
      { code: '42601', position: String(p + 28), message: 'syntax error at end of input' },
      5000,
      p,
    );
    expect(syntax.message).toBe('Syntax error: syntax error at end of input (at character 28).');
    expect(syntax.fr).toBe('Erreur de syntaxe : syntax error at end of input (au caractère 28).');
  });
});
