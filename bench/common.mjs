// @ts-check
// bench/common.mjs: what the benchmarks share: knobs, the loopback upstream, medians, and the run's cleanup.

import { createServer } from 'node:http'
import os from 'node:os'

/** A positive whole number from the environment, or `fallback`. @param {string} name @param {number} fallback */
export function knob(name, fallback) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(raw)}`)
  return value
}

/**
 * A node:http server on 127.0.0.1, port 0, in this process.
 * @param {import('node:http').RequestListener} handler
 * @returns {Promise<{ port: number, close(): Promise<void> }>}
 */
export async function listen(handler) {
  const server = createServer(handler)
  // A keep-alive socket the server closes while undici reuses it fails that request; a long run
  // with many capsules would hit Node's 5 s default now and then.
  server.keepAliveTimeout = 60_000
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(undefined))
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the server has no port')
  return {
    port: address.port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export const median = (/** @type {number[]} */ values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The 1, 5 and 15 minute load averages, for the record of what else the machine was doing. */
export const loadAverage = () => os.loadavg().map((l) => l.toFixed(2)).join(' ')

/**
 * Runs a benchmark's `main(cleanup)`: whatever it pushes on `cleanup` is closed at the end, newest
 * first, even when it fails; a failure sets the exit code.
 * @param {(cleanup: Array<() => Promise<unknown> | unknown>) => Promise<void>} main
 */
export function runBench(main) {
  /** @type {Array<() => Promise<unknown> | unknown>} */
  const cleanup = []
  main(cleanup)
    .catch((error) => {
      console.error(error)
      process.exitCode = 1
    })
    .finally(async () => {
      for (const close of cleanup.reverse()) {
        try {
          await close()
        } catch (error) {
          console.error('cleanup failed:', error)
          process.exitCode = 1
        }
      }
    })
}
