// The body cap: checked against a declared content-length at the head and against the bytes counted.
import { CapsuleHostError } from '../../errors.js'
import type { HeaderList } from '../headers.js'

/** too_large when the final head declares more than `maxBodyBytes` for a response that has a body. */
export function declaredTooLarge(
  method: string,
  status: number,
  headers: HeaderList,
  maxBodyBytes: number,
): CapsuleHostError | undefined {
  // HEAD, 204 and 304 carry a content-length but no body (RFC 9110 §8.6).
  if (method === 'HEAD' || status === 204 || status === 304) return undefined
  const declared = headers.find(([name]) => name === 'content-length')?.[1]
  if (declared === undefined || !(Number(declared) > maxBodyBytes)) return undefined
  return new CapsuleHostError('too_large', `the response declares ${declared} bytes; the limit is ${maxBodyBytes}`)
}

/** too_large once the bytes received exceed `maxBodyBytes`. */
export function countedTooLarge(bytesRead: number, maxBodyBytes: number): CapsuleHostError | undefined {
  if (bytesRead <= maxBodyBytes) return undefined
  return new CapsuleHostError('too_large', `the response body exceeds the limit of ${maxBodyBytes} bytes`)
}
