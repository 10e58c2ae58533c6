// `capsule-host explain <url>`: what the rules decide for a request, printed without connecting.
import type { Explanation } from '../safe-fetch.js'
import { safeText } from '../safe-text.js'
import { createFetch, loadApi } from './api.js'
import { FETCH_FLAG_OPTIONS, fetchOptions } from './fetch-flags.js'
import { parse, print, usage, UsageError } from './usage.js'

const OPTIONS = {
  ...FETCH_FLAG_OPTIONS,
  method: { type: 'string' },
  json: { type: 'boolean' },
} as const


function decisionLines(method: string, url: string, decision: Explanation): string[] {
  return [
    `${decision.allowed ? 'allowed' : 'refused'}${decision.code ? ` (${decision.code})` : ''}: ${method} ${url}`,
    `decided by: ${decision.decidedBy ?? '-'}`,
    ...(decision.route ? [`route: ${decision.route}`] : []),
    ...(decision.reason ? [`reason: ${decision.reason}`] : []),
    ...(decision.detail ? [`detail: ${safeText(decision.detail)}`] : []),
    ...(decision.addresses ?? []).map(
      (a) => `address: ${a.address} (${a.class})${a.embedded ? `, embeds ${a.embedded.map((e) => `${e.address} (${e.class})`).join(', ')}` : ''}`,
    ),
  ]
}

export async function explain(args: string[]): Promise<number> {
  const { values, positionals } = parse(OPTIONS, args)
  if (values.help) return print(usage('explain'))
  const [url, ...extra] = positionals
  if (!url || extra.length) throw new UsageError('explain needs exactly one URL')
  const api = await loadApi()
  const fetch = createFetch(api, fetchOptions(values))
  const method = (values.method ?? 'GET').toUpperCase()
  const decision = await fetch.explain({ url, method }, { capsuleId: 'cli' })
  await fetch.close()
  if (values.json) process.stdout.write(`${JSON.stringify({ method, url, ...decision })}\n`)
  else process.stdout.write(`${decisionLines(method, url, decision).join('\n')}\n`)
  return decision.allowed ? 0 : 1
}
