// capsule-host/testing: scripted loopback upstreams and a host wired to reach only them, for testing capsules and hosts.
export { createTestHost } from './host.js'
export type { TestHost, TestHostOptions, RunResult, RunLoadOptions } from './host.js'
export { startUpstreams, UPSTREAM_ADDRESS } from './upstreams.js'
export type { Upstreams, Upstream, ReceivedRequest } from './upstreams.js'
export { loadMocks, parseMocks } from './mocks.js'
export type { MockDescription, MockUpstream, MockRoute, MockChunk, MockReset } from './mocks.js'
export { makeTestCertificates } from './certs.js'
export type { TestCertificates } from './certs.js'
