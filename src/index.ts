// The package root: the public API of capsule-host.
export { createSafeFetch } from './safe-fetch.js'
export type { SafeFetch, SafeFetchOptions, RequestContext, RequestEvent, StreamedResponse, Explanation, ErrorReply } from './safe-fetch.js'
export { AuditLog } from './audit.js'
export type { AuditEvent, AuditListener, AuditSink } from './audit.js'
export { CapsuleHostError, ERROR_CODES, TIMEOUT_PHASES, isCapsuleHostError, CapsuleError, CAPSULE_ERROR_CODES } from './errors.js'
export type { ErrorCode, TimeoutPhase, WireError, CapsuleErrorCode } from './errors.js'
export { createRuntime, DEFAULT_RUNTIME_LIMITS } from './runtime/runtime.js'
export type { Runtime, RuntimeOptions, RuntimeLimits, LoadOptions, Isolation } from './runtime/runtime.js'
export { Capsule, CallOutput } from './runtime/capsule.js'
export type { CallInput } from './runtime/capsule.js'
export { HOST_NAMESPACE, HOST_FUNCTION_NAMES } from './runtime/host-functions.js'
export { hasJspi } from './runtime/inline-engine.js'
export { DEFAULT_LIMITS } from './limits.js'
export type { Limits } from './limits.js'
export type { Rule } from './gate/rules.js'
export type { Policy, PolicyRequest } from './gate/decide.js'
export type { SecurityGate, GateRequest, GateVerdict, Decision } from './gate/types.js'
export type { Resolver } from './net/resolve.js'
export { systemResolver } from './net/resolve.js'
export type { AddressPolicyOptions } from './net/address-policy.js'
export type { AddressClass } from './net/address-table.js'
export { classifyAddress } from './net/classify.js'
export type { ClassifiedAddress, EmbeddedAddress } from './net/classify.js'
export { normaliseUrl } from './url/normalise.js'
export type { NormalisedUrl } from './url/normalise.js'
export {
  HttpRequestSchema,
  RequestOptionsSchema,
  BufferedResponseSchema,
  StreamStartSchema,
  ErrorReplySchema,
  REQUEST_BOUNDS,
} from './wire/schemas.js'
export { MAX_TIMER_MS } from './timers.js'
export { CheckedRequest } from './wire/parse.js'
export { MAX_CAPSULE_TEXT_CHARS, MAX_RAW_TEXT_BYTES } from './safe-text.js'
export type { HttpRequest, HttpRequestInput, RequestOptions, BufferedResponse, StreamStart } from './wire/schemas.js'
export { respond, SyntheticResponse } from './middleware/respond.js'
export type { RespondInit } from './middleware/respond.js'
export type { Middleware, MiddlewareOption, MiddlewareContext, MiddlewareRequest, MiddlewareResponse, Next } from './middleware/types.js'
export type { Route } from './gate/routes.js'
export { ManifestSchema, parseManifest, MANIFEST_FILE } from './runtime/manifest.js'
export type { Manifest } from './runtime/manifest.js'
