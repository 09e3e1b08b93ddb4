/**
 * Replies of reasoning models served without a reasoning parser, through the real groq-sdk
 * against a raw local server: the reasoning comes first in the content, in `<think>…</think>`
 * (Groq's `reasoning_format: raw`, https://console.groq.com/docs/reasoning; vLLM without
 * `--reasoning-parser`; the judge and `judge eval` take any OpenAI-compatible base URL).
 * Pins, and how it failed before: every such reply was "not valid JSON (Unexpected token '<')",
 * so each call was retried and every check of every interaction failed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { LlmClient } from '../../activities/llm/client.js';
import { loadConfig } from '../../common/config.js';
import { checkResultSchemas } from '../../common/types.js';
import { within } from '../helpers/async.js';

let content = '';
let finish = 'stop';
let server: http.Server;
let base = '';

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-1',
          object: 'chat.completion',
          model: 'deepseek-r1-distill-llama-70b',
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
          usage: { prompt_tokens: 40, completion_tokens: 20, total_tokens: 60 },
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const GOOD = { score: 0.2, confidence: 0.9, reasoning: 'supported by the context' };
const call = (model: string) =>
  new LlmClient(
    loadConfig({
      GROQ_API_KEY: 'gsk_x',
      GROQ_BASE_URL: base,
      GROQ_MODEL: model,
      GROQ_PLAN: 'unlimited',
      LLM_MAX_RETRIES: '0',
      LLM_TIMEOUT: '2',
    }),
    { log: () => undefined, backoff: { baseMs: 10, capMs: 20 } },
  ).json({ system: 'Judge. Reply in JSON.', user: 'the text', schema: checkResultSchemas.hallucination, schemaName: 'hallucination' });

async function failure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await within(p, 6000);
  } catch (e) {
    if (e instanceof ApplicationFailure) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

describe('a reasoning block before the answer', () => {
  const thinking = 'The user wants {"score": 1}? No: the claim "X is Y" is in the context. </thinking> so score 0.2';
  for (const [name, reply] of [
    ['JSON after it', `<think>\n${thinking}\n</think>\n\n${JSON.stringify(GOOD)}`],
    ['a fenced answer after it', `<think>${thinking}</think>\n\`\`\`json\n${JSON.stringify(GOOD)}\n\`\`\``],
    ['blanks and another case', `\n  <THINK>${thinking}</Think>${JSON.stringify(GOOD)}`],
  ] as const) {
    it(`is skipped: ${name}`, async () => {
      content = reply;
      finish = 'stop';
      // A model with a response format (strict) and one without (plain: an unknown model falls back).
      const r = await within(call('deepseek-r1-distill-llama-70b'), 4000);
      expect(r.value).toEqual(GOOD);
    });
  }

  it('reasoning with no answer after it, or never closed, is an invalid reply saying so (cut: truncated)', async () => {
    for (const [reply, fin, re] of [
      [`<think>${thinking}</think>  \n`, 'stop', /holds only the model's reasoning/],
      // Cut at the limit inside the reasoning: retried once with a larger budget, then said so.
      [`<think>${thinking}`, 'length', /was cut off at its completion limit/],
    ] as const) {
      content = reply;
      finish = fin;
      const f = await failure(call('openai/gpt-oss-20b'));
      expect(f.message).toMatch(re);
    }
  });

  it('a <think> that is not at the start is part of the answer (no verdict is taken from after it)', async () => {
    content = `Here is my verdict <think>x</think> ${JSON.stringify(GOOD)}`;
    finish = 'stop';
    const f = await failure(call('openai/gpt-oss-20b'));
    expect(f.message).toMatch(/not valid JSON/);
  });

  it('a block of 2 MB of reasoning is read in linear time', async () => {
    content = `<think>${'<think> '.repeat(250_000)}</think>${JSON.stringify(GOOD)}`;
    finish = 'stop';
    const r = await within(call('openai/gpt-oss-20b'), 4000);
    expect(r.value).toEqual(GOOD);
  });
});
