// @ts-check
// bench/stats.mjs: what the benchmark's sections share: percentiles, ratios, spread, CPU and RSS sampling, the load of other processes, tables.

import os from 'node:os'
import v8 from 'node:v8'
import vm from 'node:vm'
import { median } from './common.mjs'

/** The q-quantile of `samples` (nearest rank). @param {ArrayLike<number>} samples @param {number} q */
export function quantile(samples, q) {
  const sorted = Float64Array.from(samples).sort()
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

/** Relative spread of values: (max - min) / median of the middle half (the interquartile range), 0 for one value. @param {number[]} values */
export function relativeSpread(values) {
  if (values.length < 2) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const q1 = sorted[Math.floor((sorted.length - 1) / 4)]
  const q3 = sorted[Math.ceil(((sorted.length - 1) * 3) / 4)]
  return (q3 - q1) / median(sorted)
}

export const fixed = (/** @type {number} */ n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
export const ratio = (/** @type {number} */ n) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–')
export const range = (/** @type {number[]} */ xs, digits = 2) => (xs.length === 0 ? '–' : `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`)

/** CPU time of the whole process (every thread) in µs, user + system. */
export function cpuMicros() {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** Forces a full GC when the flag can be set at run time, so each memory sample starts level. */
export const collect = (() => {
  try {
    v8.setFlagsFromString('--expose-gc')
    const gc = vm.runInNewContext('gc')
    if (typeof gc === 'function') return () => gc()
  } catch {}
  return () => {}
})()

/** Samples the process RSS (every thread and native memory) every `everyMs` until stopped; `stop()` gives the peak growth in bytes. */
export function rssSampler(everyMs = 5) {
  const start = process.memoryUsage.rss()
  let peak = start
  const sample = () => {
    const rss = process.memoryUsage.rss()
    if (rss > peak) peak = rss
  }
  const timer = setInterval(sample, everyMs)
  return {
    stop() {
      clearInterval(timer)
      sample()
      return peak - start
    },
  }
}

/**
 * The load other processes put on the machine during a section: the 1-minute load average at
 * its start and end, and the CPU the machine spent outside this process per wall second
 * (from os.cpus(), in cores), which is what skews every number here.
 */
export function otherLoad() {
  const busy = () => os.cpus().reduce((sum, cpu) => sum + cpu.times.user + cpu.times.sys + cpu.times.nice + cpu.times.irq, 0)
  const began = { at: performance.now(), machine: busy(), own: cpuMicros(), load: os.loadavg()[0] }
  return () => {
    const seconds = (performance.now() - began.at) / 1000
    const machineCores = (busy() - began.machine) / 1000 / seconds
    const ownCores = (cpuMicros() - began.own) / 1e6 / seconds
    return `load average ${fixed(began.load, 2)} → ${fixed(os.loadavg()[0], 2)}; other processes used ${fixed(Math.max(0, machineCores - ownCores), 2)} of ${os.availableParallelism()} cores`
  }
}

/** A markdown table; the first two columns are left-aligned. @param {string[]} header @param {string[][]} rows */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  const line = (/** @type {string[]} */ cells) => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (i < 2 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`
  return [line(header), rule, ...rows.map(line)].join('\n')
}
