// Classifies an IP address into a named address class, unwrapping embedded IPv4. Pure; no I/O.
import ipaddr from 'ipaddr.js'
import { PureCache } from '../pure-cache.js'
import {
  IPV4_SPECIAL,
  IPV6_EMBEDDINGS,
  IPV6_GLOBAL_UNICAST,
  IPV6_SPECIAL,
  type AddressClass,
  type Row,
} from './address-table.js'

type IPv4 = ipaddr.IPv4
type IPv6 = ipaddr.IPv6

/** An IPv4 address found inside an IPv6 one (mapped, compatible, SIIT, NAT64, 6to4, Teredo). */
export interface EmbeddedAddress {
  readonly address: string
  readonly class: AddressClass
  /** The IPv6 form it was found in, such as `nat64` or `teredo`. */
  readonly form: string
}

export interface ClassifiedAddress {
  /** Canonical text: dotted quad, or RFC 5952 IPv6 without brackets. This is what is dialled. */
  readonly address: string
  readonly family: 4 | 6
  readonly class: AddressClass
  readonly embedded: readonly EmbeddedAddress[]
  /** The parsed value, for CIDR matching. */
  readonly parsed: IPv4 | IPv6
}

type Compiled<T> = ReadonlyArray<readonly [T, number, AddressClass]>

function compile<T extends IPv4 | IPv6>(rows: readonly Row[]): Compiled<T> {
  return rows.map(([cidr, name]) => {
    const [range, bits] = ipaddr.parseCIDR(cidr)
    return [range as T, bits, name] as const
  })
}

const V4_ROWS = compile<IPv4>(IPV4_SPECIAL)
const V6_ROWS = compile<IPv6>(IPV6_SPECIAL)
const V6_GLOBAL = ipaddr.parseCIDR(IPV6_GLOBAL_UNICAST) as [IPv6, number]
// :: and ::1 fall inside ::/96 but wrap no IPv4 address.
const V6_UNSPECIFIED_OR_LOOPBACK = ipaddr.parseCIDR('::/127') as [IPv6, number]
const V6_EMBEDDINGS = IPV6_EMBEDDINGS.map((row) => ({ ...row, range: ipaddr.parseCIDR(row.cidr) as [IPv6, number] }))

function classOfV4(address: IPv4): AddressClass {
  for (const [range, bits, name] of V4_ROWS) if (address.match(range, bits)) return name
  return 'unicast'
}

function classOfV6(address: IPv6): AddressClass {
  for (const [range, bits, name] of V6_ROWS) if (address.match(range, bits)) return name
  return address.match(V6_GLOBAL) ? 'unicast' : 'not-global-unicast'
}

function ipv4At(address: IPv6, bits: number, xor: boolean): IPv4 {
  const bytes = address.toByteArray().slice(bits / 8, bits / 8 + 4)
  return new ipaddr.IPv4(xor ? bytes.map((b) => b ^ 0xff) : bytes)
}

function embeddedIn(address: IPv6): EmbeddedAddress[] {
  if (address.match(V6_UNSPECIFIED_OR_LOOPBACK)) return []
  const found: EmbeddedAddress[] = []
  for (const { range, form, embedded } of V6_EMBEDDINGS) {
    if (!address.match(range)) continue
    for (const { bits, xor } of embedded) {
      const v4 = ipv4At(address, bits, xor)
      found.push({ address: v4.toString(), class: classOfV4(v4), form })
    }
  }
  return found
}

/**
 * Parses an address in its strict form only: four-part decimal IPv4 (no octal, hex or short
 * forms, which a resolver never returns) or IPv6 without a zone index. Returns undefined for
 * anything else.
 */
export function parseAddress(text: string): IPv4 | IPv6 | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text)
  if (text.includes('%')) return undefined
  // ipaddr.js accepts hex, octal and zero-padded parts in an IPv6 address's dotted tail, and reads
  // `::a.b.c.d` (IPv4-compatible) as `::ffff:a.b.c.d` (mapped). Require a strict dotted quad there
  // and hand it over as two hex groups, so the address parsed is the address written.
  const colon = text.lastIndexOf(':')
  const tail = text.slice(colon + 1)
  if (tail.includes('.')) {
    if (colon < 0 || !ipaddr.IPv4.isValidFourPartDecimal(tail)) return undefined
    const [a = 0, b = 0, c = 0, d = 0] = ipaddr.IPv4.parse(tail).octets
    text = `${text.slice(0, colon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  if (!ipaddr.IPv6.isValid(text)) return undefined
  return ipaddr.IPv6.parse(text)
}

/** Classifies one address; returns undefined when `text` is not an IP address in strict form. */
export function classifyAddress(text: string): ClassifiedAddress | undefined {
  return CLASSIFIED.get(text)
}

/** Freezes a classification and everything in it: the cache shares it between requests. */
function frozen(address: ClassifiedAddress): ClassifiedAddress {
  for (const embedded of address.embedded) Object.freeze(embedded)
  Object.freeze(address.embedded)
  const parsed = address.parsed as { octets?: number[]; parts?: number[] }
  Object.freeze(parsed.octets ?? parsed.parts)
  Object.freeze(parsed)
  return Object.freeze(address)
}

function classify(text: string): ClassifiedAddress | undefined {
  const parsed = parseAddress(text)
  if (!parsed) return undefined
  if (parsed.kind() === 'ipv4') {
    const v4 = parsed as IPv4
    return frozen({ address: v4.toString(), family: 4, class: classOfV4(v4), embedded: [], parsed: v4 })
  }
  const v6 = parsed as IPv6
  return frozen({ address: v6.toString(), family: 6, class: classOfV6(v6), embedded: embeddedIn(v6), parsed: v6 })
}

/** Addresses classified recently, by their exact text (not an address: never stored). */
const CLASSIFIED = new PureCache(classify, 4096, 64)
