// Bounds everything a Wasm module's declarations make the engine allocate, before it exists: reads the sections once, refuses what is over a bound and rewrites the maxima of memories and tables.

const WASM_PAGE = 64 * 1024
const SECTION = { custom: 0, type: 1, import: 2, table: 4, memory: 5, global: 6, export: 7, element: 9, data: 11, tag: 13 } as const
/** The order non-custom sections must come in; an export section is inserted at its place. */
const SECTION_ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11]

/** Export names the module may not use: the rewrite adds its own exports under this prefix. */
export const RESERVED_EXPORT_PREFIX = 'capsule-host:'
/** `capsule-host:table:<index>:<maximum>`: a table whose maximum the rewrite set or lowered. */
const TABLE_EXPORT = `${RESERVED_EXPORT_PREFIX}table:`

/*
 * Why these bounds. V8 keeps a funcref table on the JS heap: measured, 16 bytes per entry on
 * Node 20 and 24 on Node 26 (the entries and the dispatch table), and `table.grow` copies them, so
 * a growing table briefly needs twice that. A worker's heap limit is max(64 MiB, memoryBytes)
 * (`heapLimitMb` in worker-engine.ts). memoryBytes / 256 entries in all tables is then at most
 * 2 x 24 / 256 (under a fifth) of the worker's heap, and the floor of 10,000 entries is under
 * 0.5 MiB. V8's own limits (10,000,000 entries per table, 100,000 tables) allow one allocation per
 * table of 80 MiB and more, which a worker's heap limit cannot catch: V8 aborts the whole process.
 * Passive element segments become arrays of 8 bytes per entry (plus one object per distinct
 * function): they share the table bound. Data segments stay in the module's bytes and only ever
 * land in linear memory: their total is bounded by the memory limit. A global or a tag costs 8 to
 * 24 bytes of heap; 100,000 of each is a few MiB. Garbage-collected types are refused outright, so
 * no struct or array can ever be allocated.
 */
const TABLE_ENTRY_BYTES = 256
const TABLE_ENTRY_FLOOR = 10_000
const TABLE_RULE = `limits.memoryBytes / ${TABLE_ENTRY_BYTES}, at least ${TABLE_ENTRY_FLOOR}`

export interface ModuleBounds {
  /** Pages of linear memory (limits.memoryBytes in whole 64 KiB pages, at least one). */
  readonly memoryPages: number
  /** Tables, imported and declared. */
  readonly tables: number
  /** Entries in all tables: initial sizes, and the maxima they may grow to. */
  readonly tableEntries: number
  /** Entries in all element segments. */
  readonly elementEntries: number
  /** Bytes in all data segments. */
  readonly dataBytes: number
  /** Globals, imported and declared. */
  readonly globals: number
  /** Exception tags, imported and declared. */
  readonly tags: number
}

/** The bounds for a capsule whose memory limit is `memoryBytes`. */
export function moduleBounds(memoryBytes: number): ModuleBounds {
  const tableEntries = Math.max(TABLE_ENTRY_FLOOR, Math.floor(memoryBytes / TABLE_ENTRY_BYTES))
  return Object.freeze({
    memoryPages: Math.max(1, Math.floor(memoryBytes / WASM_PAGE)),
    tables: 16,
    tableEntries,
    elementEntries: tableEntries,
    dataBytes: memoryBytes,
    globals: 100_000,
    tags: 100_000,
  })
}

/** A module over a bound, or of a shape the runtime does not take; the message names the field. */
export class ModuleBoundError extends Error {
  override name = 'ModuleBoundError'
}

/** Reads a section's bytes; every read past the end is a ModuleBoundError. */
class Reader {
  at = 0
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.at >= this.bytes.length
  }

  byte(): number {
    if (this.at >= this.bytes.length) throw new ModuleBoundError('truncated section in the module')
    return this.bytes[this.at++]!
  }

  u32(): number {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte()
      value += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return value
    }
    throw new ModuleBoundError('malformed LEB128 number in the module')
  }

  /** Skips a LEB128 number of any width (signed or not). */
  leb(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return
    throw new ModuleBoundError('malformed LEB128 number in the module')
  }

  skip(count: number): void {
    if (this.at + count > this.bytes.length) throw new ModuleBoundError('truncated section in the module')
    this.at += count
  }

  name(): Uint8Array {
    const length = this.u32()
    const start = this.at
    this.skip(length)
    return this.bytes.subarray(start, this.at)
  }

  /** A value type or reference type: one byte, or 0x63/0x64 and a heap type. */
  valueType(): number[] {
    const start = this.at
    const code = this.byte()
    if (code === 0x63 || code === 0x64) this.leb()
    return [...this.bytes.subarray(start, this.at)]
  }
}

function writeU32(value: number): number[] {
  const out: number[] = []
  do {
    let byte = value & 0x7f
    value = Math.floor(value / 128)
    if (value !== 0) byte |= 0x80
    out.push(byte)
  } while (value !== 0)
  return out
}

const hex = (byte: number) => `0x${byte.toString(16).padStart(2, '0')}`

/** Skips a constant expression through its `end`, refusing any instruction not listed here. */
function skipConstExpr(r: Reader, where: string): void {
  for (;;) {
    const op = r.byte()
    if (op === 0x0b) return
    if (op === 0x41 || op === 0x42 || op === 0x23 || op === 0xd0 || op === 0xd2) r.leb() // i32/i64.const, global.get, ref.null, ref.func
    else if (op === 0x43) r.skip(4) // f32.const
    else if (op === 0x44) r.skip(8) // f64.const
    else if (op === 0xfd && r.u32() === 12) r.skip(16) // v128.const
    else if (![0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e].includes(op)) {
      throw new ModuleBoundError(
        `${where} uses opcode ${hex(op)} in a constant expression; capsule-host allows only i32, i64, f32, f64 and v128 constants, global.get, ref.null, ref.func and i32/i64 add, sub and mul`,
      )
    }
  }
}

interface Limits {
  flags: number
  min: number
  max: number | undefined
}

function readLimits(r: Reader): Limits {
  const flags = r.byte()
  const min = r.u32()
  return { flags, min, max: flags & 0x01 ? r.u32() : undefined }
}

const limitsBytes = (flags: number, min: number, max: number) => [flags | 0x01, ...writeU32(min), ...writeU32(max)]

interface Table {
  min: number
  max: number | undefined
  imported: boolean
}

/** What the sections read so far declared, counted against the bounds. */
interface Tally {
  readonly bounds: ModuleBounds
  readonly tables: Table[]
  /** Declared tables whose maximum the rewrite set or lowered: index and new maximum. */
  readonly boundedTables: Array<[index: number, max: number]>
  memories: number
  globals: number
  tags: number
  /** The module imports WASI preview 1 (moved to WASI_IMPORT_NAMESPACE). */
  wasi?: boolean
}

function readTableType(r: Reader, index: number): { ref: number[]; limits: Limits } {
  const ref = r.valueType()
  const limits = readLimits(r)
  if (limits.flags & 0x04) throw new ModuleBoundError(`table[${index}] is a 64-bit table; capsule-host supports 32-bit tables only`)
  if (limits.flags > 0x01) throw new ModuleBoundError(`table[${index}] has limits flags ${hex(limits.flags)}, which capsule-host does not support`)
  return { ref, limits }
}

const tableBound = (bounds: ModuleBounds) => `the bound is ${bounds.tableEntries} (entries in all tables: ${TABLE_RULE})`

/** Refuses too many tables, too large initial sizes, and imported maxima that leave no room. */
function checkTables({ bounds, tables }: Tally): void {
  if (tables.length > bounds.tables) {
    throw new ModuleBoundError(`the module has ${tables.length} tables (imported and declared); the bound is ${bounds.tables}`)
  }
  let initial = 0
  let imported = 0
  for (const [index, table] of tables.entries()) {
    if (table.min > bounds.tableEntries) {
      throw new ModuleBoundError(`table[${index}] declares an initial size of ${table.min} entries; ${tableBound(bounds)}`)
    }
    if (table.imported && table.max === undefined) throw new ModuleBoundError(`table[${index}] is imported with no maximum; ${tableBound(bounds)}`)
    initial += table.min
    imported += table.imported ? table.max! : 0
  }
  if (initial > bounds.tableEntries) throw new ModuleBoundError(`the tables declare ${initial} initial entries in all; ${tableBound(bounds)}`)
  const growable = imported + tables.reduce((sum, t) => sum + (t.imported ? 0 : t.min), 0)
  if (growable > bounds.tableEntries) {
    throw new ModuleBoundError(`the tables may grow to ${growable} entries in all (imported tables to their maximum); ${tableBound(bounds)}`)
  }
}

/**
 * The Extism kernel's own HTTP imports, moved to a namespace of capsule-host's. Where JSPI exists
 * the Extism SDK swaps in its own HTTP client for `extism:host/env` `http_request`, which decodes
 * and parses a whole capsule block before refusing; under this namespace only capsule-host serves them.
 */
export const KERNEL_HTTP_NAMESPACE = 'capsule-host:extism-http'
const KERNEL_HTTP = new Set(['http_request', 'http_status_code', 'http_headers'])
const EXTISM_KERNEL_NAME = new TextEncoder().encode('extism:host/env')
const KERNEL_HTTP_NAME = new TextEncoder().encode(KERNEL_HTTP_NAMESPACE)
/**
 * WASI preview 1 imports, moved to a namespace of capsule-host's so that the Extism SDK never
 * serves them with node:wasi (wasi.ts does); a WASI module's lifecycle exports are renamed with
 * WASI_LIFECYCLE_PREFIX so the SDK runs none of them at instantiation: the engine runs them once
 * the WASI functions can see the module's memory (wasi.ts `startGuest`).
 */
export const WASI_IMPORT_NAMESPACE = 'capsule-host:wasi'
export const WASI_LIFECYCLE_PREFIX = `${RESERVED_EXPORT_PREFIX}wasi:`
export const WASI_LIFECYCLE_EXPORTS: readonly string[] = ['_initialize', '_start', 'hs_init']
const WASI_NAME = new TextEncoder().encode('wasi_snapshot_preview1')
const WASI_IMPORT_NAME = new TextEncoder().encode(WASI_IMPORT_NAMESPACE)
const decoder = new TextDecoder()
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i])

/** Counts imported tables, globals and tags; returns the section with Extism's HTTP imports moved, if any. */
function readImports(content: Uint8Array, tally: Tally): Uint8Array | undefined {
  const r = new Reader(content)
  const out: number[] = []
  let from = 0
  for (let count = r.u32(); count > 0; count--) {
    const moduleStart = r.at
    const module = r.name()
    const moduleEnd = r.at
    const name = r.name()
    const kind = r.byte()
    if (kind === 0x00 && sameBytes(module, EXTISM_KERNEL_NAME) && KERNEL_HTTP.has(decoder.decode(name))) {
      out.push(...content.subarray(from, moduleStart), ...writeU32(KERNEL_HTTP_NAME.length), ...KERNEL_HTTP_NAME)
      from = moduleEnd
    }
    if (kind === 0x00 && sameBytes(module, WASI_NAME)) {
      out.push(...content.subarray(from, moduleStart), ...writeU32(WASI_IMPORT_NAME.length), ...WASI_IMPORT_NAME)
      from = moduleEnd
      tally.wasi = true
    }
    if (kind === 0x00) r.u32() // function: type index
    else if (kind === 0x01) {
      const { limits } = readTableType(r, tally.tables.length)
      tally.tables.push({ min: limits.min, max: limits.max, imported: true })
    } else if (kind === 0x02) throw new ModuleBoundError('modules that import their memory are not supported; export it instead')
    else if (kind === 0x03) {
      r.valueType()
      r.byte() // mutability
      tally.globals++
    } else if (kind === 0x04) {
      r.byte() // attribute
      r.u32() // type index
      tally.tags++
    } else throw new ModuleBoundError(`unknown import kind ${kind}`)
  }
  checkTables(tally)
  return from === 0 ? undefined : Uint8Array.from([...out, ...content.subarray(from)])
}

/** Refuses garbage-collected types: only function types (0x60) may be declared. */
function checkTypes(content: Uint8Array): void {
  const r = new Reader(content)
  const gc: Record<number, string> = { 0x4e: 'a rec group', 0x50: 'a sub type', 0x4f: 'a final sub type', 0x5f: 'a struct type', 0x5e: 'an array type' }
  const count = r.u32()
  for (let index = 0; index < count; index++) {
    const form = r.byte()
    if (gc[form]) {
      throw new ModuleBoundError(`type[${index}] is ${gc[form]}: garbage-collected types (WasmGC) are not supported; capsule-host supports function types only`)
    }
    if (form !== 0x60) throw new ModuleBoundError(`type[${index}] has form ${hex(form)}; capsule-host supports function types only`)
    for (let lists = 0; lists < 2; lists++) {
      for (let values = r.u32(); values > 0; values--) r.valueType()
    }
  }
}

/**
 * Rewrites the declared tables so that every one has a maximum and all maxima (imported tables'
 * included) add up to at most the bound: in index order, each table may grow to what the tables
 * before it and the initial sizes of those after it leave. `table.grow` past that returns -1.
 */
function boundTables(content: Uint8Array, tally: Tally): Uint8Array {
  const r = new Reader(content)
  const count = r.u32()
  const declared: Array<{ head: number[]; ref: number[]; limits: Limits; init: Uint8Array | undefined }> = []
  for (let i = 0; i < count; i++) {
    const index = tally.tables.length
    const head = r.bytes[r.at] === 0x40 ? [r.byte(), r.byte()] : []
    if (head.length && head[1] !== 0x00) throw new ModuleBoundError(`table[${index}] has an unknown encoding ${hex(0x40)} ${hex(head[1]!)}`)
    const { ref, limits } = readTableType(r, index)
    const start = r.at
    if (head.length) skipConstExpr(r, `table[${index}]'s initialiser`)
    declared.push({ head, ref, limits, init: head.length ? r.bytes.subarray(start, r.at) : undefined })
    tally.tables.push({ min: limits.min, max: limits.max, imported: false })
  }
  checkTables(tally)
  const imported = tally.tables.length - declared.length
  let used = tally.tables.slice(0, imported).reduce((sum, t) => sum + t.max!, 0)
  let later = declared.reduce((sum, t) => sum + t.limits.min, 0)
  const out: Uint8Array[] = [Uint8Array.from(writeU32(count))]
  for (const [i, { head, ref, limits, init }] of declared.entries()) {
    later -= limits.min
    const share = tally.bounds.tableEntries - used - later
    const max = Math.min(limits.max ?? Number.POSITIVE_INFINITY, share)
    if (max !== limits.max) tally.boundedTables.push([imported + i, max])
    used += max
    out.push(Uint8Array.from([...head, ...ref, ...limitsBytes(limits.flags, limits.min, max)]), init ?? new Uint8Array(0))
  }
  return Buffer.concat(out)
}

function boundMemories(content: Uint8Array, tally: Tally): Uint8Array {
  const r = new Reader(content)
  const count = r.u32()
  tally.memories += count
  if (tally.memories > 1) throw new ModuleBoundError(`the module has ${tally.memories} memories; capsule-host supports one`)
  const out = writeU32(count)
  for (let index = 0; index < count; index++) {
    const { flags, min, max } = readLimits(r)
    if (flags & 0x04) throw new ModuleBoundError('64-bit memories are not supported')
    if (flags > 0x03) throw new ModuleBoundError(`memory[${index}] has limits flags ${hex(flags)}, which capsule-host does not support`)
    const pages = tally.bounds.memoryPages
    if (min > pages) {
      throw new ModuleBoundError(`the module needs ${min * WASM_PAGE} bytes of memory at start; the bound is ${pages * WASM_PAGE} (limits.memoryBytes in whole 64 KiB pages)`)
    }
    out.push(...limitsBytes(flags, min, Math.min(max ?? Number.POSITIVE_INFINITY, pages)))
  }
  return Uint8Array.from(out)
}

function countGlobals(content: Uint8Array, tally: Tally): void {
  const r = new Reader(content)
  const count = r.u32()
  tally.globals += count
  if (tally.globals > tally.bounds.globals) {
    throw new ModuleBoundError(`the module has ${tally.globals} globals (imported and declared); the bound is ${tally.bounds.globals}`)
  }
  for (let index = 0; index < count; index++) {
    r.valueType()
    r.byte() // mutability
    skipConstExpr(r, `global[${index}]`)
  }
}

function countTags(content: Uint8Array, tally: Tally): void {
  tally.tags += new Reader(content).u32()
  if (tally.tags > tally.bounds.tags) throw new ModuleBoundError(`the module has ${tally.tags} tags (imported and declared); the bound is ${tally.bounds.tags}`)
}

/** Skips a vector of function indices or of expressions; returns its length. */
function skipItems(r: Reader, expressions: boolean, where: string): number {
  const count = r.u32()
  for (let i = 0; i < count; i++) {
    if (expressions) skipConstExpr(r, where)
    else r.leb()
  }
  return count
}

/** Reads the element segments (all eight forms) and bounds their entries in all. */
function countElements(content: Uint8Array, bounds: ModuleBounds): void {
  const r = new Reader(content)
  const count = r.u32()
  let entries = 0
  for (let index = 0; index < count; index++) {
    const where = `element segment ${index}`
    const form = r.u32()
    if (form > 7) throw new ModuleBoundError(`${where} has an unknown form ${form}`)
    const active = (form & 0x01) === 0
    if (active && form & 0x02) r.u32() // table index
    if (active) skipConstExpr(r, `${where}'s offset`)
    const expressions = (form & 0x04) !== 0
    // Forms 0 and 4 name neither the element kind nor the reference type.
    if (form & 0x03) {
      if (expressions) r.valueType()
      else if (r.byte() !== 0x00) throw new ModuleBoundError(`${where} has an unknown element kind`)
    }
    entries += skipItems(r, expressions, where)
  }
  if (entries > bounds.elementEntries) {
    throw new ModuleBoundError(
      `the element segments hold ${entries} entries in all; the bound is ${bounds.elementEntries} (entries in all element segments: ${TABLE_RULE})`,
    )
  }
}

/** Reads the data segments (all three forms) and bounds their bytes in all. */
function countData(content: Uint8Array, bounds: ModuleBounds): void {
  const r = new Reader(content)
  const count = r.u32()
  let bytes = 0
  for (let index = 0; index < count; index++) {
    const form = r.u32()
    if (form > 2) throw new ModuleBoundError(`data segment ${index} has an unknown form ${form}`)
    if (form === 2) r.u32() // memory index
    if (form !== 1) skipConstExpr(r, `data segment ${index}'s offset`)
    const size = r.u32()
    r.skip(size)
    bytes += size
  }
  if (bytes > bounds.dataBytes) {
    throw new ModuleBoundError(`the data segments hold ${bytes} bytes in all; the bound is ${bounds.dataBytes} (bytes in all data segments: limits.memoryBytes)`)
  }
}

const RESERVED = new TextEncoder().encode(RESERVED_EXPORT_PREFIX)
const startsReserved = (name: Uint8Array) => name.length >= RESERVED.length && RESERVED.every((byte, i) => name[i] === byte)

/** Refuses reserved export names and adds an export of each table whose maximum was bounded. */
function boundExports(content: Uint8Array, tally: Tally): Uint8Array {
  const r = new Reader(content)
  const count = content.length ? r.u32() : 0
  const entries = r.at
  const renamed: number[] = []
  let from = entries
  for (let i = 0; i < count; i++) {
    const nameStart = r.at
    const name = r.name()
    const nameEnd = r.at
    if (startsReserved(name)) {
      throw new ModuleBoundError(`the module exports "${new TextDecoder().decode(name)}"; export names starting with "${RESERVED_EXPORT_PREFIX}" are reserved`)
    }
    if (r.byte() === 0x00 && tally.wasi && WASI_LIFECYCLE_EXPORTS.includes(decoder.decode(name))) {
      const lifecycle = new TextEncoder().encode(WASI_LIFECYCLE_PREFIX + decoder.decode(name))
      renamed.push(...content.subarray(from, nameStart), ...writeU32(lifecycle.length), ...lifecycle)
      from = nameEnd
    }
    r.u32() // index
  }
  if (from !== entries) content = Uint8Array.from([...content.subarray(0, entries), ...renamed, ...content.subarray(from)])
  const hidden = tally.boundedTables.flatMap(([index, max]) => {
    const name = new TextEncoder().encode(`${TABLE_EXPORT}${index}:${max}`)
    return [...writeU32(name.length), ...name, 0x01, ...writeU32(index)]
  })
  return Buffer.concat([Uint8Array.from(writeU32(count + tally.boundedTables.length)), content.subarray(entries), Uint8Array.from(hidden)])
}

interface Section {
  id: number
  content: Uint8Array
  /** The whole section: id, size and content. */
  bytes: Uint8Array
}

function* sections(wasm: Uint8Array): Generator<Section> {
  const r = new Reader(wasm)
  r.skip(8)
  while (!r.done) {
    const start = r.at
    const id = r.byte()
    const size = r.u32()
    const from = r.at
    if (from + size > wasm.length) throw new ModuleBoundError('truncated section in the module')
    r.skip(size)
    yield { id, content: wasm.subarray(from, r.at), bytes: wasm.subarray(start, r.at) }
  }
}

const rank = (id: number) => SECTION_ORDER.indexOf(id)

/** Checks one section; returns its new content when the section is rewritten. */
function boundSection({ id, content }: Section, tally: Tally): Uint8Array | undefined {
  switch (id) {
    case SECTION.type:
      return void checkTypes(content)
    case SECTION.import:
      return readImports(content, tally)
    case SECTION.table:
      return boundTables(content, tally)
    case SECTION.memory:
      return boundMemories(content, tally)
    case SECTION.global:
      return void countGlobals(content, tally)
    case SECTION.tag:
      return void countTags(content, tally)
    case SECTION.export:
      return boundExports(content, tally)
    case SECTION.element:
      return void countElements(content, tally.bounds)
    case SECTION.data:
      return void countData(content, tally.bounds)
    default:
      return undefined
  }
}

/**
 * Returns a copy of `wasm` that can never make the engine allocate past `bounds`: memories and
 * tables declare a maximum of at most their bound (so `memory.grow` and `table.grow` fail inside
 * the capsule), and tables whose maximum was set or lowered are exported as
 * `capsule-host:table:<index>:<maximum>` for `tableAtBound`. Throws ModuleBoundError, naming the
 * field and the bound, for a module over a bound, with GC types, or with imported or 64-bit
 * memories or 64-bit tables.
 */
export function boundModule(wasm: Uint8Array, bounds: ModuleBounds): Uint8Array<ArrayBuffer> {
  if (wasm.length < 8 || wasm[0] !== 0x00 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) {
    throw new ModuleBoundError('not a WebAssembly module (bad magic number)')
  }
  const tally: Tally = { bounds, tables: [], boundedTables: [], memories: 0, globals: 0, tags: 0 }
  const parts: Uint8Array[] = [wasm.subarray(0, 8)]
  let exported = false
  const push = (id: number, content: Uint8Array) => parts.push(Uint8Array.of(id, ...writeU32(content.length)), content)
  for (const section of sections(wasm)) {
    if (!exported && tally.boundedTables.length && rank(section.id) > rank(SECTION.export)) {
      push(SECTION.export, boundExports(new Uint8Array(0), tally))
      exported = true
    }
    exported ||= section.id === SECTION.export
    const content = boundSection(section, tally)
    if (content) push(section.id, content)
    else parts.push(section.bytes)
  }
  if (!exported && tally.boundedTables.length) push(SECTION.export, boundExports(new Uint8Array(0), tally))
  checkTables(tally)
  return new Uint8Array(Buffer.concat(parts))
}

/**
 * Describes the first table the rewrite bounded that holds over half of the maximum it was given,
 * from an instance's exports; undefined when none does. A `table.grow` past the maximum returns -1
 * without saying why and capsules trap on it, so, as with linear memory, a trap while such a table
 * is over half its maximum is the capsule running out of room for tables. Tables that keep the
 * module's own, smaller maximum are never reported.
 */
export function tableAtBound(exports: WebAssembly.Exports, bounds: ModuleBounds): string | undefined {
  for (const [name, value] of Object.entries(exports)) {
    if (!name.startsWith(TABLE_EXPORT) || !(value instanceof WebAssembly.Table)) continue
    const [index, max] = name.slice(TABLE_EXPORT.length).split(':').map(Number) as [number, number]
    if (value.length * 2 > max) {
      return `table[${index}] holds ${value.length} of the ${max} entries it may grow to; the tables may hold ${bounds.tableEntries} entries in all (${TABLE_RULE})`
    }
  }
  return undefined
}
