// Parses what a capsule sent (bytes, text or a value) into a typed request, or one invalid_request error.
import { z } from 'zod'
import { CapsuleHostError } from '../errors.js'
import { HttpRequestSchema, type HttpRequest } from './schemas.js'

const utf8 = new TextDecoder('utf-8', { fatal: true })

function invalid(message: string, cause?: unknown): CapsuleHostError {
  return new CapsuleHostError('invalid_request', message, { cause })
}

/** The refusal for a request over the size limit; the worker gives the same one without copying the bytes out. */
export function tooLargeMessage(size: number, maxBytes: number): string {
  return `the request is ${size} bytes; the limit is ${maxBytes}`
}

/**
 * Accepts the request as raw bytes (what a host function reads from capsule memory), as JSON
 * text, or as an already-parsed value. Bytes and text are capped at `maxBytes` before parsing.
 */
export function parseRequest(input: unknown, maxBytes: number): HttpRequest {
  let value = input
  if (input instanceof Uint8Array || typeof input === 'string') {
    const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength
    if (size > maxBytes) throw invalid(tooLargeMessage(size, maxBytes))
    let text: string
    try {
      text = typeof input === 'string' ? input : utf8.decode(input)
    } catch (cause) {
      throw invalid('the request is not valid UTF-8', cause)
    }
    try {
      value = JSON.parse(text)
    } catch (cause) {
      throw invalid('the request is not valid JSON', cause)
    }
  }
  const result = HttpRequestSchema.safeParse(value)
  if (!result.success) throw invalid(`invalid request: ${z.prettifyError(result.error)}`)
  return result.data
}
