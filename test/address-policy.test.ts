// Checks createAddressPolicy: global unicast passes, blocked classes fail, exemptions (unsafeAllow, or its alias allow) open exactly their CIDR and never an embedded IPv4; bad options are TypeErrors.
import { describe, expect, test } from 'vitest'
import { createAddressPolicy } from '../src/net/address-policy.js'
import { classifyAddress, type ClassifiedAddress } from '../src/net/classify.js'
import { createSafeFetch } from '../src/index.js'

function classified(text: string): ClassifiedAddress {
  const c = classifyAddress(text)
  if (!c) throw new Error(`test row uses an invalid address: ${text}`)
  return c
}

interface PolicyRow {
  readonly name: string
  readonly allow: readonly string[]
  readonly address: string
  readonly allowed: boolean
}

// No allow entries: only global unicast, with nothing blocked embedded in it.
const DEFAULT_POLICY: ReadonlyArray<Omit<PolicyRow, 'allow'>> = [
  { name: 'public IPv4', address: '8.8.8.8', allowed: true },
  { name: 'public IPv4 just above 100.64/10', address: '100.128.0.0', allowed: true },
  { name: 'public IPv4 just above 172.16/12', address: '172.32.0.0', allowed: true },
  { name: 'public IPv4 just below 224/4', address: '223.255.255.255', allowed: true },
  { name: 'public IPv6', address: '2606:4700:4700::1111', allowed: true },
  { name: 'first of 2000::/3', address: '2000::', allowed: true },
  { name: 'just above 2001::/23', address: '2001:200::', allowed: true },
  { name: 'just above 3fff::/20', address: '3fff:1000::', allowed: true },
  { name: 'this-network', address: '0.0.0.0', allowed: false },
  { name: 'private 10/8', address: '10.0.0.1', allowed: false },
  { name: 'cgnat', address: '100.64.0.1', allowed: false },
  { name: 'loopback', address: '127.0.0.1', allowed: false },
  { name: 'link-local metadata', address: '169.254.169.254', allowed: false },
  { name: 'platform: Azure WireServer', address: '168.63.129.16', allowed: false },
  { name: 'just below the WireServer', address: '168.63.129.15', allowed: true },
  { name: 'just above the WireServer', address: '168.63.129.17', allowed: true },
  { name: 'NAT64-wrapped WireServer', address: '64:ff9b::a83f:8110', allowed: false },
  { name: 'private 172.16/12', address: '172.16.0.1', allowed: false },
  { name: 'ietf-protocol', address: '192.0.0.9', allowed: false },
  { name: 'documentation TEST-NET-1', address: '192.0.2.1', allowed: false },
  { name: 'as112', address: '192.31.196.1', allowed: false },
  { name: 'amt', address: '192.52.193.1', allowed: false },
  { name: '6to4-relay', address: '192.88.99.1', allowed: false },
  { name: 'private 192.168/16', address: '192.168.1.1', allowed: false },
  { name: 'benchmarking', address: '198.18.0.1', allowed: false },
  { name: 'multicast', address: '224.0.0.1', allowed: false },
  { name: 'reserved', address: '240.0.0.1', allowed: false },
  { name: 'broadcast', address: '255.255.255.255', allowed: false },
  { name: 'IPv6 unspecified', address: '::', allowed: false },
  { name: 'IPv6 loopback', address: '::1', allowed: false },
  { name: 'mapped loopback', address: '::ffff:127.0.0.1', allowed: false },
  { name: 'mapped public (the mapped form itself is refused)', address: '::ffff:8.8.8.8', allowed: false },
  { name: 'compatible loopback', address: '::7f00:1', allowed: false },
  { name: 'SIIT public', address: '::ffff:0:808:808', allowed: false },
  { name: 'NAT64 public', address: '64:ff9b::808:808', allowed: false },
  { name: 'local-use NAT64', address: '64:ff9b:1::1', allowed: false },
  { name: 'discard', address: '100::1', allowed: false },
  { name: 'Teredo', address: '2001:0:808:808::f7f7:f7f7', allowed: false },
  { name: 'IETF protocol assignments', address: '2001:1::1', allowed: false },
  { name: 'IPv6 benchmarking', address: '2001:2::1', allowed: false },
  { name: 'ORCHIDv2', address: '2001:20::1', allowed: false },
  { name: 'IPv6 documentation', address: '2001:db8::1', allowed: false },
  { name: 'IPv6 documentation 3fff::/20', address: '3fff::1', allowed: false },
  { name: '6to4 public', address: '2002:808:808::', allowed: false },
  { name: 'IPv6 as112', address: '2620:4f:8000::1', allowed: false },
  { name: 'SRv6 SIDs', address: '5f00::1', allowed: false },
  { name: 'unique-local', address: 'fd00::1', allowed: false },
  { name: 'IPv6 link-local', address: 'fe80::1', allowed: false },
  { name: 'site-local', address: 'fec0::1', allowed: false },
  { name: 'IPv6 multicast', address: 'ff02::1', allowed: false },
  { name: 'below 2000::/3', address: '1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', allowed: false },
  { name: 'above 2000::/3', address: '4000::', allowed: false },
]

describe('default policy (no allow entries)', () => {
  const policy = createAddressPolicy()
  test.each(DEFAULT_POLICY)('$name: $address -> $allowed', ({ address, allowed }) => {
    expect(policy.isAllowed(classified(address))).toBe(allowed)
  })
  test('an explicit empty allow list is the same as none', () => {
    expect(createAddressPolicy({ allow: [] }).isAllowed(classified('127.0.0.1'))).toBe(false)
  })
})

const WITH_ALLOW: readonly PolicyRow[] = [
  // Exactly 127.0.0.1: no other loopback, no IPv6 spelling of it
  { name: '/32 itself', allow: ['127.0.0.1/32'], address: '127.0.0.1', allowed: true },
  { name: '/32 next address', allow: ['127.0.0.1/32'], address: '127.0.0.2', allowed: false },
  { name: '/32 previous address', allow: ['127.0.0.1/32'], address: '127.0.0.0', allowed: false },
  { name: '/32 not IPv6 loopback', allow: ['127.0.0.1/32'], address: '::1', allowed: false },
  { name: '/32 not mapped', allow: ['127.0.0.1/32'], address: '::ffff:127.0.0.1', allowed: false },
  { name: '/32 not compatible', allow: ['127.0.0.1/32'], address: '::127.0.0.1', allowed: false },
  { name: '/32 not NAT64', allow: ['127.0.0.1/32'], address: '64:ff9b::7f00:1', allowed: false },
  { name: '/32 not 6to4', allow: ['127.0.0.1/32'], address: '2002:7f00:1::', allowed: false },
  { name: '/32 other blocked class still refused', allow: ['127.0.0.1/32'], address: '10.0.0.1', allowed: false },
  { name: '/32 global unicast still allowed', allow: ['127.0.0.1/32'], address: '8.8.8.8', allowed: true },
  // A bare address is /32 or /128
  { name: 'bare IPv4 itself', allow: ['127.0.0.1'], address: '127.0.0.1', allowed: true },
  { name: 'bare IPv4 next address', allow: ['127.0.0.1'], address: '127.0.0.2', allowed: false },
  { name: 'bare IPv6 itself', allow: ['::1'], address: '::1', allowed: true },
  { name: 'bare IPv6 previous address', allow: ['::1'], address: '::', allowed: false },
  { name: 'bare IPv6 next address', allow: ['::1'], address: '::2', allowed: false },
  { name: 'bare IPv6 is not IPv4 loopback', allow: ['::1'], address: '127.0.0.1', allowed: false },
  { name: 'bare ULA itself', allow: ['fd00::1'], address: 'fd00::1', allowed: true },
  { name: 'bare ULA next address', allow: ['fd00::1'], address: 'fd00::2', allowed: false },
  { name: 'bare upper-case IPv6', allow: ['FD00::1'], address: 'fd00::1', allowed: true },
  // The platform row is exempted like any other
  { name: 'WireServer exempted', allow: ['168.63.129.16/32'], address: '168.63.129.16', allowed: true },
  { name: 'WireServer exempted as a bare address', allow: ['168.63.129.16'], address: '168.63.129.16', allowed: true },
  { name: 'WireServer exemption does not open 169.254/16', allow: ['168.63.129.16/32'], address: '169.254.169.254', allowed: false },
  { name: 'NAT64 prefix alone: embedded WireServer refused', allow: ['64:ff9b::/96'], address: '64:ff9b::a83f:8110', allowed: false },
  { name: 'NAT64 prefix + WireServer: embedded WireServer allowed', allow: ['64:ff9b::/96', '168.63.129.16/32'], address: '64:ff9b::a83f:8110', allowed: true },
  // Wider prefixes: first and last inside, neighbours outside
  { name: '10/8 first', allow: ['10.0.0.0/8'], address: '10.0.0.0', allowed: true },
  { name: '10/8 last', allow: ['10.0.0.0/8'], address: '10.255.255.255', allowed: true },
  { name: '10/8 does not open 172.16/12', allow: ['10.0.0.0/8'], address: '172.16.0.1', allowed: false },
  { name: '10/8 does not open mapped 10/8', allow: ['10.0.0.0/8'], address: '::ffff:10.0.0.1', allowed: false },
  { name: 'host bits set in entry', allow: ['10.1.2.3/8'], address: '10.200.0.1', allowed: true },
  { name: 'fd00::/8 first', allow: ['fd00::/8'], address: 'fd00::', allowed: true },
  { name: 'fd00::/8 last', allow: ['fd00::/8'], address: 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', allowed: true },
  { name: 'fd00::/8 below', allow: ['fd00::/8'], address: 'fcff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', allowed: false },
  { name: '0.0.0.0/0 opens IPv4 private', allow: ['0.0.0.0/0'], address: '192.168.1.1', allowed: true },
  { name: '0.0.0.0/0 does not open IPv6', allow: ['0.0.0.0/0'], address: '::1', allowed: false },
  { name: '::/0 opens IPv6 loopback', allow: ['::/0'], address: '::1', allowed: true },
  { name: '::/0 does not open IPv4', allow: ['::/0'], address: '127.0.0.1', allowed: false },
  { name: '::/0 does not open mapped loopback', allow: ['::/0'], address: '::ffff:127.0.0.1', allowed: false },
  { name: '::/0 opens mapped public', allow: ['::/0'], address: '::ffff:8.8.8.8', allowed: true },
  // An IPv6 embedding prefix never opens the IPv4 it wraps
  { name: 'NAT64 prefix: embedded loopback refused', allow: ['64:ff9b::/96'], address: '64:ff9b::7f00:1', allowed: false },
  { name: 'NAT64 prefix: embedded metadata refused', allow: ['64:ff9b::/96'], address: '64:ff9b::a9fe:a9fe', allowed: false },
  { name: 'NAT64 prefix: embedded private refused', allow: ['64:ff9b::/96'], address: '64:ff9b::a00:1', allowed: false },
  { name: 'NAT64 prefix: embedded public allowed', allow: ['64:ff9b::/96'], address: '64:ff9b::808:808', allowed: true },
  { name: 'NAT64 prefix + 127/8: embedded loopback allowed', allow: ['64:ff9b::/96', '127.0.0.0/8'], address: '64:ff9b::7f00:1', allowed: true },
  { name: 'mapped prefix: embedded loopback refused', allow: ['::ffff:0:0/96'], address: '::ffff:127.0.0.1', allowed: false },
  { name: 'mapped prefix: embedded public allowed', allow: ['::ffff:0:0/96'], address: '::ffff:8.8.8.8', allowed: true },
  { name: 'SIIT prefix: embedded loopback refused', allow: ['::ffff:0:0:0/96'], address: '::ffff:0:7f00:1', allowed: false },
  { name: 'compatible prefix: embedded loopback refused', allow: ['::/96'], address: '::7f00:1', allowed: false },
  { name: 'compatible prefix: embedded public allowed', allow: ['::/96'], address: '::808:808', allowed: true },
  { name: '6to4 prefix alone: embedded loopback refused', allow: ['2002::/16'], address: '2002:7f00:1::', allowed: false },
  { name: '6to4 prefix + 127/8: embedded loopback allowed', allow: ['2002::/16', '127.0.0.0/8'], address: '2002:7f00:1::', allowed: true },
  { name: '6to4 prefix + 127/8: embedded private still refused', allow: ['2002::/16', '127.0.0.0/8'], address: '2002:a00:1::', allowed: false },
  { name: '6to4 prefix: embedded public allowed', allow: ['2002::/16'], address: '2002:808:808::', allowed: true },
  // Local-use NAT64 hides its IPv4 at an operator-chosen place: never opened, whatever the exemption.
  { name: 'local-use NAT64 prefix exempted: still refused', allow: ['64:ff9b:1::/48'], address: '64:ff9b:1::808:808', allowed: false },
  { name: 'everything exempted: local-use NAT64 still refused', allow: ['::/0', '0.0.0.0/0'], address: '64:ff9b:1::7f00:1', allowed: false },
  { name: 'everything exempted: its neighbour is allowed', allow: ['::/0', '0.0.0.0/0'], address: '64:ff9b:2::1', allowed: true },
  { name: 'Teredo prefix: both public', allow: ['2001::/32'], address: '2001:0:808:808::f7f7:f7f7', allowed: true },
  { name: 'Teredo prefix: client loopback refused', allow: ['2001::/32'], address: '2001:0:808:808::80ff:fffe', allowed: false },
  { name: 'Teredo prefix: server private refused', allow: ['2001::/32'], address: '2001:0:a00:1::f7f7:f7f7', allowed: false },
  { name: 'Teredo prefix + 127/8: client loopback allowed', allow: ['2001::/32', '127.0.0.0/8'], address: '2001:0:808:808::80ff:fffe', allowed: true },
  // An IPv4 allow entry alone does not open the IPv6 wrapper
  { name: '127/8 alone does not open 6to4 wrapper', allow: ['127.0.0.0/8'], address: '2002:7f00:1::', allowed: false },
  // Dotted spelling in an entry means the address it spells
  { name: 'compatible entry opens compatible', allow: ['::127.0.0.1/128', '127.0.0.1/32'], address: '::7f00:1', allowed: true },
  { name: 'compatible entry does not open mapped', allow: ['::127.0.0.1/128', '127.0.0.1/32'], address: '::ffff:7f00:1', allowed: false },
  { name: 'mapped entry opens mapped', allow: ['::ffff:127.0.0.1', '127.0.0.1'], address: '::ffff:7f00:1', allowed: true },
]

describe('allow entries', () => {
  test.each(WITH_ALLOW)('$name: allow $allow, $address -> $allowed', ({ allow, address, allowed }) => {
    expect(createAddressPolicy({ allow }).isAllowed(classified(address))).toBe(allowed)
  })
})

const INVALID_ENTRIES = [
  { name: 'word', entry: 'nope' },
  { name: 'IPv4 prefix over 32', entry: '10.0.0.0/33' },
  { name: 'IPv6 prefix over 128', entry: '::/129' },
  { name: 'empty', entry: '' },
  { name: 'missing prefix length', entry: '10.0.0.0/' },
  { name: 'missing address', entry: '/8' },
  { name: 'two prefix lengths', entry: '10.0.0.0/8/8' },
  { name: 'negative prefix length', entry: '10.0.0.0/-1' },
  { name: 'zero-padded prefix length', entry: '10.0.0.0/08' },
  { name: 'space before slash', entry: '10.0.0.0 /8' },
  { name: 'trailing space', entry: '10.0.0.0/8 ' },
  { name: 'short IPv4', entry: '127.1/32' },
  { name: 'hex IPv4', entry: '0x7f.0.0.1' },
  { name: 'IPv4 as one number', entry: '2130706433' },
  { name: 'zone index', entry: 'fe80::1%eth0/64' },
  { name: 'bracketed IPv6', entry: '[::1]/128' },
  { name: 'host name', entry: 'localhost' },
]

describe('invalid allow entries', () => {
  test.each(INVALID_ENTRIES)('$name: $entry', ({ entry }) => {
    let thrown: unknown
    try {
      createAddressPolicy({ allow: ['127.0.0.1/32', entry] })
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(TypeError)
    expect((thrown as Error).message).toBe(
      `addressPolicy.allow: "${entry}" is not a CIDR; write it as "127.0.0.1/32" or "fd00::/8"`,
    )
  })
})

// explain() runs resolution and the address policy without sending: nothing connects to the address.
describe('explain(): the Azure WireServer is a platform address', () => {
  const WIRESERVER = { url: 'https://wire.test/machine?comp=goalstate' }
  const explainWith = async (allow: string[]) => {
    const fetch = createSafeFetch({ rules: [{ host: 'wire.test' }], resolver: async () => ['168.63.129.16'], addressPolicy: { allow } })
    try {
      return await fetch.explain(WIRESERVER, { capsuleId: 'c' })
    } finally {
      await fetch.close()
    }
  }

  test('denied by default as blocked_address, class platform', async () => {
    expect(await explainWith([])).toMatchObject({ allowed: false, code: 'blocked_address', addresses: [{ address: '168.63.129.16', class: 'platform' }] })
  })

  test('allowed when addressPolicy exempts it', async () => {
    const explanation = await explainWith(['168.63.129.16/32'])
    expect(explanation).toMatchObject({ allowed: true, addresses: [{ address: '168.63.129.16', class: 'platform' }] })
    expect(explanation).not.toHaveProperty('code')
  })
})

// `unsafeAllow` is the exemption's name; `allow` is its deprecated alias with the same meaning.
describe('unsafeAllow and its alias allow', () => {
  test.each(WITH_ALLOW)('$name: unsafeAllow $allow, $address -> $allowed', ({ allow, address, allowed }) => {
    expect(createAddressPolicy({ unsafeAllow: allow }).isAllowed(classified(address))).toBe(allowed)
  })

  const BAD_OPTIONS: ReadonlyArray<{ name: string; options: unknown; message: string }> = [
    {
      name: 'both names',
      options: { unsafeAllow: ['127.0.0.1/32'], allow: ['10.0.0.0/8'] },
      message: 'addressPolicy: give "unsafeAllow" or its deprecated alias "allow", not both',
    },
    { name: 'both names, empty', options: { unsafeAllow: [], allow: [] }, message: 'addressPolicy: give "unsafeAllow" or its deprecated alias "allow", not both' },
    { name: 'unsafeAllow a string', options: { unsafeAllow: '127.0.0.1/32' }, message: 'addressPolicy.unsafeAllow must be an array of CIDR strings, such as ["127.0.0.1/32"], not a string' },
    { name: 'allow a string', options: { allow: '127.0.0.1/32' }, message: 'addressPolicy.allow must be an array of CIDR strings, such as ["127.0.0.1/32"], not a string' },
    { name: 'unsafeAllow null', options: { unsafeAllow: null }, message: 'addressPolicy.unsafeAllow must be an array of CIDR strings, such as ["127.0.0.1/32"], not null' },
    { name: 'allow entry a number', options: { allow: ['127.0.0.1/32', 127] }, message: 'addressPolicy.allow[1] must be a CIDR string, such as "127.0.0.1/32", not a number' },
    { name: 'options an array', options: ['127.0.0.1/32'], message: 'addressPolicy must be an object, not an array' },
    { name: 'allowed (a typo)', options: { allowed: ['127.0.0.1/32'] }, message: 'unknown option "addressPolicy.allowed"; did you mean "addressPolicy.unsafeAllow"?' },
    { name: 'unsafeAllowAddresses', options: { unsafeAllowAddresses: [] }, message: 'unknown option "addressPolicy.unsafeAllowAddresses"; the options are addressPolicy.unsafeAllow' },
    { name: 'bad CIDR under unsafeAllow', options: { unsafeAllow: ['nope'] }, message: 'addressPolicy.unsafeAllow: "nope" is not a CIDR; write it as "127.0.0.1/32" or "fd00::/8"' },
  ]
  test.each(BAD_OPTIONS)('$name is a TypeError', ({ options, message }) => {
    expect(() => createAddressPolicy(options as never)).toThrow(new TypeError(message))
    expect(() => createAddressPolicy(options as never)).toThrow(TypeError)
  })
})
