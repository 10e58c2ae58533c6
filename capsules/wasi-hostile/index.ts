// wasi-hostile: a WASI capsule that tries every WASI path to a host file, directory or socket,
// for the sandbox tests. Its one export reports, as JSON, what each attempt answered.

import { outputString } from "../sdk";
import {
  args_get, args_sizes_get, environ_get, environ_sizes_get, fd_prestat_dir_name, fd_prestat_get, fd_read, fd_readdir, fd_renumber, fd_write, path_create_directory, path_filestat_get, path_open, path_rename, path_symlink, path_unlink_file, poll_oneoff, sock_accept, sock_recv, sock_send, sock_shutdown,
} from "../wasi-sdk/wasi";

const PATHS: string[] = ["/", "..", "/etc/passwd", "etc/passwd", ".", "", "../../../../etc/passwd", "/proc/self/environ", "C:\\Windows"];
/** Every right: the widest open a capsule could ask for. */
const ALL_RIGHTS: u64 = 0x1fffffff;

const scratch = new Uint8Array(4096);
const out = new StaticArray<u32>(4);
const outAt = changetype<usize>(out);

/** `[e0,e1,...]`: one errno per fd in [from, to]. */
function perFd(from: u32, to: u32, attempt: (fd: u32) => i32): string {
  let json = "[";
  for (let fd = from; fd <= to; fd++) json += (fd > from ? "," : "") + attempt(fd).toString();
  return json + "]";
}

let currentPath = "";
let currentOflags: u32 = 0;
function openAt(fd: u32): i32 {
  const bytes = String.UTF8.encode(currentPath);
  out[0] = 0xffffffff;
  const errno = path_open(fd, 1, changetype<usize>(bytes), bytes.byteLength, currentOflags, ALL_RIGHTS, ALL_RIGHTS, 0, outAt);
  // An fd handed out would show up here as a number other than the sentinel.
  return out[0] === 0xffffffff ? errno : -1;
}

function iov(): usize {
  store<u32>(outAt, <u32>scratch.dataStart);
  store<u32>(outAt, 16, 4);
  return outAt;
}

const passwd = String.UTF8.encode("/etc/passwd");
const pathAt = changetype<usize>(passwd);
const pathLen = <usize>passwd.byteLength;

function pollFd(fd: u32): i32 {
  // One fd_read subscription (48 bytes) on `fd`; the event (32 bytes) lands in scratch[64..].
  memory.fill(scratch.dataStart, 0, 128);
  store<u8>(scratch.dataStart, 1, 8);
  store<u32>(scratch.dataStart, fd, 16);
  const errno = poll_oneoff(scratch.dataStart, scratch.dataStart + 64, 1, outAt);
  return errno !== 0 ? errno : <i32>load<u16>(scratch.dataStart + 64, 8);
}

export function probe(): i32 {
  let json = '{"path_open":{';
  for (let i = 0; i < PATHS.length; i++) {
    currentPath = PATHS[i];
    currentOflags = 0;
    json += (i > 0 ? "," : "") + '"' + (currentPath === "C:\\Windows" ? "C:\\\\Windows" : currentPath) + '":' + perFd(0, 64, openAt);
  }
  currentPath = "/tmp/capsule-was-here";
  currentOflags = 1; // O_CREAT
  json += '},"path_open_create":' + perFd(0, 64, openAt);
  json += ',"fd_prestat_get":' + perFd(0, 1024, (fd: u32): i32 => fd_prestat_get(fd, scratch.dataStart));
  json += ',"fd_prestat_dir_name":' + perFd(0, 64, (fd: u32): i32 => fd_prestat_dir_name(fd, scratch.dataStart, 256));
  json += ',"fd_readdir":' + perFd(0, 64, (fd: u32): i32 => fd_readdir(fd, scratch.dataStart, 1024, 0, outAt));
  json += ',"sock_accept":' + perFd(0, 64, (fd: u32): i32 => sock_accept(fd, 0, outAt + 8));
  json += ',"sock_recv":' + perFd(0, 64, (fd: u32): i32 => sock_recv(fd, iov(), 1, 0, outAt + 8, outAt + 12));
  json += ',"sock_send":' + perFd(0, 64, (fd: u32): i32 => sock_send(fd, iov(), 1, 0, outAt + 8));
  json += ',"sock_shutdown":' + perFd(0, 64, (fd: u32): i32 => sock_shutdown(fd, 3));
  json += ',"fd_write":' + perFd(3, 64, (fd: u32): i32 => fd_write(fd, iov(), 1, outAt + 8));
  json += ',"fd_write_stdin":' + fd_write(0, iov(), 1, outAt + 8).toString();
  json += ',"fd_read":' + perFd(1, 64, (fd: u32): i32 => fd_read(fd, iov(), 1, outAt + 8));
  json += ',"path_unlink_file":' + perFd(0, 8, (fd: u32): i32 => path_unlink_file(fd, pathAt, pathLen));
  json += ',"path_create_directory":' + perFd(0, 8, (fd: u32): i32 => path_create_directory(fd, pathAt, pathLen));
  json += ',"path_filestat_get":' + perFd(0, 8, (fd: u32): i32 => path_filestat_get(fd, 1, pathAt, pathLen, scratch.dataStart));
  json += ',"path_symlink":' + perFd(0, 8, (fd: u32): i32 => path_symlink(pathAt, pathLen, fd, pathAt, pathLen));
  json += ',"path_rename":' + perFd(0, 8, (fd: u32): i32 => path_rename(fd, pathAt, pathLen, fd, pathAt, pathLen));
  json += ',"fd_renumber":' + perFd(0, 8, (fd: u32): i32 => fd_renumber(fd, 1));
  json += ',"poll_fd_read":' + perFd(0, 8, pollFd);
  const sizes = changetype<usize>(new StaticArray<u32>(2));
  const envErrno = environ_sizes_get(sizes, sizes + 4);
  json += ',"environ_sizes_get":[' + envErrno.toString() + "," + load<u32>(sizes).toString() + "," + load<u32>(sizes, 4).toString() + "]";
  const argErrno = args_sizes_get(sizes, sizes + 4);
  json += ',"args_sizes_get":[' + argErrno.toString() + "," + load<u32>(sizes).toString() + "," + load<u32>(sizes, 4).toString() + "]";
  json += ',"environ_get":' + environ_get(scratch.dataStart, scratch.dataStart + 64).toString();
  json += ',"args_get":' + args_get(scratch.dataStart, scratch.dataStart + 64).toString();
  json += ',"bad_pointer":' + fd_write(1, 0xfffffff0, 1, outAt).toString();
  // 1024 empty iovecs (the most one call may name), one more, and a count that is negative as an i32.
  const iovecs = changetype<usize>(new StaticArray<u64>(1025));
  json += ',"iovecs_1024":' + fd_write(1, iovecs, 1024, outAt).toString();
  json += ',"iovecs_1025":' + fd_write(1, iovecs, 1025, outAt).toString();
  json += ',"iovecs_max":' + fd_write(1, iovecs, 0xffffffff, outAt).toString();
  outputString(json + "}");
  return 0;
}
