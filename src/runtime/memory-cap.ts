// Rewrites a Wasm module's memory section so its linear memory can never grow past a byte limit.

const WASM_PAGE = 64 * 1024
const MEMORY_SECTION = 5
const IMPORT_SECTION = 2

export class ModuleShapeError extends Error {
  override name = 'ModuleShapeError'
}

function readU32(bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0
  let shift = 0
  for (let i = at; i < bytes.length && i < at + 5; i++) {
    const byte = bytes[i]!
    value += (byte & 0x7f) * 2 ** shift
    if ((byte & 0x80) === 0) return [value, i + 1]
    shift += 7
  }
  throw new ModuleShapeError('malformed LEB128 number in the module')
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

/** Skips one import entry's description; returns the kind byte and the next offset. */
function skipName(bytes: Uint8Array, at: number): number {
  const [length, next] = readU32(bytes, at)
  return next + length
}

function importsMemory(section: Uint8Array): boolean {
  let [count, at] = readU32(section, 0)
  for (; count > 0; count--) {
    at = skipName(section, skipName(section, at))
    const kind = section[at++]
    if (kind === 0x02) return true
    if (kind === 0x00) at = readU32(section, at)[1] // function: type index
    else if (kind === 0x01) {
      at++ // table: reftype
      const flags = section[at++]!
      at = readU32(section, at)[1]
      if (flags & 1) at = readU32(section, at)[1]
    } else if (kind === 0x03) at += 2 // global: valtype, mutability
    else if (kind === 0x04) at = readU32(section, at + 1)[1] // tag: attribute, type index
    else throw new ModuleShapeError(`unknown import kind ${kind}`)
  }
  return false
}

function cappedMemorySection(section: Uint8Array, maxPages: number): Uint8Array {
  let [count, at] = readU32(section, 0)
  const out: number[] = writeU32(count)
  for (; count > 0; count--) {
    const flags = section[at++]!
    if (flags & 0x04) throw new ModuleShapeError('64-bit memories are not supported')
    let min: number
    ;[min, at] = readU32(section, at)
    let max = Number.POSITIVE_INFINITY
    if (flags & 0x01) [max, at] = readU32(section, at)
    if (min > maxPages) {
      throw new ModuleShapeError(`the module needs ${min * WASM_PAGE} bytes of memory at start; the limit is ${maxPages * WASM_PAGE}`)
    }
    out.push(flags | 0x01, ...writeU32(min), ...writeU32(Math.min(max, maxPages)))
  }
  return Uint8Array.from(out)
}

/**
 * Returns a copy of `wasm` whose memories declare a maximum of at most `limitBytes`, so
 * `memory.grow` past the limit fails inside the capsule instead of taking host memory.
 * Throws ModuleShapeError for imported or 64-bit memories, or an initial size over the limit.
 */
export function capMemory(wasm: Uint8Array, limitBytes: number): Uint8Array<ArrayBuffer> {
  if (wasm.length < 8 || wasm[0] !== 0x00 || wasm[1] !== 0x61 || wasm[2] !== 0x73 || wasm[3] !== 0x6d) {
    throw new ModuleShapeError('not a WebAssembly module (bad magic number)')
  }
  const maxPages = Math.max(1, Math.floor(limitBytes / WASM_PAGE))
  const parts: Uint8Array[] = [wasm.subarray(0, 8)]
  let at = 8
  while (at < wasm.length) {
    const id = wasm[at]!
    const [size, contentStart] = readU32(wasm, at + 1)
    const end = contentStart + size
    if (end > wasm.length) throw new ModuleShapeError('truncated section in the module')
    const content = wasm.subarray(contentStart, end)
    if (id === IMPORT_SECTION && importsMemory(content)) {
      throw new ModuleShapeError('modules that import their memory are not supported; export it instead')
    }
    if (id === MEMORY_SECTION) {
      const capped = cappedMemorySection(content, maxPages)
      parts.push(Uint8Array.of(id, ...writeU32(capped.length)), capped)
    } else {
      parts.push(wasm.subarray(at, end))
    }
    at = end
  }
  return new Uint8Array(Buffer.concat(parts))
}
