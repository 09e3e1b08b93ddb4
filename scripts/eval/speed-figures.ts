/**
 * The speed section of the judge evaluation: mean and p99 time of one offline check on tweets,
 * HaluEval answers and responses, and 1-2 kB responses; the weights modules of the toxicity model
 * and of alt-profanity-check (size on disk, parse time).
 */
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Check, JudgeInput } from '../../common/types.js';
import { offlineVerdictInContext } from '../../domain/judge/offline-judge.js';
import { sentenceEncoder } from '../../activities/judge/sentence-encoder.js';
import { PROFANITY_MODEL_JSON } from '../../domain/judge/profanity-model.data.js';
import { parseProfanityModel } from '../../domain/judge/profanity-model.js';
import { TOXICITY_MODEL_JSON } from '../../domain/judge/toxicity-model.data.js';
import { toxicityModel } from '../../domain/judge/toxicity-model.js';
import type { Example } from './datasets.js';
import { inputOf, type Figure } from './figures.js';

/**
 * Responses of 1 to 2 kB: HaluEval general responses, consecutive ones joined by a blank line until
 * the text reaches 1 kB, cut at the last space before 2 kB.
 */
export function responsesOf1to2kB(responses: readonly string[], count = 200): string[] {
  const out: string[] = [];
  let cur = '';
  for (const r of responses) {
    if (out.length >= count) break;
    cur = cur ? `${cur}\n\n${r}` : r;
    if (cur.length < 1024) continue;
    if (cur.length > 2048) {
      const cut = cur.lastIndexOf(' ', 2048);
      cur = cur.slice(0, cut > 1024 ? cut : 2048);
    }
    out.push(cur);
    cur = '';
  }
  return out;
}

/** Time of each check as the collector runs it (toxicity read in context, one at a time). */
async function timeChecks(inputs: readonly JudgeInput[], check: Check): Promise<{ meanMs: number; p99Ms: number }> {
  const encoder = await sentenceEncoder();
  const times: number[] = [];
  for (const input of inputs) {
    const t0 = performance.now();
    await offlineVerdictInContext(check, input, encoder);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { meanMs: times.reduce((a, b) => a + b, 0) / Math.max(1, times.length), p99Ms: times[Math.floor(0.99 * (times.length - 1))] ?? 0 };
}

export async function speedSection(
  qaExamples: readonly Example[],
  davAll: readonly Example[],
  genRows: readonly Example[],
  genAll: readonly Example[],
): Promise<Figure[]> {
  const figures: Figure[] = [];
  const speedInputs = qaExamples.slice(0, 400).map(inputOf);
  const tweets = davAll.slice(0, 500).map((e) => ({ prompt: 'Tweet', response: e.response }));
  const longAnswers = genRows.slice(0, 300).map((e) => ({ prompt: e.prompt, response: e.response, context: e.prompt }));
  const kB = responsesOf1to2kB(genAll.map((e) => e.response)).map((response) => ({ prompt: 'Message', response }));
  for (const [name, inputs, check] of [
    ['halueval qa answers', speedInputs, 'hallucination'],
    ['halueval qa answers', speedInputs, 'quality'],
    ['davidson tweets', tweets, 'toxicity'],
    ['halueval general responses (long)', longAnswers, 'toxicity'],
    ['halueval general responses (long)', longAnswers, 'quality'],
    ['1-2 kB responses (halueval general, joined)', kB, 'toxicity'],
  ] as [string, JudgeInput[], Check][]) {
    await timeChecks(inputs.slice(0, 50), check); // warm-up
    const t = await timeChecks(inputs, check);
    figures.push({
      section: 'speed',
      dataset: name,
      split: '',
      check,
      n: inputs.length,
      metric: 'mean ms per check',
      value: t.meanMs,
      note: `p99 ${t.p99Ms.toFixed(2)} ms`,
    });
  }
  // The weights modules: size on disk and the time to parse them (done once per process).
  const median = (f: () => void): number => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      f();
      times.push(performance.now() - t0);
    }
    return times.sort((a, b) => a - b)[2] as number;
  };
  const model = toxicityModel();
  const profanity = parseProfanityModel(PROFANITY_MODEL_JSON);
  for (const [name, file, n, note, load] of [
    [
      'toxicity weights module',
      'toxicity-model.data.ts',
      Object.keys(model.weights).length,
      'n = sparse weights',
      () => JSON.parse(TOXICITY_MODEL_JSON),
    ],
    [
      'alt-profanity-check weights module',
      'profanity-model.data.ts',
      profanity.index.size,
      'n = vocabulary words (5 folds)',
      () => parseProfanityModel(PROFANITY_MODEL_JSON),
    ],
  ] as [string, string, number, string, () => unknown][]) {
    const dataFile = fileURLToPath(new URL(`../../domain/judge/${file}`, import.meta.url));
    figures.push({
      section: 'speed',
      dataset: name,
      split: '',
      check: 'toxicity',
      n,
      metric: 'size (kB)',
      value: statSync(dataFile).size / 1024,
      note,
    });
    figures.push({
      section: 'speed',
      dataset: name,
      split: '',
      check: 'toxicity',
      n: 5,
      metric: 'load: parse ms (median)',
      value: median(load),
    });
  }
  return figures;
}
