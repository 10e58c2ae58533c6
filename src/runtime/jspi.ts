// Whether this Node has JS Promise Integration, and the refusal of an isolation that needs it.
import { CapsuleError } from '../errors.js'

/** True when this Node can suspend Wasm on a promise (JSPI): Node 25+, or 24 with --experimental-wasm-jspi. */
export function hasJspi(): boolean {
  const wasm = WebAssembly as unknown as { Suspending?: unknown; promising?: unknown }
  return typeof wasm.Suspending === 'function' && typeof wasm.promising === 'function'
}

/** Refuses an isolation that needs JSPI on a Node without it, naming the versions that have it. */
export function requireJspi(isolation: 'inline' | 'pool'): void {
  if (hasJspi()) return
  throw new CapsuleError(
    'unsupported',
    `isolation "${isolation}" needs JS Promise Integration (WebAssembly.Suspending), which Node ${process.version} does not have; use Node 25+ (or 24 with --experimental-wasm-jspi), or isolation "worker"`,
  )
}
