// Checks the module bounds: each bound at its value (loads and runs), one over (the exact load_failed message), growth past it (memory_limit), in each isolation mode; a module over a bound fails alone.
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { createRuntime, type Runtime } from '../src/index.js'
import { boundModule, ModuleBoundError, moduleBounds, tableAtBound } from '../src/runtime/module-bounds.js'
import { capsulePath, describeIsolations, type Isolation } from './helpers/capsules.js'
import { closeAllFetches, testFetch } from './helpers/fetch.js'
import { closeAllServers, startServer, type TestServer } from './helpers/servers.js'
import { eightHugeTables, REF_NULL_FUNC, tinyModule, type ElementSpec, type TableSpec, type TinyModule } from './helpers/wasm.js'

const PAGE = 64 * 1024
const MiB = 1024 * 1024
/** The capsules' memory limit in these tests, and the bounds it gives. */
const LIMIT = 4 * MiB
const BOUNDS = moduleBounds(LIMIT)
const ENTRIES = BOUNDS.tableEntries
const FORMULA = 'limits.memoryBytes / 256, at least 10000'
const TABLE_RULE = `entries in all tables: ${FORMULA}`
const NOT_USABLE = 'the capsule module is not usable: '
const ENV = 'extism:host/env'
/** Node 20's V8 has neither typed function references (0x63/0x64) nor table initialisers; Node 26's has both. */
const TYPED_REFS = WebAssembly.validate(tinyModule({ tables: [{ min: 1, init: REF_NULL_FUNC }] }))

/** Every test module exports an empty function "f". */
const f = { exports: ['f'] }

const runtimes: Runtime[] = []
let server: TestServer
beforeAll(async () => {
  server = await startServer((_req, res) => void res.end('pong'))
})
afterAll(async () => {
  await Promise.all(runtimes.map((r) => r.close()))
  await closeAllFetches()
  await closeAllServers()
})

function runtimeFor(isolation: Isolation, memoryBytes = LIMIT): Runtime {
  const fetch = testFetch({ rules: [{ host: 'api.test', httpsOnly: false, port: server.port }] })
  const runtime = createRuntime({ fetch, isolation, limits: { memoryBytes } })
  runtimes.push(runtime)
  return runtime
}

test('the bounds follow limits.memoryBytes, with floors for small limits', () => {
  expect(moduleBounds(256 * MiB)).toEqual({
    memoryPages: 4096,
    tables: 16,
    tableEntries: 1_048_576,
    elementEntries: 1_048_576,
    dataBytes: 256 * MiB,
    globals: 100_000,
    tags: 100_000,
  })
  expect(moduleBounds(256 * 10_001)).toMatchObject({ tableEntries: 10_001, elementEntries: 10_001 })
  expect(moduleBounds(256 * 10_000 - 1)).toMatchObject({ tableEntries: 10_000, elementEntries: 10_000 })
  expect(moduleBounds(64 * 1024)).toMatchObject({ memoryPages: 1, tableEntries: 10_000, dataBytes: 64 * 1024 })
})

describe('linear memory', () => {
  /** Instantiates a bounded module and returns how many pages its memory can reach. */
  function reachablePages(memory: { min: number; max?: number }, limitBytes: number): number {
    const bounded = boundModule(tinyModule({ memory, exports: ['f'], exportMemory: true }), moduleBounds(limitBytes))
    const exported = new WebAssembly.Instance(new WebAssembly.Module(bounded)).exports.memory as WebAssembly.Memory
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

  test('an unbounded module grows past what the bounded one can reach', () => {
    const memory = new WebAssembly.Instance(new WebAssembly.Module(tinyModule({ memory: { min: 1 }, exportMemory: true }))).exports.memory as WebAssembly.Memory
    memory.grow(10)
    expect(memory.buffer.byteLength).toBe(11 * PAGE)
  })
})

describe('tables', () => {
  /** How many entries each table of a bounded module can reach, growing it from JavaScript. */
  function reachableEntries(tables: TableSpec[]): number[] {
    const exportsRaw = tables.map((_, i): [string, number, number] => [`t${i}`, 0x01, i])
    const bounded = boundModule(tinyModule({ tables, exportsRaw, exports: ['f'] }), BOUNDS)
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bounded)).exports
    return tables.map((_, i) => {
      const table = exports[`t${i}`] as WebAssembly.Table
      const fill = table.length ? table.get(0) : null
      for (let step = 4096; step >= 1; step /= 2) {
        for (;;) {
          try {
            table.grow(step, fill)
          } catch {
            break
          }
        }
      }
      return table.length
    })
  }

  test.each<[string, TableSpec[], number[]]>([
    ['no maximum: grows to the bound', [{ min: 0 }], [ENTRIES]],
    ['a larger maximum is lowered to the bound', [{ min: 1, max: 1_000_000 }], [ENTRIES]],
    ['a maximum one over the bound is lowered', [{ min: 1, max: ENTRIES + 1 }], [ENTRIES]],
    ['a maximum at the bound is kept', [{ min: 1, max: ENTRIES }], [ENTRIES]],
    ['a smaller maximum is kept', [{ min: 1, max: 5 }], [5]],
    ['the initial size at the bound', [{ min: ENTRIES }], [ENTRIES]],
    ['two tables: the first gets what the second one`s initial size leaves', [{ min: 10 }, { min: 100 }], [ENTRIES - 100, 100]],
    ['a kept maximum leaves the rest to the next table', [{ min: 0, max: 1000 }, { min: 0 }], [1000, ENTRIES - 1000]],
    ['an externref table', [{ min: 0, ref: 'externref' }], [ENTRIES]],
  ])('%s', (_name, tables, entries) => {
    expect(reachableEntries(tables)).toEqual(entries)
  })

  test.runIf(TYPED_REFS).each<[string, TableSpec[], number[]]>([
    ['the initialiser form (0x40 0x00)', [{ min: 2, init: REF_NULL_FUNC }], [ENTRIES]],
    ['a (ref null func) table, written 0x63 0x70', [{ min: 0, ref: 'ref null func' }], [ENTRIES]],
    ['a (ref func) table, written 0x64 0x70, with an initialiser', [{ min: 1, ref: 'ref func', init: [0xd2, 0x00, 0x0b] }], [ENTRIES]],
  ])('%s', (_name, tables, entries) => {
    expect(reachableEntries(tables)).toEqual(entries)
  })

  // Byte for byte, on any engine: the rewrite sets the maximum and exports the table it bounded.
  test.each<[string, TableSpec, number]>([
    ['funcref, no maximum', { min: 3 }, ENTRIES],
    ['externref, a larger maximum', { min: 3, max: 10_000_000, ref: 'externref' }, ENTRIES],
    ['the initialiser form', { min: 3, init: REF_NULL_FUNC }, ENTRIES],
    ['(ref null func) with an initialiser', { min: 3, ref: 'ref null func', init: REF_NULL_FUNC }, ENTRIES],
    ['(ref func) with an initialiser', { min: 3, max: ENTRIES + 1, ref: 'ref func', init: [0xd2, 0x00, 0x0b] }, ENTRIES],
  ])('rewritten: %s', (_name, table, max) => {
    const bounded = boundModule(tinyModule({ ...f, tables: [table] }), BOUNDS)
    const expected = tinyModule({ ...f, tables: [{ ...table, max }], exportsRaw: [[`capsule-host:table:0:${max}`, 0x01, 0]] })
    expect(Buffer.from(bounded)).toEqual(Buffer.from(expected))
  })

  test('without an export section, the rewrite adds one in its place', () => {
    const bounded = boundModule(tinyModule({ tables: [{ min: 0 }], data: [{ form: 1, bytes: 1 }] }), BOUNDS)
    const expected = tinyModule({ tables: [{ min: 0, max: ENTRIES }], data: [{ form: 1, bytes: 1 }], exportsRaw: [[`capsule-host:table:0:${ENTRIES}`, 0x01, 0]] })
    expect(Buffer.from(bounded)).toEqual(Buffer.from(expected))
  })

  describe('tableAtBound', () => {
    const bytes = tinyModule({ tables: [{ min: 0, max: 4 }, { min: 0 }], exports: ['f'], exportsRaw: [['own', 0x01, 0]] })
    const module = new WebAssembly.Module(boundModule(bytes, BOUNDS))
    const max = ENTRIES - 4
    const name = `capsule-host:table:1:${max}`

    test('only the table the rewrite bounded is added to the exports, as a table', () => {
      expect(WebAssembly.Module.exports(module).filter((e) => e.kind !== 'function')).toEqual([
        { name: 'own', kind: 'table' },
        { name, kind: 'table' },
      ])
    })

    test.each<[string, number, number, boolean]>([
      ['empty', 0, 0, false],
      ['the table with its own maximum, full', 4, 0, false],
      ['exactly half of its maximum', 0, max / 2, false],
      ['one over half', 0, max / 2 + 1, true],
      ['full', 0, max, true],
    ])('%s', (_name, own, bounded, reported) => {
      const exports = new WebAssembly.Instance(module).exports
      ;(exports['own'] as WebAssembly.Table).grow(own)
      const table = exports[name] as WebAssembly.Table
      table.grow(bounded)
      const description = `table[1] holds ${bounded} of the ${max} entries it may grow to; the tables may hold ${ENTRIES} entries in all (${FORMULA})`
      expect(tableAtBound(exports, BOUNDS)).toBe(reported ? description : undefined)
    })
  })

  test('a module without tables or memory is unchanged', () => {
    const bytes = tinyModule({ exports: ['f'], globals: 3, data: [{ form: 1, bytes: 10 }] })
    expect(Buffer.from(boundModule(bytes, BOUNDS))).toEqual(Buffer.from(bytes))
  })
})

/** Eight element segments, one of each form, holding `total` entries between them. */
function allElementForms(total: number): ElementSpec[] {
  const forms = [0, 1, 2, 3, 4, 5, 6, 7] as const
  return forms.map((form, i) => ({ form, entries: Math.floor(total / 8) + (i < total % 8 ? 1 : 0) }))
}

interface BoundRow {
  field: string
  /** A module exactly at the bound (it loads, and its export "f" runs). */
  at: TinyModule
  /** The same one over the bound, and the message it fails with (after "not usable: "). */
  over: TinyModule
  message: string
}

const fullTable = { tables: [{ min: ENTRIES }] }
const BOUND_ROWS: BoundRow[] = [
  {
    field: 'linear memory at start',
    at: { ...f, memory: { min: 64 } },
    over: { ...f, memory: { min: 65 } },
    message: `the module needs ${65 * PAGE} bytes of memory at start; the bound is ${LIMIT} (limits.memoryBytes in whole 64 KiB pages)`,
  },
  {
    field: 'memories',
    at: { ...f, memory: { min: 1 } },
    over: { ...f, memory: { min: 1 }, extraMemories: 1 },
    message: 'the module has 2 memories; capsule-host supports one',
  },
  {
    field: 'tables',
    at: { ...f, tables: Array.from({ length: 16 }, () => ({ min: 0 })) },
    over: { ...f, tables: Array.from({ length: 17 }, () => ({ min: 0 })) },
    message: 'the module has 17 tables (imported and declared); the bound is 16',
  },
  {
    field: 'a table`s initial size',
    at: { ...f, tables: [{ min: ENTRIES }] },
    over: { ...f, tables: [{ min: 0 }, { min: ENTRIES + 1 }] },
    message: `table[1] declares an initial size of ${ENTRIES + 1} entries; the bound is ${ENTRIES} (${TABLE_RULE})`,
  },
  {
    field: 'initial entries in all tables',
    at: { ...f, tables: [{ min: ENTRIES / 2 }, { min: ENTRIES / 2 }] },
    over: { ...f, tables: [{ min: ENTRIES / 2 }, { min: ENTRIES / 2 + 1 }] },
    message: `the tables declare ${ENTRIES + 1} initial entries in all; the bound is ${ENTRIES} (${TABLE_RULE})`,
  },
  {
    field: 'element entries, in all eight segment forms',
    at: { ...f, ...fullTable, elements: allElementForms(ENTRIES) },
    over: { ...f, ...fullTable, elements: allElementForms(ENTRIES + 1) },
    message: `the element segments hold ${ENTRIES + 1} entries in all; the bound is ${ENTRIES} (entries in all element segments: ${FORMULA})`,
  },
  {
    field: 'data bytes, in all three segment forms',
    at: { ...f, memory: { min: 64 }, data: [{ form: 0, bytes: LIMIT / 2 }, { form: 1, bytes: LIMIT / 4 }, { form: 2, bytes: LIMIT / 4 }] },
    over: { ...f, memory: { min: 64 }, data: [{ form: 0, bytes: LIMIT / 2 }, { form: 1, bytes: LIMIT / 4 }, { form: 2, bytes: LIMIT / 4 + 1 }] },
    message: `the data segments hold ${LIMIT + 1} bytes in all; the bound is ${LIMIT} (bytes in all data segments: limits.memoryBytes)`,
  },
  {
    field: 'globals',
    at: { ...f, globals: 100_000 },
    over: { ...f, globals: 100_001 },
    message: 'the module has 100001 globals (imported and declared); the bound is 100000',
  },
  {
    field: 'tags',
    at: { ...f, tags: 100_000 },
    over: { ...f, tags: 100_001 },
    message: 'the module has 100001 tags (imported and declared); the bound is 100000',
  },
]

const table = (min: number, max?: number) => ({ namespace: ENV, name: 't', min, ...(max === undefined ? {} : { max }) })
const GC_TYPE_ROWS: Array<[string, number[]]> = [
  ['a rec group', [0x4e, 0x01, 0x60, 0x00, 0x00]],
  ['a sub type', [0x50, 0x00, 0x60, 0x00, 0x00]],
  ['a final sub type', [0x4f, 0x00, 0x60, 0x00, 0x00]],
  ['a struct type', [0x5f, 0x00]],
  ['an array type', [0x5e, 0x7f, 0x01]],
]
const CONST_EXPR_RULE = 'capsule-host allows only i32, i64, f32, f64 and v128 constants, global.get, ref.null, ref.func and i32/i64 add, sub and mul'

/** Modules refused whatever the limits: [name, module, the whole load_failed message]. */
const REFUSED_ROWS: Array<[string, TinyModule, string]> = [
  [
    'imported table maxima past the bound',
    { ...f, importTables: [table(0, ENTRIES + 1)] },
    `${NOT_USABLE}the tables may grow to ${ENTRIES + 1} entries in all (imported tables to their maximum); the bound is ${ENTRIES} (${TABLE_RULE})`,
  ],
  [
    'an imported maximum and a declared initial size past the bound',
    { ...f, importTables: [table(0, ENTRIES - 10)], tables: [{ min: 11 }] },
    `${NOT_USABLE}the tables may grow to ${ENTRIES + 1} entries in all (imported tables to their maximum); the bound is ${ENTRIES} (${TABLE_RULE})`,
  ],
  ['an imported table with no maximum', { ...f, importTables: [table(0)] }, `${NOT_USABLE}table[0] is imported with no maximum; the bound is ${ENTRIES} (${TABLE_RULE})`],
  [
    'an imported table within the bounds: capsule-host provides no tables',
    { ...f, importTables: [table(0, ENTRIES)] },
    `the capsule imports "${ENV}" "t", a table; capsule-host provides only functions (declare and export tables, memories and globals instead)`,
  ],
  [
    'an imported global',
    { ...f, importsRaw: [[ENV, 'g', 0x03, 0x7f, 0x00]] },
    `the capsule imports "${ENV}" "g", a global; capsule-host provides only functions (declare and export tables, memories and globals instead)`,
  ],
  [
    'an imported tag',
    { ...f, importsRaw: [['extism:host/user', 'e', 0x04, 0x00, 0x00]] },
    'the capsule imports "extism:host/user" "e", a tag; capsule-host provides only functions (declare and export tables, memories and globals instead)',
  ],
  ['an imported memory', { ...f, importsRaw: [[ENV, 'memory', 0x02, 0x00, 0x01]] }, `${NOT_USABLE}modules that import their memory are not supported; export it instead`],
  ['a 64-bit memory', { ...f, memory: { min: 1, flags: 0x04 } }, `${NOT_USABLE}64-bit memories are not supported`],
  ['a 64-bit table', { ...f, tables: [{ min: 1, table64: true }] }, `${NOT_USABLE}table[0] is a 64-bit table; capsule-host supports 32-bit tables only`],
  ...GC_TYPE_ROWS.map(([what, type]): [string, TinyModule, string] => [
    `${what} (WasmGC)`,
    { ...f, extraTypes: [type] },
    `${NOT_USABLE}type[1] is ${what}: garbage-collected types (WasmGC) are not supported; capsule-host supports function types only`,
  ]),
  ['an unknown type form', { ...f, extraTypes: [[0x5d, 0x00]] }, `${NOT_USABLE}type[1] has form 0x5d; capsule-host supports function types only`],
  [
    'a GC instruction in a table initialiser',
    { ...f, tables: [{ min: 1, init: [0x41, 0x00, 0xfb, 0x1c, 0x0b] }] },
    `${NOT_USABLE}table[0]'s initialiser uses opcode 0xfb in a constant expression; ${CONST_EXPR_RULE}`,
  ],
  [
    'local.get in an element offset',
    { ...f, tables: [{ min: 1 }], elements: [{ form: 0, entries: 1, offset: [0x20, 0x00, 0x0b] }] },
    `${NOT_USABLE}element segment 0's offset uses opcode 0x20 in a constant expression; ${CONST_EXPR_RULE}`,
  ],
  [
    'a reserved export name',
    { ...f, tables: [{ min: 1 }], exportsRaw: [['capsule-host:table:0:99', 0x01, 0]] },
    `${NOT_USABLE}the module exports "capsule-host:table:0:99"; export names starting with "capsule-host:" are reserved`,
  ],
]

test.each<[string, Uint8Array, string]>([
  ['not wasm', Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 'not a WebAssembly module (bad magic number)'],
  ['empty', new Uint8Array(0), 'not a WebAssembly module (bad magic number)'],
  ['a truncated section', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 5, 10, 1]), 'truncated section in the module'],
  ['a truncated table', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 4, 2, 1, 0x70]), 'truncated section in the module'],
  ['a malformed number', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 4, 8, 1, 0x70, 0, 0xff, 0xff, 0xff, 0xff, 0xff]), 'malformed LEB128 number in the module'],
  ['an unknown element segment form', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 9, 2, 1, 8]), 'element segment 0 has an unknown form 8'],
  ['an unknown data segment form', Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 11, 2, 1, 3]), 'data segment 0 has an unknown form 3'],
])('%s is refused', (_name, bytes, message) => {
  expect(() => boundModule(bytes, BOUNDS)).toThrow(new ModuleBoundError(message))
})

test('constant expressions: every allowed instruction is skipped, extended-const included', () => {
  const expression = [0x41, 0x7f, 0x42, 0x01, 0x7c, 0x43, 0, 0, 0, 0, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0x6a, 0x6b, 0x6c, 0x7d, 0x7e, 0x23, 0x00, 0xd2, 0x00, 0xd0, 0x70]
  const vector = [0xfd, 0x0c, ...Array<number>(16).fill(0)]
  const bytes = tinyModule({ ...f, tables: [{ min: 1, init: [...expression, ...vector, 0x0b] }] })
  expect(() => boundModule(bytes, BOUNDS)).not.toThrow()
})

describeIsolations('isolation %s', (isolation) => {
  let runtime: Runtime
  beforeAll(() => {
    runtime = runtimeFor(isolation)
  })

  describe.each(BOUND_ROWS)('$field', ({ at, over, message }) => {
    test('at the bound: loads and runs', async () => {
      const capsule = await runtime.load({ wasm: tinyModule(at) })
      expect((await capsule.call('f')).bytes().byteLength).toBe(0)
      await capsule.unload()
    })

    test('one over: load_failed, naming the field and the bound', async () => {
      await expect(runtime.load({ wasm: tinyModule(over) })).rejects.toMatchObject({ code: 'load_failed', message: `${NOT_USABLE}${message}` })
    })
  })

  test.each(REFUSED_ROWS)('refused: %s', async (_name, module, message) => {
    await expect(runtime.load({ wasm: tinyModule(module) })).rejects.toMatchObject({ code: 'load_failed', message })
  })

  test('the rewrite`s table exports are not capsule exports', async () => {
    const capsule = await runtime.load({ wasm: tinyModule({ ...f, tables: [{ min: 0 }, { min: 1 }] }) })
    expect([...capsule.exports]).toEqual(['f'])
    await capsule.unload()
  })

  describe('growth past a bound', () => {
    const full = (index: number, entries: number, max = ENTRIES) =>
      `the call to "grow" ran out of memory: table[${index}] holds ${entries} of the ${max} entries it may grow to; the tables may hold ${ENTRIES} entries in all (${FORMULA})`
    test.each<[string, TinyModule, string]>([
      ['a table with no maximum', { tables: [{ min: 0 }], grow: [{ export: 'grow', delta: 1, until: 'trap' }] }, full(0, ENTRIES)],
      ['a table whose maximum is over the bound', { tables: [{ min: 1, max: 10_000_000 }], grow: [{ export: 'grow', delta: 1000, until: 'trap' }] }, full(0, 1 + 1000 * Math.floor((ENTRIES - 1) / 1000))],
      ['the first of two tables', { tables: [{ min: 0 }, { min: 100 }], grow: [{ export: 'grow', delta: 7, until: 'trap' }] }, full(0, 7 * Math.floor((ENTRIES - 100) / 7), ENTRIES - 100)],
      ['the second of two tables', { tables: [{ min: 0 }, { min: 100 }], grow: [{ export: 'grow', table: 1, delta: 1, until: 'trap' }] }, full(1, 100, 100)],
      ['an externref table', { tables: [{ min: 1, ref: 'externref' }], grow: [{ export: 'grow', delta: 1, until: 'trap' }] }, full(0, ENTRIES)],
      ['linear memory', { memory: { min: 1 }, exportMemory: true, grow: [{ export: 'grow', memory: true, delta: 1, until: 'trap' }] }, 'the call to "grow" ran out of memory'],
    ])('%s: memory_limit; the capsule is stopped and loads again', async (name, module, message) => {
      const bytes = tinyModule({ ...module, ...f })
      const id = `${name} in ${isolation}`
      const capsule = await runtime.load({ wasm: bytes, id })
      await expect(capsule.call('grow')).rejects.toMatchObject({ code: 'memory_limit', message: expect.stringContaining(message) })
      await expect(capsule.call('f')).rejects.toMatchObject({ code: 'unloaded' })
      const again = await runtime.load({ wasm: bytes, id })
      expect((await again.call('f')).bytes().byteLength).toBe(0)
      await again.unload()
    })

    test('a capsule that ignores the failed grows keeps running', async () => {
      const grow = [
        { export: 'huge', delta: 10_000_000, until: 1000 },
        { export: 'step', delta: 1, until: ENTRIES + 1000 },
      ]
      const capsule = await runtime.load({ wasm: tinyModule({ ...f, tables: [{ min: 0 }], grow }) })
      await capsule.call('huge')
      await capsule.call('step')
      await capsule.call('step')
      expect((await capsule.call('f')).bytes().byteLength).toBe(0)
      await capsule.unload()
    })
  })

  test('a module over a bound fails alone: the host and another capsule keep running, and good modules still load', async () => {
    const big = runtimeFor(isolation, 256 * MiB)
    const probe = await big.load({ wasm: capsulePath('probe') })
    const huge = eightHugeTables()
    expect(huge.byteLength).toBe(99)
    await expect(big.load({ wasm: huge })).rejects.toMatchObject({
      code: 'load_failed',
      message: `${NOT_USABLE}table[0] declares an initial size of 10000000 entries; the bound is 1048576 (${TABLE_RULE})`,
    })
    for (const { over } of BOUND_ROWS) await expect(runtime.load({ wasm: tinyModule(over) })).rejects.toMatchObject({ code: 'load_failed' })
    const reply = (await probe.call('request', JSON.stringify({ url: `http://api.test:${server.port}/` }))).json<{ status: number; body: string }>()
    expect(reply).toMatchObject({ status: 200, body: 'pong' })
    const good = await big.load({ wasm: tinyModule({ ...f, tables: [{ min: 10 }] }) })
    expect((await good.call('f')).bytes().byteLength).toBe(0)
    expect(big.capsules.size).toBe(2)
  })
})
