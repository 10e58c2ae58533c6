// The wire protocol's namespace and host function names, apart from the host functions themselves (no engine types).
export const HOST_NAMESPACE = 'extism:host/user'

/** The four functions of the wire protocol, the stream reader with errors as values, then capsule-host's fast-path extensions. */
export const HOST_FUNCTION_NAMES = [
  'http_request',
  'http_stream_start',
  'http_stream_read',
  'http_stream_close',
  'http_stream_next',
  'http_stream_read_into',
  'mem_to_block',
  'block_to_mem',
] as const
