// Checks capMemory: a capped module's memory cannot grow past the limit, and bad shapes are refused.
import { expect, test } from 'vitest'
import { capMemory, ModuleShapeError } from '../src/runtime/memory-cap.js'
import { tinyModule } from './helpers/wasm.js'

const PAGE = 64 * 1024

/** Instantiates a capped module and returns how many pages its memory can reach. */
function reachablePages(memory: { min: number; max?: number }, limitBytes: number): number {
  const capped = capMemory(tinyModule({ memory, exports: ['f'], exportMemory: true }), limitBytes)
  const exported = new WebAssembly.Instance(new WebAssembly.Module(capped as Uint8Array<ArrayBuffer>)).exports.memory as WebAssembly.Memory
  for (;;) {
    try {
      exported.grow(1)
    } catch {
      return exported.buffer.byteLength / PAGE
    }
  }
}

test.each<[string, { min: number; max?: number }, number, number]>([
  ['no maximum: grows to the limit', { min: 1 }, 4 * PAGE, 4],
  ['a larger maximum is lowered to the limit', { min: 1, max: 100 }, 4 * PAGE, 4],
  ['a smaller maximum is kept', { min: 1, max: 2 }, 4 * PAGE, 2],
  ['initial size exactly at the limit', { min: 4 }, 4 * PAGE, 4],
  ['a limit that is not a whole page rounds down', { min: 1 }, 4 * PAGE + 100, 4],
  ['a limit under one page allows one page', { min: 0 }, 100, 1],
])('%s', (_name, memory, limit, pages) => {
  expect(reachablePages(memory, limit)).toBe(pages)
})

test('an uncapped module grows past what the capped one can reach', () => {
  const exported = new WebAssembly.Instance(new WebAssembly.Module(tinyModule({ memory: { min: 1 }, exportMemory: true }))).exports
    .memory as WebAssembly.Memory
  exported.grow(10)
  expect(exported.buffer.byteLength).toBe(11 * PAGE)
})

test('a module without memory is unchanged', () => {
  const bytes = tinyModule({ exports: ['f'] })
  expect(Buffer.from(capMemory(bytes, PAGE))).toEqual(Buffer.from(bytes))
})

test('an initial size over the limit is refused', () => {
  expect(() => capMemory(tinyModule({ memory: { min: 5 } }), 4 * PAGE)).toThrow(ModuleShapeError)
})

test.each([
  ['not wasm', Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])],
  ['empty', new Uint8Array(0)],
  ['truncated section', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 10, 1])],
])('%s is refused', (_name, bytes) => {
  expect(() => capMemory(bytes, PAGE)).toThrow(ModuleShapeError)
})

test('the other sections survive: exports and imports are intact', () => {
  const capped = capMemory(tinyModule({ imports: [['extism:host/env', 'alloc']], memory: { min: 1, max: 9 }, exports: ['a', 'b'] }), 2 * PAGE)
  const module = new WebAssembly.Module(capped)
  expect(WebAssembly.Module.exports(module).map((e) => e.name)).toEqual(['a', 'b'])
  expect(WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`)).toEqual(['extism:host/env.alloc'])
})
