// `new --install`: npm install and npm run build in the new project, each a progress step, their output shown only when one fails.
import { spawn } from 'node:child_process'
import type { Progress } from './progress.js'

/** The most of a failed step's output that is printed (its end, where npm says what went wrong). */
const SHOWN_OUTPUT_CHARS = 8000

/** The npm commands `--install` runs, in order. */
export const INSTALL_STEPS: readonly (readonly string[])[] = [['install'], ['run', 'build']]

interface StepResult {
  readonly code: number
  readonly output: string
}

/** Runs `npm <args>` in `dir`, its stdout and stderr kept (interleaved) instead of printed. */
function npm(dir: string, args: readonly string[]): Promise<StepResult> {
  return new Promise((resolve) => {
    // npm is npm.cmd on Windows, which only a shell starts.
    const child = spawn('npm', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' })
    const chunks: string[] = []
    child.stdout.setEncoding('utf8').on('data', (text: string) => chunks.push(text))
    child.stderr.setEncoding('utf8').on('data', (text: string) => chunks.push(text))
    child.on('error', (error) => resolve({ code: 127, output: `cannot start npm: ${error.message}\n` }))
    child.on('close', (code) => resolve({ code: code ?? 1, output: chunks.join('') }))
  })
}

/**
 * Runs the install steps in `dir`, stopping at the first that fails: 0 when all passed, else 1
 * after printing which step failed and the end of its output on stderr.
 */
export async function installSteps(dir: string, progress: Progress): Promise<number> {
  for (const args of INSTALL_STEPS) {
    const command = `npm ${args.join(' ')}`
    progress.step(command, { timed: true })
    const { code, output } = await npm(dir, args)
    if (code !== 0) {
      progress.fail()
      process.stderr.write(`${output.slice(-SHOWN_OUTPUT_CHARS)}${output.endsWith('\n') || output === '' ? '' : '\n'}`)
      process.stderr.write(`capsule-host: ${command} failed (exit ${code}) in ${dir}\n`)
      return 1
    }
  }
  progress.done()
  return 0
}
