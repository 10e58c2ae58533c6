// The AssemblyScript SDK's list of host error codes is the host's ERROR_CODES, and its stream reply tags the host's STREAM_NEXT_TAG, read from the SDK's source.
import { readdirSync, readFileSync } from 'node:fs'
import { expect, test } from 'vitest'
import { ERROR_CODES } from '../src/errors.js'
import { STREAM_NEXT_TAG } from '../src/wire/schemas.js'

const sdk = new URL('../capsules/sdk/', import.meta.url)
const sources = readdirSync(sdk)
  .filter((name) => name.endsWith('.ts'))
  .map((name) => ({ name, text: readFileSync(new URL(name, sdk), 'utf8') }))

const LIST = /export const HOST_ERROR_CODES: StaticArray<string> = \[([^\]]*)\];/g

test('the SDK declares one list of host error codes, and it is ERROR_CODES in order', () => {
  const lists = sources.flatMap(({ name, text }) => [...text.matchAll(LIST)].map((m) => ({ name, body: m[1]! })))
  expect(lists.map((l) => l.name), 'capsules/sdk should declare HOST_ERROR_CODES exactly once').toEqual(['http.ts'])
  const codes = [...lists[0]!.body.matchAll(/"([^"]*)"/g)].map((m) => m[1])
  expect(codes, 'capsules/sdk/http.ts HOST_ERROR_CODES must list src/errors.ts ERROR_CODES, in order').toEqual([...ERROR_CODES])
  expect(codes).toContain('internal')
})

test("the SDK's own invalid_reply is not a wire code", () => {
  const http = sources.find((s) => s.name === 'http.ts')!.text
  expect(http).toMatch(/^export const INVALID_REPLY = "invalid_reply";$/m)
  expect(ERROR_CODES as readonly string[]).not.toContain('invalid_reply')
})

test("the SDK's http_stream_next tags are the host's STREAM_NEXT_TAG", () => {
  const http = sources.find((s) => s.name === 'http.ts')!.text
  const tags = Object.fromEntries([...http.matchAll(/^export const STREAM_(DATA|END|ERROR): u8 = (\d+);$/gm)].map((m) => [m[1]!.toLowerCase(), Number(m[2])]))
  expect(tags, 'capsules/sdk/http.ts STREAM_DATA, STREAM_END and STREAM_ERROR must be src/wire/schemas.ts STREAM_NEXT_TAG').toEqual({ ...STREAM_NEXT_TAG })
})
