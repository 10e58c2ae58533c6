// Checks classifyAddress/parseAddress: every special block's edges and neighbours, every IPv4-embedding form, and strict parsing.
import { describe, expect, test } from 'vitest'
import type { AddressClass } from '../src/net/address-table.js'
import { classifyAddress, parseAddress } from '../src/net/classify.js'

interface EdgeRow {
  readonly name: string
  readonly input: string
  readonly class: AddressClass
}

/** The fields a boundary row checks: canonical text, family and class. */
function summary(input: string) {
  const c = classifyAddress(input)
  return c && { address: c.address, family: c.family, class: c.class }
}

// Every row of IPV4_SPECIAL, written out by hand: first and last address of the block, and the
// addresses just below and just above it.
const IPV4_EDGES: readonly EdgeRow[] = [
  // 0.0.0.0/8 this-network (nothing below it)
  { name: '0/8 first', input: '0.0.0.0', class: 'this-network' },
  { name: '0/8 last', input: '0.255.255.255', class: 'this-network' },
  { name: '0/8 above', input: '1.0.0.0', class: 'unicast' },
  // 10.0.0.0/8 private
  { name: '10/8 below', input: '9.255.255.255', class: 'unicast' },
  { name: '10/8 first', input: '10.0.0.0', class: 'private' },
  { name: '10/8 last', input: '10.255.255.255', class: 'private' },
  { name: '10/8 above', input: '11.0.0.0', class: 'unicast' },
  // 100.64.0.0/10 cgnat
  { name: '100.64/10 below', input: '100.63.255.255', class: 'unicast' },
  { name: '100.64/10 first', input: '100.64.0.0', class: 'cgnat' },
  { name: '100.64/10 last', input: '100.127.255.255', class: 'cgnat' },
  { name: '100.64/10 above', input: '100.128.0.0', class: 'unicast' },
  // 127.0.0.0/8 loopback
  { name: '127/8 below', input: '126.255.255.255', class: 'unicast' },
  { name: '127/8 first', input: '127.0.0.0', class: 'loopback' },
  { name: '127/8 usual', input: '127.0.0.1', class: 'loopback' },
  { name: '127/8 last', input: '127.255.255.255', class: 'loopback' },
  { name: '127/8 above', input: '128.0.0.0', class: 'unicast' },
  // 168.63.129.16/32 platform (Azure WireServer): public unicast by IANA, a platform endpoint in Azure
  { name: '168.63.129.16/32 below', input: '168.63.129.15', class: 'unicast' },
  { name: '168.63.129.16/32 only', input: '168.63.129.16', class: 'platform' },
  { name: '168.63.129.16/32 above', input: '168.63.129.17', class: 'unicast' },
  // 169.254.0.0/16 link-local
  { name: '169.254/16 below', input: '169.253.255.255', class: 'unicast' },
  { name: '169.254/16 first', input: '169.254.0.0', class: 'link-local' },
  { name: '169.254/16 metadata', input: '169.254.169.254', class: 'link-local' },
  { name: '169.254/16 last', input: '169.254.255.255', class: 'link-local' },
  { name: '169.254/16 above', input: '169.255.0.0', class: 'unicast' },
  // 172.16.0.0/12 private
  { name: '172.16/12 below', input: '172.15.255.255', class: 'unicast' },
  { name: '172.16/12 first', input: '172.16.0.0', class: 'private' },
  { name: '172.16/12 last', input: '172.31.255.255', class: 'private' },
  { name: '172.16/12 above', input: '172.32.0.0', class: 'unicast' },
  // 192.0.0.0/24 ietf-protocol (includes the registry's "globally reachable" .9 and .10: still refused)
  { name: '192.0.0/24 below', input: '191.255.255.255', class: 'unicast' },
  { name: '192.0.0/24 first', input: '192.0.0.0', class: 'ietf-protocol' },
  { name: '192.0.0/24 PCP anycast', input: '192.0.0.9', class: 'ietf-protocol' },
  { name: '192.0.0/24 NAT64 discovery', input: '192.0.0.170', class: 'ietf-protocol' },
  { name: '192.0.0/24 last', input: '192.0.0.255', class: 'ietf-protocol' },
  { name: '192.0.0/24 above', input: '192.0.1.0', class: 'unicast' },
  // 192.0.2.0/24 documentation (TEST-NET-1)
  { name: '192.0.2/24 below', input: '192.0.1.255', class: 'unicast' },
  { name: '192.0.2/24 first', input: '192.0.2.0', class: 'documentation' },
  { name: '192.0.2/24 last', input: '192.0.2.255', class: 'documentation' },
  { name: '192.0.2/24 above', input: '192.0.3.0', class: 'unicast' },
  // 192.31.196.0/24 as112
  { name: '192.31.196/24 below', input: '192.31.195.255', class: 'unicast' },
  { name: '192.31.196/24 first', input: '192.31.196.0', class: 'as112' },
  { name: '192.31.196/24 last', input: '192.31.196.255', class: 'as112' },
  { name: '192.31.196/24 above', input: '192.31.197.0', class: 'unicast' },
  // 192.52.193.0/24 amt
  { name: '192.52.193/24 below', input: '192.52.192.255', class: 'unicast' },
  { name: '192.52.193/24 first', input: '192.52.193.0', class: 'amt' },
  { name: '192.52.193/24 last', input: '192.52.193.255', class: 'amt' },
  { name: '192.52.193/24 above', input: '192.52.194.0', class: 'unicast' },
  // 192.88.99.0/24 6to4-relay
  { name: '192.88.99/24 below', input: '192.88.98.255', class: 'unicast' },
  { name: '192.88.99/24 first', input: '192.88.99.0', class: '6to4-relay' },
  { name: '192.88.99/24 last', input: '192.88.99.255', class: '6to4-relay' },
  { name: '192.88.99/24 above', input: '192.88.100.0', class: 'unicast' },
  // 192.168.0.0/16 private
  { name: '192.168/16 below', input: '192.167.255.255', class: 'unicast' },
  { name: '192.168/16 first', input: '192.168.0.0', class: 'private' },
  { name: '192.168/16 last', input: '192.168.255.255', class: 'private' },
  { name: '192.168/16 above', input: '192.169.0.0', class: 'unicast' },
  // 192.175.48.0/24 as112 (direct delegation)
  { name: '192.175.48/24 below', input: '192.175.47.255', class: 'unicast' },
  { name: '192.175.48/24 first', input: '192.175.48.0', class: 'as112' },
  { name: '192.175.48/24 last', input: '192.175.48.255', class: 'as112' },
  { name: '192.175.48/24 above', input: '192.175.49.0', class: 'unicast' },
  // 198.18.0.0/15 benchmarking
  { name: '198.18/15 below', input: '198.17.255.255', class: 'unicast' },
  { name: '198.18/15 first', input: '198.18.0.0', class: 'benchmarking' },
  { name: '198.18/15 last', input: '198.19.255.255', class: 'benchmarking' },
  { name: '198.18/15 above', input: '198.20.0.0', class: 'unicast' },
  // 198.51.100.0/24 documentation (TEST-NET-2)
  { name: '198.51.100/24 below', input: '198.51.99.255', class: 'unicast' },
  { name: '198.51.100/24 first', input: '198.51.100.0', class: 'documentation' },
  { name: '198.51.100/24 last', input: '198.51.100.255', class: 'documentation' },
  { name: '198.51.100/24 above', input: '198.51.101.0', class: 'unicast' },
  // 203.0.113.0/24 documentation (TEST-NET-3)
  { name: '203.0.113/24 below', input: '203.0.112.255', class: 'unicast' },
  { name: '203.0.113/24 first', input: '203.0.113.0', class: 'documentation' },
  { name: '203.0.113/24 last', input: '203.0.113.255', class: 'documentation' },
  { name: '203.0.113/24 above', input: '203.0.114.0', class: 'unicast' },
  // 224.0.0.0/4 multicast (the block above is reserved 240/4)
  { name: '224/4 below', input: '223.255.255.255', class: 'unicast' },
  { name: '224/4 first', input: '224.0.0.0', class: 'multicast' },
  { name: '224/4 last', input: '239.255.255.255', class: 'multicast' },
  // 240.0.0.0/4 reserved (its very last address is the broadcast row)
  { name: '240/4 first (above 224/4)', input: '240.0.0.0', class: 'reserved' },
  { name: '240/4 last before broadcast', input: '255.255.255.254', class: 'reserved' },
  // 255.255.255.255/32 broadcast (nothing above it)
  { name: '255.255.255.255/32 only', input: '255.255.255.255', class: 'broadcast' },
  // Ordinary global unicast
  { name: 'public 8.8.8.8', input: '8.8.8.8', class: 'unicast' },
  { name: 'public 1.1.1.1', input: '1.1.1.1', class: 'unicast' },
]

// Every row of IPV6_SPECIAL, and the edges of 2000::/3 itself (the allow-list), in RFC 5952 form.
const IPV6_EDGES: readonly EdgeRow[] = [
  // 2000::/3 global unicast: the only reachable block
  { name: '2000::/3 below', input: '1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: '2000::/3 first', input: '2000::', class: 'unicast' },
  { name: '2000::/3 last', input: '3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'unicast' },
  { name: '2000::/3 above', input: '4000::', class: 'not-global-unicast' },
  // 2001::/32 teredo (inside 2001::/23)
  { name: '2001::/32 below', input: '2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'unicast' },
  { name: '2001::/32 first', input: '2001::', class: 'teredo' },
  { name: '2001::/32 last', input: '2001:0:ffff:ffff:ffff:ffff:ffff:ffff', class: 'teredo' },
  { name: '2001::/32 above', input: '2001:1::', class: 'ietf-protocol' },
  // 2001:2::/48 benchmarking
  { name: '2001:2::/48 below', input: '2001:1:ffff:ffff:ffff:ffff:ffff:ffff', class: 'ietf-protocol' },
  { name: '2001:2::/48 first', input: '2001:2::', class: 'benchmarking' },
  { name: '2001:2::/48 last', input: '2001:2:0:ffff:ffff:ffff:ffff:ffff', class: 'benchmarking' },
  { name: '2001:2::/48 above', input: '2001:2:1::', class: 'ietf-protocol' },
  // 2001:10::/28 orchid
  { name: '2001:10::/28 below', input: '2001:f:ffff:ffff:ffff:ffff:ffff:ffff', class: 'ietf-protocol' },
  { name: '2001:10::/28 first', input: '2001:10::', class: 'orchid' },
  { name: '2001:10::/28 last', input: '2001:1f:ffff:ffff:ffff:ffff:ffff:ffff', class: 'orchid' },
  // 2001:20::/28 orchid v2 (its first address is also the address above 2001:10::/28)
  { name: '2001:20::/28 first', input: '2001:20::', class: 'orchid' },
  { name: '2001:20::/28 last', input: '2001:2f:ffff:ffff:ffff:ffff:ffff:ffff', class: 'orchid' },
  { name: '2001:20::/28 above', input: '2001:30::', class: 'ietf-protocol' },
  // 2001::/23 ietf-protocol (its first address is teredo, the more specific row)
  { name: '2001::/23 first outside teredo', input: '2001:1::', class: 'ietf-protocol' },
  { name: '2001::/23 AMT', input: '2001:3::1', class: 'ietf-protocol' },
  { name: '2001::/23 last', input: '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'ietf-protocol' },
  { name: '2001::/23 above', input: '2001:200::', class: 'unicast' },
  // 2001:db8::/32 documentation
  { name: '2001:db8::/32 below', input: '2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', class: 'unicast' },
  { name: '2001:db8::/32 first', input: '2001:db8::', class: 'documentation' },
  { name: '2001:db8::/32 last', input: '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', class: 'documentation' },
  { name: '2001:db8::/32 above', input: '2001:db9::', class: 'unicast' },
  // 2002::/16 6to4
  { name: '2002::/16 below', input: '2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'unicast' },
  { name: '2002::/16 first', input: '2002::', class: '6to4' },
  { name: '2002::/16 last', input: '2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: '6to4' },
  { name: '2002::/16 above', input: '2003::', class: 'unicast' },
  // 2620:4f:8000::/48 as112
  { name: '2620:4f:8000::/48 below', input: '2620:4f:7fff:ffff:ffff:ffff:ffff:ffff', class: 'unicast' },
  { name: '2620:4f:8000::/48 first', input: '2620:4f:8000::', class: 'as112' },
  { name: '2620:4f:8000::/48 last', input: '2620:4f:8000:ffff:ffff:ffff:ffff:ffff', class: 'as112' },
  { name: '2620:4f:8000::/48 above', input: '2620:4f:8001::', class: 'unicast' },
  // 3fff::/20 documentation
  { name: '3fff::/20 below', input: '3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'unicast' },
  { name: '3fff::/20 first', input: '3fff::', class: 'documentation' },
  { name: '3fff::/20 last', input: '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'documentation' },
  { name: '3fff::/20 above', input: '3fff:1000::', class: 'unicast' },
  // ::/128 unspecified and ::1/128 loopback (nothing below ::)
  { name: '::/128 only', input: '::', class: 'unspecified' },
  { name: '::1/128 only (above ::)', input: '::1', class: 'loopback' },
  // ::/96 ipv4-compatible (its first two addresses are :: and ::1)
  { name: '::/96 first after ::1', input: '::2', class: 'ipv4-compatible' },
  { name: '::/96 last', input: '::ffff:ffff', class: 'ipv4-compatible' },
  { name: '::/96 above', input: '::1:0:0', class: 'not-global-unicast' },
  // ::ffff:0:0/96 ipv4-mapped
  { name: '::ffff:0:0/96 below', input: '::fffe:ffff:ffff', class: 'not-global-unicast' },
  { name: '::ffff:0:0/96 first', input: '::ffff:0:0', class: 'ipv4-mapped' },
  { name: '::ffff:0:0/96 last', input: '::ffff:ffff:ffff', class: 'ipv4-mapped' },
  { name: '::ffff:0:0/96 above', input: '::1:0:0:0', class: 'not-global-unicast' },
  // ::ffff:0:0:0/96 ipv4-translated (SIIT)
  { name: '::ffff:0:0:0/96 below', input: '::fffe:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: '::ffff:0:0:0/96 first', input: '::ffff:0:0:0', class: 'ipv4-translated' },
  { name: '::ffff:0:0:0/96 last', input: '::ffff:0:ffff:ffff', class: 'ipv4-translated' },
  { name: '::ffff:0:0:0/96 above', input: '::ffff:1:0:0', class: 'not-global-unicast' },
  // 64:ff9b::/96 nat64
  { name: '64:ff9b::/96 below', input: '64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: '64:ff9b::/96 first', input: '64:ff9b::', class: 'nat64' },
  { name: '64:ff9b::/96 last', input: '64:ff9b::ffff:ffff', class: 'nat64' },
  { name: '64:ff9b::/96 above', input: '64:ff9b::1:0:0', class: 'not-global-unicast' },
  // 64:ff9b:1::/48 nat64 (local use)
  { name: '64:ff9b:1::/48 below', input: '64:ff9b:0:ffff:ffff:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: '64:ff9b:1::/48 first', input: '64:ff9b:1::', class: 'nat64' },
  { name: '64:ff9b:1::/48 last', input: '64:ff9b:1:ffff:ffff:ffff:ffff:ffff', class: 'nat64' },
  { name: '64:ff9b:1::/48 above', input: '64:ff9b:2::', class: 'not-global-unicast' },
  // 100::/64 discard
  { name: '100::/64 below', input: 'ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: '100::/64 first', input: '100::', class: 'discard' },
  { name: '100::/64 last', input: '100::ffff:ffff:ffff:ffff', class: 'discard' },
  // 100:0:0:1::/64 discard (dummy prefix; also the address above 100::/64)
  { name: '100:0:0:1::/64 first', input: '100:0:0:1::', class: 'discard' },
  { name: '100:0:0:1::/64 last', input: '100::1:ffff:ffff:ffff:ffff', class: 'discard' },
  { name: '100:0:0:1::/64 above', input: '100:0:0:2::', class: 'not-global-unicast' },
  // 5f00::/16 reserved (SRv6 SIDs)
  { name: '5f00::/16 below', input: '5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: '5f00::/16 first', input: '5f00::', class: 'reserved' },
  { name: '5f00::/16 last', input: '5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'reserved' },
  { name: '5f00::/16 above', input: '5f01::', class: 'not-global-unicast' },
  // fc00::/7 unique-local
  { name: 'fc00::/7 below', input: 'fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: 'fc00::/7 first', input: 'fc00::', class: 'unique-local' },
  { name: 'fc00::/7 last', input: 'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'unique-local' },
  { name: 'fc00::/7 above', input: 'fe00::', class: 'not-global-unicast' },
  // fe80::/10 link-local
  { name: 'fe80::/10 below', input: 'fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'not-global-unicast' },
  { name: 'fe80::/10 first', input: 'fe80::', class: 'link-local' },
  { name: 'fe80::/10 last', input: 'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'link-local' },
  // fec0::/10 site-local (its first address is the address above fe80::/10)
  { name: 'fec0::/10 first', input: 'fec0::', class: 'site-local' },
  { name: 'fec0::/10 last', input: 'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'site-local' },
  // ff00::/8 multicast (its first address is the address above fec0::/10; nothing above it)
  { name: 'ff00::/8 first', input: 'ff00::', class: 'multicast' },
  { name: 'ff00::/8 all-nodes', input: 'ff02::1', class: 'multicast' },
  { name: 'ff00::/8 last', input: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', class: 'multicast' },
  // Ordinary global unicast
  { name: 'public 2606:4700:4700::1111', input: '2606:4700:4700::1111', class: 'unicast' },
]

describe('IPv4 special blocks: edges and neighbours', () => {
  test.each(IPV4_EDGES)('$name: $input is $class', ({ input, class: expected }) => {
    expect(summary(input)).toEqual({ address: input, family: 4, class: expected })
  })
})

describe('IPv6 allow-list and special blocks: edges and neighbours', () => {
  test.each(IPV6_EDGES)('$name: $input is $class', ({ input, class: expected }) => {
    expect(summary(input)).toEqual({ address: input, family: 6, class: expected })
  })
})

interface EmbeddingRow {
  readonly name: string
  readonly input: string
  /** Canonical (RFC 5952) text of the IPv6 address. */
  readonly address: string
  readonly class: AddressClass
  readonly embedded: ReadonlyArray<{ address: string; class: AddressClass; form: string }>
}

const EMBEDDINGS: readonly EmbeddingRow[] = [
  // ::ffff:0:0/96 IPv4-mapped, dotted and hex spellings
  { name: 'mapped dotted', input: '::ffff:127.0.0.1', address: '::ffff:7f00:1', class: 'ipv4-mapped',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-mapped' }] },
  { name: 'mapped hex', input: '::ffff:7f00:1', address: '::ffff:7f00:1', class: 'ipv4-mapped',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-mapped' }] },
  { name: 'mapped hex upper-case', input: '::FFFF:7F00:1', address: '::ffff:7f00:1', class: 'ipv4-mapped',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-mapped' }] },
  { name: 'mapped uncompressed hex', input: '0:0:0:0:0:ffff:7f00:1', address: '::ffff:7f00:1', class: 'ipv4-mapped',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-mapped' }] },
  { name: 'mapped uncompressed dotted', input: '0:0:0:0:0:ffff:127.0.0.1', address: '::ffff:7f00:1', class: 'ipv4-mapped',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-mapped' }] },
  { name: 'mapped zero-padded hex', input: '0000:0000:0000:0000:0000:FFFF:7F00:0001', address: '::ffff:7f00:1', class: 'ipv4-mapped',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-mapped' }] },
  { name: 'mapped metadata', input: '::ffff:169.254.169.254', address: '::ffff:a9fe:a9fe', class: 'ipv4-mapped',
    embedded: [{ address: '169.254.169.254', class: 'link-local', form: 'ipv4-mapped' }] },
  { name: 'mapped private', input: '::ffff:a00:1', address: '::ffff:a00:1', class: 'ipv4-mapped',
    embedded: [{ address: '10.0.0.1', class: 'private', form: 'ipv4-mapped' }] },
  { name: 'mapped public', input: '::ffff:8.8.8.8', address: '::ffff:808:808', class: 'ipv4-mapped',
    embedded: [{ address: '8.8.8.8', class: 'unicast', form: 'ipv4-mapped' }] },
  { name: 'mapped 0.0.0.0', input: '::ffff:0.0.0.0', address: '::ffff:0:0', class: 'ipv4-mapped',
    embedded: [{ address: '0.0.0.0', class: 'this-network', form: 'ipv4-mapped' }] },
  // ::/96 IPv4-compatible (deprecated); :: and ::1 wrap nothing
  { name: 'compatible hex', input: '::7f00:1', address: '::7f00:1', class: 'ipv4-compatible',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-compatible' }] },
  { name: 'compatible dotted', input: '::127.0.0.1', address: '::7f00:1', class: 'ipv4-compatible',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-compatible' }] },
  { name: 'compatible uncompressed dotted', input: '0:0:0:0:0:0:127.0.0.1', address: '::7f00:1', class: 'ipv4-compatible',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-compatible' }] },
  { name: 'compatible metadata', input: '::A9FE:A9FE', address: '::a9fe:a9fe', class: 'ipv4-compatible',
    embedded: [{ address: '169.254.169.254', class: 'link-local', form: 'ipv4-compatible' }] },
  { name: 'compatible ::2', input: '::2', address: '::2', class: 'ipv4-compatible',
    embedded: [{ address: '0.0.0.2', class: 'this-network', form: 'ipv4-compatible' }] },
  { name: 'unspecified wraps nothing', input: '::', address: '::', class: 'unspecified', embedded: [] },
  { name: 'loopback wraps nothing', input: '::1', address: '::1', class: 'loopback', embedded: [] },
  { name: 'loopback uncompressed', input: '0:0:0:0:0:0:0:1', address: '::1', class: 'loopback', embedded: [] },
  // ::ffff:0:0:0/96 SIIT
  { name: 'SIIT hex', input: '::ffff:0:7f00:1', address: '::ffff:0:7f00:1', class: 'ipv4-translated',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-translated' }] },
  { name: 'SIIT dotted', input: '::ffff:0:127.0.0.1', address: '::ffff:0:7f00:1', class: 'ipv4-translated',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'ipv4-translated' }] },
  // 64:ff9b::/96 NAT64
  { name: 'NAT64 loopback hex', input: '64:ff9b::7f00:1', address: '64:ff9b::7f00:1', class: 'nat64',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'nat64' }] },
  { name: 'NAT64 loopback dotted', input: '64:ff9b::127.0.0.1', address: '64:ff9b::7f00:1', class: 'nat64',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: 'nat64' }] },
  { name: 'NAT64 metadata hex', input: '64:ff9b::a9fe:a9fe', address: '64:ff9b::a9fe:a9fe', class: 'nat64',
    embedded: [{ address: '169.254.169.254', class: 'link-local', form: 'nat64' }] },
  { name: 'NAT64 metadata dotted', input: '64:ff9b::169.254.169.254', address: '64:ff9b::a9fe:a9fe', class: 'nat64',
    embedded: [{ address: '169.254.169.254', class: 'link-local', form: 'nat64' }] },
  { name: 'NAT64 metadata upper-case', input: '64:FF9B::A9FE:A9FE', address: '64:ff9b::a9fe:a9fe', class: 'nat64',
    embedded: [{ address: '169.254.169.254', class: 'link-local', form: 'nat64' }] },
  { name: 'NAT64 public', input: '64:ff9b::808:808', address: '64:ff9b::808:808', class: 'nat64',
    embedded: [{ address: '8.8.8.8', class: 'unicast', form: 'nat64' }] },
  // Local-use NAT64 has no fixed embedding position: nothing is unwrapped, the class alone refuses it.
  { name: 'local-use NAT64 not unwrapped', input: '64:ff9b:1::7f00:1', address: '64:ff9b:1::7f00:1', class: 'nat64', embedded: [] },
  // 2002::/16 6to4: IPv4 at bits 16-47
  { name: '6to4 loopback', input: '2002:7f00:1::1', address: '2002:7f00:1::1', class: '6to4',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: '6to4' }] },
  { name: '6to4 loopback upper-case padded', input: '2002:7F00:0001::1', address: '2002:7f00:1::1', class: '6to4',
    embedded: [{ address: '127.0.0.1', class: 'loopback', form: '6to4' }] },
  { name: '6to4 metadata', input: '2002:a9fe:a9fe::', address: '2002:a9fe:a9fe::', class: '6to4',
    embedded: [{ address: '169.254.169.254', class: 'link-local', form: '6to4' }] },
  { name: '6to4 private', input: '2002:c0a8:101::1', address: '2002:c0a8:101::1', class: '6to4',
    embedded: [{ address: '192.168.1.1', class: 'private', form: '6to4' }] },
  { name: '6to4 public', input: '2002:808:808::', address: '2002:808:808::', class: '6to4',
    embedded: [{ address: '8.8.8.8', class: 'unicast', form: '6to4' }] },
  // 2001::/32 Teredo: server at bits 32-63, client at bits 96-127 XOR ffffffff
  { name: 'Teredo RFC 4380 example', input: '2001:0:4136:e378:8000:63bf:3fff:fdd2', address: '2001:0:4136:e378:8000:63bf:3fff:fdd2', class: 'teredo',
    embedded: [
      { address: '65.54.227.120', class: 'unicast', form: 'teredo' },
      { address: '192.0.2.45', class: 'documentation', form: 'teredo' },
    ] },
  { name: 'Teredo client loopback', input: '2001:0:808:808::80ff:fffe', address: '2001:0:808:808::80ff:fffe', class: 'teredo',
    embedded: [
      { address: '8.8.8.8', class: 'unicast', form: 'teredo' },
      { address: '127.0.0.1', class: 'loopback', form: 'teredo' },
    ] },
  { name: 'Teredo client loopback upper-case', input: '2001:0:808:808:0:0:80FF:FFFE', address: '2001:0:808:808::80ff:fffe', class: 'teredo',
    embedded: [
      { address: '8.8.8.8', class: 'unicast', form: 'teredo' },
      { address: '127.0.0.1', class: 'loopback', form: 'teredo' },
    ] },
  { name: 'Teredo client metadata', input: '2001:0:808:808::5601:5601', address: '2001:0:808:808::5601:5601', class: 'teredo',
    embedded: [
      { address: '8.8.8.8', class: 'unicast', form: 'teredo' },
      { address: '169.254.169.254', class: 'link-local', form: 'teredo' },
    ] },
  { name: 'Teredo server loopback', input: '2001:0:7f00:1::f7f7:f7f7', address: '2001:0:7f00:1::f7f7:f7f7', class: 'teredo',
    embedded: [
      { address: '127.0.0.1', class: 'loopback', form: 'teredo' },
      { address: '8.8.8.8', class: 'unicast', form: 'teredo' },
    ] },
  { name: 'Teredo all zero', input: '2001::', address: '2001::', class: 'teredo',
    embedded: [
      { address: '0.0.0.0', class: 'this-network', form: 'teredo' },
      { address: '255.255.255.255', class: 'broadcast', form: 'teredo' },
    ] },
  // The Azure WireServer wrapped: the embedded address keeps its platform class
  { name: 'mapped WireServer', input: '::ffff:168.63.129.16', address: '::ffff:a83f:8110', class: 'ipv4-mapped',
    embedded: [{ address: '168.63.129.16', class: 'platform', form: 'ipv4-mapped' }] },
  { name: 'NAT64 WireServer', input: '64:ff9b::a83f:8110', address: '64:ff9b::a83f:8110', class: 'nat64',
    embedded: [{ address: '168.63.129.16', class: 'platform', form: 'nat64' }] },
  // Not an embedding form: nothing is unwrapped even when the low bits look like an IPv4
  { name: 'documentation with loopback-looking tail', input: '2001:db8::7f00:1', address: '2001:db8::7f00:1', class: 'documentation', embedded: [] },
  { name: 'public unicast', input: '2606:4700:4700::1111', address: '2606:4700:4700::1111', class: 'unicast', embedded: [] },
]

describe('IPv6 forms that embed an IPv4 address', () => {
  test.each(EMBEDDINGS)('$name: $input', ({ input, address, class: expected, embedded }) => {
    const c = classifyAddress(input)
    expect(c && { address: c.address, family: c.family, class: c.class, embedded: c.embedded }).toEqual({
      address,
      family: 6,
      class: expected,
      embedded,
    })
  })
})

// Dotted and hand-written hex spellings parse to the same 128 bits.
const SAME_ADDRESS = [
  { name: 'mapped', dotted: '::ffff:127.0.0.1', hex: '::ffff:7f00:1', canonical: '::ffff:7f00:1' },
  { name: 'mapped, upper-case', dotted: '::FFFF:127.0.0.1', hex: '0:0:0:0:0:FFFF:7F00:1', canonical: '::ffff:7f00:1' },
  { name: 'compatible', dotted: '::127.0.0.1', hex: '::7f00:1', canonical: '::7f00:1' },
  { name: 'SIIT', dotted: '::ffff:0:127.0.0.1', hex: '::ffff:0:7f00:1', canonical: '::ffff:0:7f00:1' },
  { name: 'NAT64', dotted: '64:ff9b::169.254.169.254', hex: '64:ff9b::a9fe:a9fe', canonical: '64:ff9b::a9fe:a9fe' },
  { name: 'full-length prefix', dotted: '1:2:3:4:5:6:10.0.0.1', hex: '1:2:3:4:5:6:a00:1', canonical: '1:2:3:4:5:6:a00:1' },
]

describe('parseAddress: dotted and hex spellings of one address', () => {
  test.each(SAME_ADDRESS)('$name: $dotted == $hex', ({ dotted, hex, canonical }) => {
    const a = parseAddress(dotted)
    const b = parseAddress(hex)
    expect([a?.kind(), a?.toString()]).toEqual(['ipv6', canonical])
    expect([b?.kind(), b?.toString()]).toEqual(['ipv6', canonical])
    expect(a?.toByteArray()).toEqual(b?.toByteArray())
  })
})

// Forms a resolver never returns and a check must not guess at: refused rather than reinterpreted.
const NOT_STRICT = [
  { name: 'hex IPv4 part', input: '0x7f.0.0.1' },
  { name: 'octal IPv4 part', input: '0177.0.0.1' },
  { name: 'short IPv4', input: '127.1' },
  { name: 'IPv4 as one number', input: '2130706433' },
  { name: 'leading zero IPv4 part', input: '010.0.0.1' },
  { name: 'leading zero last part', input: '1.2.3.04' },
  { name: 'IPv4 part over 255', input: '256.1.1.1' },
  { name: 'five IPv4 parts', input: '1.2.3.4.5' },
  { name: 'negative IPv4 part', input: '1.2.3.-4' },
  { name: 'IPv4 with CIDR suffix', input: '127.0.0.1/32' },
  { name: 'zone index', input: 'fe80::1%eth0' },
  { name: 'URL-encoded zone index', input: 'fe80::1%25eth0' },
  { name: 'bracketed IPv6', input: '[::1]' },
  { name: 'empty string', input: '' },
  { name: 'leading space', input: ' 1.2.3.4' },
  { name: 'trailing space', input: '1.2.3.4 ' },
  { name: 'trailing newline IPv6', input: '::1\n' },
  { name: 'host name', input: 'localhost' },
  { name: 'short dotted tail', input: '::ffff:1.2.3' },
  { name: 'five-part dotted tail', input: '::ffff:1.2.3.4.5' },
  { name: 'hex dotted tail', input: '::ffff:0x7f.0.0.1' },
  { name: 'octal dotted tail', input: '::ffff:0177.0.0.1' },
  { name: 'leading zero dotted tail', input: '::ffff:010.0.0.1' },
  { name: 'zero-padded dotted tail', input: '::ffff:127.0.0.01' },
  { name: 'dotted tail over 255', input: '::ffff:256.0.0.1' },
  { name: 'dotted tail with zone', input: '::ffff:1.2.3.4%eth0' },
  { name: 'five hex digits', input: '00000::1' },
  { name: 'nine groups', input: '1:2:3:4:5:6:7:8:9' },
  { name: 'two ::', input: '1::2::3' },
  { name: 'dotted tail after eight groups', input: '1:2:3:4:5:6:7:1.2.3.4' },
  { name: 'single colon start', input: ':1.2.3.4' },
]

describe('strict forms only', () => {
  test.each(NOT_STRICT)('$name: $input is not an address', ({ input }) => {
    expect(parseAddress(input)).toBeUndefined()
    expect(classifyAddress(input)).toBeUndefined()
  })
})
