// npm start's demo, run as a user runs it: every step passes and it exits 0 (a wire or SDK change that breaks it fails here).
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, test } from 'vitest'

const DEMO = fileURLToPath(new URL('../demo/demo.mjs', import.meta.url))

test('demo/demo.mjs: every step passes, nothing fails, exit code 0', async () => {
  const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
    const child = execFile(process.execPath, [DEMO], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 }, (error, out) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout: out }),
    )
    child.stdin?.end()
  })
  expect(stdout).toMatch(/\n\d+ passed, 0 failed\n/)
  expect(stdout).not.toMatch(/^FAIL /m)
  expect(code).toBe(0)
}, 150_000)
