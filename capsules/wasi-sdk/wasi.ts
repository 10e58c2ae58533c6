// The WASI preview 1 functions the WASI test capsules call (wasi-stdio, wasi-hostile), declared once; not a capsule itself (no index.ts).

@external("wasi_snapshot_preview1", "args_get")
export declare function args_get(pointers: usize, buffer: usize): i32;
@external("wasi_snapshot_preview1", "args_sizes_get")
export declare function args_sizes_get(count: usize, size: usize): i32;
@external("wasi_snapshot_preview1", "clock_time_get")
export declare function clock_time_get(clock: u32, precision: u64, time: usize): i32;
@external("wasi_snapshot_preview1", "environ_get")
export declare function environ_get(pointers: usize, buffer: usize): i32;
@external("wasi_snapshot_preview1", "environ_sizes_get")
export declare function environ_sizes_get(count: usize, size: usize): i32;
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
export declare function fd_prestat_dir_name(fd: u32, path: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "fd_prestat_get")
export declare function fd_prestat_get(fd: u32, prestat: usize): i32;
@external("wasi_snapshot_preview1", "fd_read")
export declare function fd_read(fd: u32, iovs: usize, count: u32, read: usize): i32;
@external("wasi_snapshot_preview1", "fd_readdir")
export declare function fd_readdir(fd: u32, buf: usize, len: usize, cookie: u64, used: usize): i32;
@external("wasi_snapshot_preview1", "fd_renumber")
export declare function fd_renumber(fd: u32, to: u32): i32;
@external("wasi_snapshot_preview1", "fd_write")
export declare function fd_write(fd: u32, iovs: usize, count: u32, written: usize): i32;
@external("wasi_snapshot_preview1", "path_create_directory")
export declare function path_create_directory(fd: u32, path: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "path_filestat_get")
export declare function path_filestat_get(fd: u32, flags: u32, path: usize, len: usize, stat: usize): i32;
@external("wasi_snapshot_preview1", "path_open")
export declare function path_open(fd: u32, dirflags: u32, path: usize, len: usize, oflags: u32, base: u64, inheriting: u64, fdflags: u32, opened: usize): i32;
@external("wasi_snapshot_preview1", "path_rename")
export declare function path_rename(fd: u32, old: usize, oldLen: usize, newFd: u32, path: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "path_symlink")
export declare function path_symlink(old: usize, oldLen: usize, fd: u32, path: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "path_unlink_file")
export declare function path_unlink_file(fd: u32, path: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "poll_oneoff")
export declare function poll_oneoff(subscriptions: usize, events: usize, count: u32, ready: usize): i32;
@external("wasi_snapshot_preview1", "proc_exit")
export declare function proc_exit(code: u32): void;
@external("wasi_snapshot_preview1", "random_get")
export declare function random_get(buf: usize, len: usize): i32;
@external("wasi_snapshot_preview1", "sock_accept")
export declare function sock_accept(fd: u32, flags: u32, opened: usize): i32;
@external("wasi_snapshot_preview1", "sock_recv")
export declare function sock_recv(fd: u32, iovs: usize, count: u32, flags: u32, len: usize, outFlags: usize): i32;
@external("wasi_snapshot_preview1", "sock_send")
export declare function sock_send(fd: u32, iovs: usize, count: u32, flags: u32, len: usize): i32;
@external("wasi_snapshot_preview1", "sock_shutdown")
export declare function sock_shutdown(fd: u32, how: u32): i32;
