// Runs a list of middleware as one (ctx, next) chain around a terminal; next() may be called once.
import type { Middleware, MiddlewareContext, MiddlewareResponse } from './types.js'

/**
 * Turns what one middleware returned into the response the middleware above it gets from its
 * `next()`. `fromNext` is what this middleware's own `next()` resolved to, if it called it.
 */
export type Normalise = (result: unknown, fromNext: MiddlewareResponse | undefined) => MiddlewareResponse

/**
 * Runs `chain` in order (global, then origin, then route); the innermost `next()` calls
 * `terminal`. Calling `next()` twice in one middleware is an error.
 */
export function runChain(
  chain: readonly Middleware[],
  context: MiddlewareContext,
  terminal: () => Promise<MiddlewareResponse>,
  normalise: Normalise,
): Promise<MiddlewareResponse> {
  const dispatch = async (index: number): Promise<MiddlewareResponse> => {
    if (index === chain.length) return terminal()
    let fromNext: MiddlewareResponse | undefined
    let called = false
    const next = async (): Promise<MiddlewareResponse> => {
      if (called) throw new Error(`next() called more than once (middleware ${index} of ${chain.length})`)
      called = true
      fromNext = await dispatch(index + 1)
      return fromNext
    }
    return normalise(await chain[index]!(context, next), fromNext)
  }
  return dispatch(0)
}

/** Flattens one middleware or a list into a list, checking each is a function. */
export function middlewareList(option: unknown, where: string): Middleware[] {
  if (option === undefined) return []
  const list = Array.isArray(option) ? option : [option]
  list.forEach((m, i) => {
    if (typeof m !== 'function') {
      throw new TypeError(`${where}${Array.isArray(option) ? `[${i}]` : ''}: middleware must be a function (ctx, next) => ...`)
    }
  })
  return list as Middleware[]
}
