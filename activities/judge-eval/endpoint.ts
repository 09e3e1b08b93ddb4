/**
 * Any OpenAI-compatible server as the judge's endpoint.
 *
 * The LLM client (activities/llm/client.ts) is built on groq-sdk, which sends chat completions to
 * `<GROQ_BASE_URL>/openai/v1/chat/completions`: GROQ_BASE_URL is a host such as
 * https://api.groq.com, not an OpenAI base path. Other servers document an OpenAI base path
 * instead (`http://localhost:8000/v1` for vLLM, `https://api.openai.com/v1`), to which clients
 * append `/chat/completions`. `openAiBaseFetch(base)` lets the same client talk to such a base:
 * with GROQ_BASE_URL set to the base itself, it rewrites `<base>/openai/v1/...` to `<base>/...`.
 * Groq's own base path, https://api.groq.com/openai/v1, works the same way.
 */

/** Why `url` cannot be an OpenAI base path, or undefined. */
export function openAiBaseProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'must be an http:// or https:// URL';
  if (u.username || u.password) return 'must not hold credentials (user:password@): the key goes in GROQ_API_KEY';
  if (u.search || u.hash) return 'must not have a query or a fragment';
  return undefined;
}

/**
 * The base path as the configuration normalises it (no trailing slash; the run of them is matched
 * from its start, since `\/+$` took quadratic time on a path of slashes).
 */
export function normaliseBase(url: string): string {
  return new URL(url).toString().replace(/(?<!\/)\/+$/, '');
}

const GROQ_PATH = '/openai/v1/';

/** A fetch that sends groq-sdk's requests under `base` to the same paths below `base` without `/openai/v1`. */
export function openAiBaseFetch(base: string, inner: typeof fetch = fetch): typeof fetch {
  const prefix = `${normaliseBase(base)}${GROQ_PATH}`;
  const to = `${normaliseBase(base)}/`;
  const rewrite = (u: string) => (u.startsWith(prefix) ? to + u.slice(prefix.length) : u);
  return ((input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
    if (typeof input === 'string') return inner(rewrite(input), init);
    if (input instanceof URL) return inner(rewrite(input.toString()), init);
    const next = rewrite(input.url);
    return inner(next === input.url ? input : new Request(next, input), init);
  }) as typeof fetch;
}
