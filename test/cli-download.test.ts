// The CLI's progress for the module downloads it makes: drawn on a terminal from the download channel, nothing in a pipe.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { downloadedText, withDownloadProgress } from '../src/cli/download-progress.js'
import { progressOn } from '../src/cli/progress.js'
import { readWasm } from '../src/runtime/modules.js'
import { capsulePath } from './helpers/capsules.js'
import { hasScript } from './helpers/pty.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url))
const MiB = 1024 * 1024
const PROBE = readFileSync(capsulePath('probe'))

let server: TestServer
beforeAll(async () => {
  server = await startServer((req, res) => {
    if (req.url === '/probe.wasm') return void res.writeHead(200, { 'content-length': PROBE.byteLength }).end(PROBE)
    // 3 MiB in 1 MiB writes, without a declared length (chunked).
    if (req.url === '/chunked') {
      res.writeHead(200)
      for (let i = 0; i < 3; i++) res.write(Buffer.alloc(MiB, i))
      return void res.end()
    }
    // 1 MiB of a declared 3 MiB, then the connection is cut.
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': 3 * MiB })
      return void res.write(Buffer.alloc(MiB), () => res.destroy())
    }
    res.writeHead(404).end()
  })
})
afterAll(closeAllServers)


describe('download progress', () => {
  test('the step text: bytes so far, and of the declared length when there is one', () => {
    expect(downloadedText({ url: 'http://h/x.wasm', received: 0, total: 3 * MiB, done: false })).toBe('download http://h/x.wasm (0.0 of 3.0 MiB)')
    expect(downloadedText({ url: 'http://h/x.wasm', received: 1.5 * MiB, total: undefined, done: false })).toBe('download http://h/x.wasm (1.5 MiB)')
  })

  test('a real download on a terminal: one timed step, its bytes as they come, ✓ at the end', async () => {
    const written: string[] = []
    const progress = progressOn({ isTTY: true, write: (text: string) => written.push(text) }, { NO_COLOR: '1' })
    const url = `http://127.0.0.1:${server.port}/chunked`
    const bytes = await withDownloadProgress(progress, () => readWasm(url))
    expect(bytes.byteLength).toBe(3 * MiB)
    expect(written[0]).toBe(`\r\x1b[2K… download ${url} (0.0 MiB) (0 s)`)
    expect(written.at(-1)).toBe(`\r\x1b[2K✓ download ${url} (3.0 MiB) (0 s)\n`)
    // Every line in between redraws the same step with more bytes, never fewer.
    const shown = written.slice(1, -1).map((line) => Number(/\((\d+\.\d) MiB\)/.exec(line)?.[1]))
    expect(shown.length).toBeGreaterThan(0)
    expect(shown).toEqual([...shown].sort((a, b) => a - b))
  })

  test('a download cut short marks its step ✗ and passes the error on', async () => {
    const written: string[] = []
    const progress = progressOn({ isTTY: true, write: (text: string) => written.push(text) }, { NO_COLOR: '1' })
    const url = `http://127.0.0.1:${server.port}/cut`
    await expect(withDownloadProgress(progress, () => readWasm(url))).rejects.toMatchObject({ code: 'load_failed' })
    expect(written.at(-1)).toMatch(new RegExp(`^\\r\\x1b\\[2K✗ download ${url.replaceAll('.', '\\.')} \\(\\d\\.\\d of 3\\.0 MiB\\) \\(0 s\\)\\n$`))
  })

  test('an error after a finished download leaves its ✓ line as it was', async () => {
    const written: string[] = []
    const progress = progressOn({ isTTY: true, write: (text: string) => written.push(text) }, { NO_COLOR: '1' })
    const work = async () => {
      await readWasm(`http://127.0.0.1:${server.port}/chunked`)
      throw new Error('the load failed after the download')
    }
    await expect(withDownloadProgress(progress, work)).rejects.toThrow('the load failed after the download')
    expect(written.at(-1)).toMatch(/^\r\x1b\[2K✓ download /)
  })

  test('the CLI in a pipe: a module by URL runs and stderr holds no progress', async () => {
    const url = `http://127.0.0.1:${server.port}/probe.wasm`
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'run', url, 'echo', '--input', 'hi'], { timeout: 20_000 }, (error, out, err) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout: out, stderr: err }),
      )
    })
    expect(code).toBe(0)
    expect(stdout).toBe('hi')
    expect(stderr).not.toContain('download')
    expect(stderr).not.toContain('\x1b')
  })

  test.skipIf(!hasScript())('the CLI on a terminal (script(1) gives it a pty): the download is a ✓ line before the output', async () => {
    const url = `http://127.0.0.1:${server.port}/probe.wasm`
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} run ${url} echo --input hi`
    // Not execFileSync: the server answering the download runs in this process.
    const out = await new Promise<string>((resolve, reject) => {
      execFile('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 20_000 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      )
    })
    const size = (PROBE.byteLength / MiB).toFixed(1)
    expect(out).toContain(`✓ download ${url} (${size} of ${size} MiB)`)
    expect(out.indexOf('✓ download')).toBeLessThan(out.lastIndexOf('hi'))
  })
})
