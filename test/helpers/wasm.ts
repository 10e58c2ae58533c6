// Builds tiny Wasm modules byte by byte, for tests of module loading and module bounds.

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

/** Signed LEB128 of a small integer (enough for i32.const operands). */
function s32(value: number): number[] {
  const out: number[] = []
  for (;;) {
    const byte = value & 0x7f
    value >>= 7
    if ((value === 0 && (byte & 0x40) === 0) || (value === -1 && (byte & 0x40) !== 0)) return [...out, byte]
    out.push(byte | 0x80)
  }
}

const name = (text: string) => [...u32(text.length), ...Buffer.from(text)]
const section = (id: number, content: number[]) => [id, ...u32(content.length), ...content]
const vector = (items: number[][]) => [...u32(items.length), ...items.flat()]
const limits = (min: number, max: number | undefined, flags = 0) =>
  max === undefined ? [flags, ...u32(min)] : [flags | 0x01, ...u32(min), ...u32(max)]

const FUNCREF = 0x70
const EXTERNREF = 0x6f
/** Constant expressions: `ref.null func`, `i32.const 0`. */
export const REF_NULL_FUNC = [0xd0, FUNCREF, 0x0b]
export const I32_ZERO = [0x41, 0x00, 0x0b]

/** Reference types a table can hold; the `ref` forms are written as 0x63/0x64 + heap type. */
export type TableRef = 'funcref' | 'externref' | 'ref null func' | 'ref func'
const REFTYPES: Record<TableRef, number[]> = {
  funcref: [FUNCREF],
  externref: [EXTERNREF],
  'ref null func': [0x63, FUNCREF],
  'ref func': [0x64, FUNCREF],
}

export interface TableSpec {
  min: number
  max?: number
  ref?: TableRef
  /** Write the table with an initialiser (0x40 0x00 reftype limits expr); the expression, or `ref.null`. */
  init?: number[]
  /** Set the 64-bit flag in the limits. */
  table64?: boolean
}

export interface ImportedTable extends TableSpec {
  namespace: string
  name: string
}

/** An element segment: its form (0-7) and how many entries; entries are function 0 or `ref.null func`. */
export interface ElementSpec {
  form: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7
  entries: number
  /** The table of an active segment with an explicit table index (forms 2 and 6); default 0. */
  table?: number
  /** The offset expression of an active segment; default `i32.const 0`. */
  offset?: number[]
}

/** A data segment: its form (0 active, 1 passive, 2 active with a memory index) and its size. */
export interface DataSpec {
  form: 0 | 1 | 2
  bytes: number
}

/** An exported function `() -> ()` that grows a table (or the memory) by `delta` at a time. */
export interface GrowSpec {
  export: string
  /** The table to grow; default 0. */
  table?: number
  /** Grow the memory (by `delta` pages) instead of a table. */
  memory?: boolean
  delta: number
  /**
   * `trap`: loop until table.grow returns -1, then `unreachable`. A number: call table.grow that
   * many times and ignore what it returns.
   */
  until: 'trap' | number
}

export interface TinyModule {
  /** Function imports, each `[namespace, name]`, all of type `() -> ()`. */
  imports?: Array<[string, string]>
  importTables?: ImportedTable[]
  /** Imports of other kinds: `[namespace, name, kind byte, ...description]`. */
  importsRaw?: Array<[string, string, ...number[]]>
  /** Linear memory in pages: `{ min, max? }`; omitted for none. */
  memory?: { min: number; max?: number; flags?: number }
  /** More memories after the first (multi-memory). */
  extraMemories?: number
  tables?: TableSpec[]
  /** How many `i32` globals (immutable, `i32.const 0`). */
  globals?: number
  /** How many tags of type `() -> ()`. */
  tags?: number
  elements?: ElementSpec[]
  data?: DataSpec[]
  /** Raw type entries added after the function type `() -> ()` (type 0), such as GC types. */
  extraTypes?: number[][]
  /** Names of exported functions `() -> ()` whose body does nothing. */
  exports?: string[]
  /** Export the memory as "memory". */
  exportMemory?: boolean
  /** Other exports: `[name, kind byte, index]`. */
  exportsRaw?: Array<[string, number, number]>
  /** Exported functions that grow tables. */
  grow?: GrowSpec[]
  /** Add a start function that loops forever (it runs while the module is instantiated). */
  startLoops?: boolean
  /** Add a start function that traps (`unreachable`). */
  startTraps?: boolean
}

function tableType(spec: TableSpec): number[] {
  const type = [...REFTYPES[spec.ref ?? 'funcref'], ...limits(spec.min, spec.max, spec.table64 ? 0x04 : 0)]
  return spec.init ? [0x40, 0x00, ...type, ...spec.init] : type
}

function importSection({ imports = [], importTables = [], importsRaw = [] }: TinyModule): number[] {
  const entries = [
    ...imports.map(([ns, n]) => [...name(ns), ...name(n), 0x00, 0x00]),
    ...importTables.map((t) => [...name(t.namespace), ...name(t.name), 0x01, ...tableType(t)]),
    ...importsRaw.map(([ns, n, ...description]) => [...name(ns), ...name(n), ...description]),
  ]
  return entries.length ? section(2, vector(entries)) : []
}

function elementSegment({ form, entries, table = 0, offset = I32_ZERO }: ElementSpec): number[] {
  const indices = vector(Array.from({ length: entries }, () => [0x00]))
  const expressions = vector(Array.from({ length: entries }, () => REF_NULL_FUNC))
  const byForm: Record<ElementSpec['form'], number[]> = {
    0: [...offset, ...indices],
    1: [0x00, ...indices],
    2: [...u32(table), ...offset, 0x00, ...indices],
    3: [0x00, ...indices],
    4: [...offset, ...expressions],
    5: [FUNCREF, ...expressions],
    6: [...u32(table), ...offset, FUNCREF, ...expressions],
    7: [FUNCREF, ...expressions],
  }
  return [form, ...byForm[form]]
}

function dataSegment({ form, bytes }: DataSpec): number[] {
  const content = [...u32(bytes), ...Array<number>(bytes).fill(0x2a)]
  if (form === 0) return [0x00, ...I32_ZERO, ...content]
  if (form === 1) return [0x01, ...content]
  return [0x02, 0x00, ...I32_ZERO, ...content]
}

/** The body of a GrowSpec function: a loop around `table.grow` (with a null reference) or `memory.grow`. */
function growBody({ table = 0, memory = false, delta, until }: GrowSpec, ref: TableRef): number[] {
  const nullRef = [0xd0, ref === 'externref' ? EXTERNREF : FUNCREF]
  const grow = memory ? [0x41, ...s32(delta), 0x40, 0x00] : [...nullRef, 0x41, ...s32(delta), 0xfc, 0x0f, ...u32(table)]
  if (until === 'trap') {
    // loop { if (table.grow(null, delta) == -1) unreachable; br 0 }
    return [0x00, 0x03, 0x40, ...grow, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x00, 0x0b, 0x0c, 0x00, 0x0b, 0x0b]
  }
  // one i32 local counts the calls: loop { drop(table.grow(null, delta)); if (++n < until) br 0 }
  const count = [0x20, 0x00, 0x41, 0x01, 0x6a, 0x22, 0x00, 0x41, ...s32(until), 0x49, 0x0d, 0x00]
  return [0x01, 0x01, 0x7f, 0x03, 0x40, ...grow, 0x1a, ...count, 0x0b, 0x0b]
}

function exportSection(spec: TinyModule, base: number): number[] {
  const { exports = [], grow = [], exportMemory = false, exportsRaw = [] } = spec
  const entries = [
    ...exports.map((e, i) => [...name(e), 0x00, ...u32(base + i)]),
    ...grow.map((g, i) => [...name(g.export), 0x00, ...u32(base + exports.length + i)]),
    ...(exportMemory ? [[...name('memory'), 0x02, 0]] : []),
    ...exportsRaw.map(([n, kind, index]) => [...name(n), kind, ...u32(index)]),
  ]
  return entries.length ? section(7, vector(entries)) : []
}

function memorySection({ memory, extraMemories = 0 }: TinyModule): number[] {
  if (!memory) return []
  const first = limits(memory.min, memory.max, memory.flags)
  return section(5, vector([first, ...Array.from({ length: extraMemories }, () => limits(1, 1))]))
}

/** The function bodies in index order (after the imports): exports, growers, then the start loop. */
function bodies(spec: TinyModule): number[][] {
  const { exports = [], grow = [], startLoops = false, tables = [], importTables = [] } = spec
  const refOf = (index: number) => [...importTables, ...tables][index]?.ref ?? 'funcref'
  const out = exports.map(() => [0x00, 0x0b])
  out.push(...grow.map((g) => growBody(g, refOf(g.table ?? 0))))
  // `loop br 0 end`, or `unreachable`
  if (startLoops) out.push([0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b])
  else if (spec.startTraps) out.push([0x00, 0x00, 0x0b])
  return out.map((body) => [...u32(body.length), ...body])
}

/** A module with the given imports, memories, tables, segments and functions. */
export function tinyModule(spec: TinyModule): Uint8Array<ArrayBuffer> {
  const { imports = [], tables = [], globals = 0, tags = 0, elements = [], data = [], extraTypes = [] } = spec
  const functions = bodies(spec)
  const start = spec.startLoops || spec.startTraps
  // Large sections are concatenated, never spread into a call (which has an argument limit).
  const parts: number[][] = [
    [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    section(1, vector([[0x60, 0, 0], ...extraTypes])),
    importSection(spec),
    functions.length ? section(3, vector(functions.map(() => [0]))) : [],
    tables.length ? section(4, vector(tables.map(tableType))) : [],
    memorySection(spec),
    tags ? section(13, vector(Array.from({ length: tags }, () => [0x00, 0x00]))) : [],
    globals ? section(6, vector(Array.from({ length: globals }, () => [0x7f, 0x00, ...I32_ZERO]))) : [],
    exportSection(spec, imports.length),
    start ? section(8, u32(imports.length + functions.length - 1)) : [],
    elements.length ? section(9, vector(elements.map(elementSegment))) : [],
    data.length ? section(12, u32(data.length)) : [],
    functions.length ? section(10, vector(functions)) : [],
    data.length ? section(11, vector(data.map(dataSegment))) : [],
  ]
  return Uint8Array.from(parts.flat())
}

/** The 99-byte module of issue 7: eight funcref tables of 10,000,000 entries, a memory and one function. */
export function eightHugeTables(): Uint8Array<ArrayBuffer> {
  const tables = Array.from({ length: 8 }, () => ({ min: 10_000_000 }))
  return tinyModule({ tables, memory: { min: 1 }, exportMemory: true, exports: ['call'] })
}
