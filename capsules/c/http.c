// A WASI plugin in C (clang + wasi-libc from Debian): Extism's kernel HTTP through capsule-host, stdout as log lines, and libc's view of the sandbox.
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KERNEL(name) __attribute__((import_module("extism:host/env"), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

KERNEL("input_length") extern uint64_t input_length(void);
KERNEL("input_load_u8") extern uint8_t input_load_u8(uint64_t at);
KERNEL("alloc") extern uint64_t kernel_alloc(uint64_t length);
KERNEL("length") extern uint64_t kernel_length(uint64_t offset);
KERNEL("load_u8") extern uint8_t load_u8(uint64_t at);
KERNEL("store_u8") extern void store_u8(uint64_t at, uint8_t byte);
KERNEL("output_set") extern void output_set(uint64_t offset, uint64_t length);
KERNEL("error_set") extern void error_set(uint64_t offset);
KERNEL("http_request") extern uint64_t http_request(uint64_t request, uint64_t body);
KERNEL("http_status_code") extern int32_t http_status_code(void);

/** A new kernel block holding `length` bytes of `bytes`. */
static uint64_t block_of(const char *bytes, size_t length) {
  uint64_t offset = kernel_alloc(length);
  for (size_t i = 0; i < length; i++) store_u8(offset + i, (uint8_t)bytes[i]);
  return offset;
}

/** The call's input as a NUL-terminated string (the caller frees it). */
static char *input_text(void) {
  uint64_t length = input_length();
  char *text = malloc(length + 1);
  for (uint64_t i = 0; i < length; i++) text[i] = (char)input_load_u8(i);
  text[length] = 0;
  return text;
}

static void output_text(const char *text) {
  size_t length = strlen(text);
  output_set(block_of(text, length), length);
}

static int32_t fail(const char *message) {
  error_set(block_of(message, strlen(message)));
  return 1;
}

/** Input: a URL. GETs it with the kernel's http_request; output "<status>\n<body>". */
EXPORT("fetch") int32_t fetch(void) {
  char *url = input_text();
  if (strpbrk(url, "\"\\") != NULL) return fail("the URL may not hold a quote or a backslash");
  size_t size = strlen(url) + 32;
  char *request = malloc(size);
  snprintf(request, size, "{\"url\":\"%s\",\"method\":\"GET\"}", url);
  printf("fetching %s\n", url);
  uint64_t body = http_request(block_of(request, strlen(request)), 0);
  int32_t status = http_status_code();
  uint64_t length = body == 0 ? 0 : kernel_length(body);
  char *out = malloc(length + 16);
  int head = snprintf(out, 16, "%d\n", status);
  for (uint64_t i = 0; i < length; i++) out[head + i] = (char)load_u8(body + i);
  out[head + length] = 0;
  if (status >= 400) fprintf(stderr, "status %d\n", status);
  output_text(out);
  return 0;
}

/** What libc gets when it reaches for the host: `{"open":errno,"opendir":errno,"home":"unset"|value,"argc":n}`. */
EXPORT("sandbox") int32_t sandbox(void) {
  char out[256];
  errno = 0;
  FILE *file = fopen("/etc/passwd", "r");
  int open_errno = file ? 0 : errno;
  errno = 0;
  DIR *dir = opendir("/");
  int dir_errno = dir ? 0 : errno;
  const char *home = getenv("HOME");
  snprintf(out, sizeof out, "{\"open\":%d,\"opendir\":%d,\"home\":\"%s\"}", open_errno, dir_errno, home ? home : "unset");
  output_text(out);
  return 0;
}
