// `run --summary`: one screen that lists a call's requests (decision, status, bytes, time, URL), cut to the terminal's width.
import type { AuditEvent } from '../audit.js'
import { safeText } from '../safe-text.js'

/** What a summary needs of where it is printed: the terminal's size, when it is one. */
export interface Screen {
  readonly columns?: number | undefined
  readonly rows?: number | undefined
}

/** Width used when the output is not a terminal and COLUMNS does not say. */
export const PIPE_COLUMNS = 100
/** Rows used when the output is not a terminal and LINES does not say. */
export const PIPE_ROWS = 40
/** Lines the table takes besides its request rows: the header, the rule under it, the total. */
const FRAME_LINES = 3

type Row = readonly [decision: string, status: string, bytes: string, time: string, url: string]

const HEADER: Row = ['decision', 'status', 'bytes', 'time', 'url']

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(1)} MiB`
}

function rowOf(e: AuditEvent): Row {
  const decision = e.allowed ? 'allowed' : 'refused'
  const status = e.code ?? (e.status === undefined ? '-' : String(e.status))
  const url = `${e.method ?? '-'} ${safeText(e.url ?? '-')}${e.kind === 'stream' ? ' (stream)' : ''}`
  return [decision, status, bytes(e.bytesIn), `${e.durationMs} ms`, url]
}

/** A line no wider than `width` characters: cut with "…" when longer. */
function fit(line: string, width: number): string {
  return line.length <= width ? line : `${line.slice(0, Math.max(0, width - 1))}…`
}

function layout(rows: readonly Row[]): string[] {
  const widths = HEADER.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  // Numbers line up on the right; words and the URL (last, unpadded) on the left.
  return rows.map((row) =>
    row.map((cell, column) => (column === 4 ? cell : column === 2 || column === 3 ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!))).join('  '),
  )
}

function totals(events: readonly AuditEvent[]): string {
  const refused = events.filter((e) => !e.allowed).length
  const failed = events.filter((e) => e.allowed && e.code !== undefined).length
  const bytesIn = events.reduce((sum, e) => sum + e.bytesIn, 0)
  return `${events.length} request${events.length === 1 ? '' : 's'}: ${events.length - refused - failed} answered, ${failed} failed, ${refused} refused; ${bytes(bytesIn)} in`
}

/**
 * The table's lines: a header, one row per request in the order they ended, and a total. It fits
 * one screen: with more requests than `rows` leaves room for, the last rows give way to a line
 * saying how many were left out. URLs are the audit event's (query replaced by `?…`).
 */
export function summaryLines(events: readonly AuditEvent[], screen: Screen): string[] {
  const width = Math.max(20, screen.columns ?? PIPE_COLUMNS)
  const room = Math.max(1, (screen.rows ?? PIPE_ROWS) - FRAME_LINES - 1)
  const shown = events.length > room ? events.slice(0, room - 1) : events
  const [header, ...body] = layout([HEADER, ...shown.map(rowOf)])
  const hidden = events.length - shown.length
  const lines = [header!, '-'.repeat(Math.min(width, header!.length)), ...body]
  if (hidden > 0) lines.push(`… ${hidden} more request${hidden === 1 ? '' : 's'} (see --verbose for every event)`)
  lines.push(totals(events))
  return lines.map((line) => fit(line, width))
}

/** The screen of a stream: its own size when it is a terminal, else COLUMNS and LINES from the environment. */
export function screenOf(stream: { isTTY?: boolean; columns?: number; rows?: number }, env: NodeJS.ProcessEnv): Screen {
  if (stream.isTTY) return { columns: stream.columns, rows: stream.rows }
  const fromEnv = (value: string | undefined) => (value !== undefined && /^\d+$/.test(value) && Number(value) > 0 ? Number(value) : undefined)
  return { columns: fromEnv(env.COLUMNS), rows: fromEnv(env.LINES) }
}
