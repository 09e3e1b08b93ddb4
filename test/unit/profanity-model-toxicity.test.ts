import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  profanityIndices,
  profanityModel,
  profanityProbability,
  profanityProbabilityOf,
  profanityTokens,
  pythonLower,
} from '../../domain/judge/profanity-model.js';

const fixture = JSON.parse(readFileSync(fileURLToPath(new URL('../fixtures/profanity-model-parity.json', import.meta.url)), 'utf8')) as {
  cases: { text: string; p: number }[];
};

describe('alt-profanity-check model in TypeScript', () => {
  it('reproduces scikit-learn predict_proba to 1e-6 on every fixture text', () => {
    expect(fixture.cases.length).toBeGreaterThanOrEqual(2500);
    let worst = { d: 0, text: '' };
    for (const c of fixture.cases) {
      const d = Math.abs(profanityProbability(c.text) - c.p);
      if (d > worst.d) worst = { d, text: c.text };
    }
    expect(worst.d, JSON.stringify(worst.text)).toBeLessThan(1e-6);
    // Both classes are well represented, so the comparison is not of near-constant outputs.
    const flagged = fixture.cases.filter((c) => c.p >= 0.5).length;
    expect(flagged).toBeGreaterThan(500);
    expect(fixture.cases.length - flagged).toBeGreaterThan(500);
  });

  it('records where it comes from', () => {
    const m = profanityModel();
    expect(m.source).toMatchObject({ package: 'alt-profanity-check', version: '1.9.1', license: 'MIT', scikitLearn: '1.9.1' });
    expect(m.index.size).toBe(15442);
    expect(m.coef).toHaveLength(5);
  });

  it('tokenises as scikit-learn does: lower-case, runs of two or more word characters', () => {
    expect(profanityTokens('Go to hell, you SCUM!! a_b c x9 ab')).toEqual(['go', 'to', 'hell', 'you', 'scum', 'a_b', 'x9', 'ab']);
    // Combining marks are not word characters in Python; precomposed letters are.
    expect(profanityTokens('Jose\u0301 José')).toEqual(['jose', 'josé']);
    // Dotted capital I lower-cases to i and a combining dot, which splits the word.
    expect(profanityTokens('\u0130stanbul')).toEqual(['stanbul']);
    expect(profanityTokens('fu\u200bck')).toEqual(['fu', 'ck']);
    expect(pythonLower('ΟΔΥΣΣΕΥΣ ΚΑΙ Σ')).toBe('οδυσσευς και σ');
    expect(pythonLower('\u212aILL')).toBe('kill');
  });

  it('ignores words outside the vocabulary and scores a text without known words as the zero vector', () => {
    expect(profanityIndices('zzqx qqzzx')).toEqual([]);
    expect(profanityProbability('zzqx qqzzx')).toBeCloseTo(profanityProbabilityOf([]), 15);
    expect(profanityProbability('')).toBeCloseTo(profanityProbabilityOf([]), 15);
    expect(profanityProbability('fuck you')).toBeGreaterThan(0.9);
    expect(profanityProbability('Thanks, the meeting moved to Tuesday.')).toBeLessThan(0.2);
  });
});
