// Progress lines for work the CLI does itself: drawn on a terminal (stderr), and nothing at all in a pipe.
/** Where progress goes: stderr, or a test's stand-in. */
export interface ProgressStream {
  readonly isTTY?: boolean
  write(text: string): unknown
}

/** Steps of one piece of work. Each `step` is shown until the next one (or `done`) replaces it. */
export interface Progress {
  /** Shows that `text` is under way. */
  step(text: string): void
  /** Marks the current step finished. */
  done(): void
  /** Marks the current step failed. */
  fail(): void
}

const QUIET: Progress = { step() {}, done() {}, fail() {} }

/** Erase the line and go back to its start. */
const CLEAR_LINE = '\r\x1b[2K'

function paint(code: number, text: string, colour: boolean): string {
  return colour ? `\x1b[${code}m${text}\x1b[0m` : text
}

/**
 * Progress on `stream` when it is a terminal; otherwise (a pipe, a file, CI logs) nothing, so
 * scripts read only the command's output. NO_COLOR (any value) keeps the lines and drops colour.
 */
export function progressOn(stream: ProgressStream, env: NodeJS.ProcessEnv = process.env): Progress {
  if (!stream.isTTY) return QUIET
  const colour = env.NO_COLOR === undefined
  let current: string | undefined
  const settle = (mark: string) => {
    if (current !== undefined) stream.write(`${CLEAR_LINE}${mark} ${current}\n`)
    current = undefined
  }
  return {
    step(text) {
      settle(paint(32, '✓', colour))
      current = text
      stream.write(`${CLEAR_LINE}${paint(2, '…', colour)} ${text}`)
    },
    done() {
      settle(paint(32, '✓', colour))
    },
    fail() {
      settle(paint(31, '✗', colour))
    },
  }
}
