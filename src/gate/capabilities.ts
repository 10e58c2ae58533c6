// A capsule manifest's declared HTTP capabilities as a gate: a capsule reaches only what it declared.
import { compileHostPattern, type HostPattern } from './host-pattern.js'
import type { GateRequest } from './types.js'

interface Capability {
  readonly source: string
  readonly host: HostPattern
  readonly scheme: 'http' | 'https' | undefined
  readonly port: number | undefined
}

const ORIGIN = /^(https?):\/\/([^/:]+|\[[^\]]+\])(?::(\d{1,5}))?\/?$/

function compileCapability(entry: string): Capability {
  if (typeof entry !== 'string' || entry === '') throw new TypeError('a capability is a host pattern or an origin, such as "api.example.com" or "https://*.example.com"')
  if (!entry.includes('://')) return { source: entry, host: compileHostPattern(entry), scheme: undefined, port: undefined }
  const origin = ORIGIN.exec(entry)
  if (!origin) throw new TypeError(`"${entry}" is not an origin; write "https://host" or "http://host:8080", without a path`)
  const [, scheme, host, port] = origin as unknown as [string, 'http' | 'https', string, string | undefined]
  const number = port === undefined ? undefined : Number(port)
  if (number !== undefined && (number < 1 || number > 65535)) throw new TypeError(`"${entry}": port ${port} is outside 1-65535`)
  return { source: entry, host: compileHostPattern(host), scheme, port: number ?? (scheme === 'https' ? 443 : 80) }
}

export interface Capabilities {
  /** The declared entries, as written. */
  readonly declared: readonly string[]
  /** Undefined when declared; otherwise the detail of why not. */
  undeclared(request: Pick<GateRequest, 'host' | 'scheme' | 'port'>): string | undefined
}

/**
 * Compiles `capabilities.http`: host patterns (any scheme and port the host rules allow) or
 * origins (that scheme, and that port or the scheme's own). An empty list reaches nothing.
 * Throws a TypeError naming the bad entry.
 */
export function compileCapabilities(entries: readonly string[]): Capabilities {
  const compiled = entries.map((entry, i) => {
    try {
      return compileCapability(entry)
    } catch (error) {
      throw new TypeError(`capabilities.http[${i}]: ${(error as Error).message}`)
    }
  })
  return {
    declared: [...entries],
    undeclared(request) {
      const allowed = compiled.some(
        (c) => c.host.matches(request.host) && (c.scheme === undefined || (c.scheme === request.scheme && c.port === request.port)),
      )
      return allowed ? undefined : `the capsule's manifest does not declare ${request.scheme}://${request.host}:${request.port}`
    },
  }
}
