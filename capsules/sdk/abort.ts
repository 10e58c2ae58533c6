// The capsule's `abort` (AssemblyScript's fatal-error hook, wired in by asconfig.json's
// `use: abort=...`). Extism gives modules no `env.abort`, so the default import would make the
// module fail to load. This one reports the message through Extism's error and error log, then
// traps. It allocates nothing in linear memory, so it also works when the heap is exhausted.

import { alloc, error_set, log_error, store_u8 } from "./env";

const SCRATCH_SIZE: i32 = 1024;
const scratch = memory.data(SCRATCH_SIZE);
let aborting = false;
let used: i32 = 0;

function put(c: u32): void {
  if (used < SCRATCH_SIZE) {
    store<u8>(scratch + <usize>used, <u8>(c < 128 ? c : 63)); // non-ASCII as '?'
    used++;
  }
}

function putString(s: string | null): void {
  if (s === null) return;
  const n = s.length;
  const p = changetype<usize>(s);
  for (let i = 0; i < n; i++) put(<u32>load<u16>(p + (<usize>i << 1)));
}

function putNumber(n: u32): void {
  let div: u32 = 1000000000;
  let started = false;
  while (div > 0) {
    const d = (n / div) % 10;
    if (d != 0 || started || div == 1) {
      put(48 + d);
      started = true;
    }
    div /= 10;
  }
}

function scratchToBlock(): u64 {
  const off = alloc(<u64>used);
  for (let i = 0; i < used; i++) store_u8(off + <u64>i, load<u8>(scratch + <usize>i));
  return off;
}

export function capsuleAbort(
  message: string | null = null,
  fileName: string | null = null,
  line: u32 = 0,
  column: u32 = 0,
): void {
  if (!aborting) {
    aborting = true;
    used = 0;
    putString("abort: ");
    putString(message);
    putString(" (");
    putString(fileName);
    put(58);
    putNumber(line);
    put(58);
    putNumber(column);
    put(41);
    error_set(scratchToBlock());
    log_error(scratchToBlock()); // the kernel frees a block once logged, so a second copy
  }
  unreachable();
}
