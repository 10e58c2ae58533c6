// Builds tiny Wasm modules byte by byte, for tests of module loading and memory capping.

function u32(value: number): number[] {
  const out: number[] = []
  do {
    let byte = value & 0x7f
    value >>>= 7
    if (value !== 0) byte |= 0x80
    out.push(byte)
  } while (value !== 0)
  return out
}

const name = (text: string) => [...u32(text.length), ...Buffer.from(text)]
const section = (id: number, content: number[]) => [id, ...u32(content.length), ...content]

export interface TinyModule {
  /** Function imports, each `[namespace, name]`, all of type `() -> ()`. */
  imports?: Array<[string, string]>
  /** Linear memory in pages: `{ min, max? }`; omitted for none. */
  memory?: { min: number; max?: number }
  /** Names of exported functions `() -> ()` whose body does nothing. */
  exports?: string[]
  /** Export the memory as "memory". */
  exportMemory?: boolean
  /** Add a start function that loops forever (it runs while the module is instantiated). */
  startLoops?: boolean
}

/** A module with the given imports, memory and empty exported functions. */
export function tinyModule({ imports = [], memory, exports = [], exportMemory = false, startLoops = false }: TinyModule): Uint8Array<ArrayBuffer> {
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]
  bytes.push(...section(1, [1, 0x60, 0, 0]))
  if (imports.length) bytes.push(...section(2, [...u32(imports.length), ...imports.flatMap(([ns, n]) => [...name(ns), ...name(n), 0x00, 0x00])]))
  const functions = exports.length + (startLoops ? 1 : 0)
  if (functions) bytes.push(...section(3, [...u32(functions), ...Array<number>(functions).fill(0)]))
  if (memory) {
    const limits = memory.max === undefined ? [0x00, ...u32(memory.min)] : [0x01, ...u32(memory.min), ...u32(memory.max)]
    bytes.push(...section(5, [1, ...limits]))
  }
  const base = imports.length
  const entries = exports.flatMap((e, i) => [...name(e), 0x00, ...u32(base + i)])
  if (exportMemory) entries.push(...name('memory'), 0x02, 0)
  const count = exports.length + (exportMemory ? 1 : 0)
  if (count) bytes.push(...section(7, [...u32(count), ...entries]))
  // The start function comes after the exported ones: `loop br 0 end`.
  if (startLoops) bytes.push(...section(8, u32(base + exports.length)))
  const bodies = exports.map(() => [2, 0, 0x0b])
  if (startLoops) bodies.push([7, 0, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b])
  if (functions) bytes.push(...section(10, [...u32(functions), ...bodies.flat()]))
  return Uint8Array.from(bytes)
}
