// Progress lines for work the CLI does itself: drawn on a terminal (stderr), and nothing at all in a pipe.
/** Where progress goes: stderr, or a test's stand-in. */
export interface ProgressStream {
  readonly isTTY?: boolean
  write(text: string): unknown
}

/** Steps of one piece of work. Each `step` is shown until the next one (or `done`) replaces it. */
export interface Progress {
  /** Shows that `text` is under way; with `timed`, the seconds it has taken are counted on its line. */
  step(text: string, options?: { timed?: boolean }): void
  /** Replaces the current step's text (a download's bytes so far), keeping its clock. */
  update(text: string): void
  /** Marks the current step finished. */
  done(): void
  /** Marks the current step failed. */
  fail(): void
}

const QUIET: Progress = { step() {}, update() {}, done() {}, fail() {} }

/** Erase the line and go back to its start. */
const CLEAR_LINE = '\r\x1b[2K'
/** How often a timed step's line is drawn again. */
const TICK_MS = 1000

function paint(code: number, text: string, colour: boolean): string {
  return colour ? `\x1b[${code}m${text}\x1b[0m` : text
}

/** The step on screen: its text, and for a timed one its start and redraw timer. */
interface Current {
  readonly text: string
  readonly started: number
  readonly timer: NodeJS.Timeout | undefined
}

/**
 * Progress on `stream` when it is a terminal; otherwise (a pipe, a file, CI logs) nothing, so
 * scripts read only the command's output. NO_COLOR set to anything but "" (no-color.org) keeps the
 * lines and drops colour.
 */
export function progressOn(stream: ProgressStream, env: NodeJS.ProcessEnv = process.env): Progress {
  if (!stream.isTTY) return QUIET
  const colour = !env.NO_COLOR
  let current: Current | undefined
  const seconds = (step: Current) => Math.floor((Date.now() - step.started) / 1000)
  const draw = (step: Current) =>
    stream.write(`${CLEAR_LINE}${paint(2, '…', colour)} ${step.text}${step.timer ? paint(2, ` (${seconds(step)} s)`, colour) : ''}`)
  const settle = (mark: string) => {
    if (current === undefined) return
    clearInterval(current.timer)
    stream.write(`${CLEAR_LINE}${mark} ${current.text}${current.timer ? ` (${seconds(current)} s)` : ''}\n`)
    current = undefined
  }
  return {
    step(text, options) {
      settle(paint(32, '✓', colour))
      // The timer never keeps the process alive on its own.
      const timer = options?.timed ? setInterval(() => current && draw(current), TICK_MS).unref() : undefined
      current = { text, started: Date.now(), timer }
      draw(current)
    },
    update(text) {
      if (current === undefined || current.text === text) return
      current = { ...current, text }
      draw(current)
    },
    done() {
      settle(paint(32, '✓', colour))
    },
    fail() {
      settle(paint(31, '✗', colour))
    },
  }
}
