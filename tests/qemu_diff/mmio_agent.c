/* A tiny Multiboot guest for QEMU (TCG) that performs MMIO accesses on request: the guest-side
 * stand-in for QEMU's qtest protocol, which Debian's QEMU build does not include (its
 * qemu-system-x86_64 has no "qtest" accelerator).
 *
 * Protocol on COM1 (one line each way, same words as qtest): "readb|readw|readl ADDR" ->
 * "OK 0xVALUE"; "writeb|writew|writel ADDR VALUE" -> "OK"; anything else -> "ERR". Numbers are
 * hex with 0x. The agent prints "READY" once at start. 32-bit protected mode, no paging: physical
 * addresses below 4 GiB are used as they are.
 *
 * Built freestanding (no headers, no libc) with gcc -m32; see CMakeLists.txt. */
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;

#define MB_MAGIC 0x1BADB002u
__attribute__((section(".multiboot"), used, aligned(4))) static const u32 kMultiboot[3] = {
    MB_MAGIC, 0, (u32)(0u - MB_MAGIC)};

__asm__(
    ".section .bss\n"
    ".align 16\n"
    "stack_bottom: .skip 16384\n"
    "stack_top:\n"
    ".section .text\n"
    ".globl _start\n"
    "_start:\n"
    "  mov $stack_top, %esp\n"
    "  call agent_main\n"
    "1: hlt\n"
    "  jmp 1b\n");

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) {
  u8 v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

#define COM1 0x3F8
static void putc_(char c) {
  while ((inb(COM1 + 5) & 0x20) == 0) {
  }
  outb(COM1, (u8)c);
}
static void puts_(const char* s) {
  while (*s) putc_(*s++);
}
static char getc_(void) {
  while ((inb(COM1 + 5) & 0x01) == 0) {
  }
  return (char)inb(COM1);
}
static void puthex(u32 v) {
  static const char kHex[] = "0123456789abcdef";
  char buf[11];
  int i, n = 0;
  buf[n++] = '0';
  buf[n++] = 'x';
  for (i = 7; i > 0 && ((v >> (4 * i)) & 0xF) == 0; i--) {
  }
  for (; i >= 0; i--) buf[n++] = kHex[(v >> (4 * i)) & 0xF];
  buf[n] = 0;
  puts_(buf);
}
static int parse_hex(const char** p, u32* out) {
  const char* s = *p;
  u32 v = 0;
  int digits = 0;
  while (*s == ' ') s++;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  for (;; s++) {
    char c = *s;
    u32 d;
    if (c >= '0' && c <= '9')
      d = (u32)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = (u32)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      d = (u32)(c - 'A' + 10);
    else
      break;
    v = (v << 4) | d;
    digits++;
  }
  *p = s;
  *out = v;
  return digits > 0;
}
static int starts(const char* s, const char* w) {
  while (*w)
    if (*s++ != *w++) return 0;
  return *s == ' ';
}

void agent_main(void) {
  char line[96];
  outb(COM1 + 1, 0x00); /* no interrupts */
  outb(COM1 + 3, 0x03); /* 8N1 */
  puts_("READY\n");
  for (;;) {
    int n = 0;
    char c;
    const char* p;
    u32 addr, val;
    while ((c = getc_()) != '\n') {
      if (c != '\r' && n < (int)sizeof(line) - 1) line[n++] = c;
    }
    line[n] = 0;
    p = line + 6;
    if (n > 6 && line[0] == 'r' &&
        (starts(line, "readb") || starts(line, "readw") || starts(line, "readl")) &&
        parse_hex(&p, &addr)) {
      char w = line[4];
      if (w == 'b')
        val = *(volatile u8*)addr;
      else if (w == 'w')
        val = *(volatile u16*)addr;
      else
        val = *(volatile u32*)addr;
      puts_("OK ");
      puthex(val);
      puts_("\n");
    } else if (n > 7 &&
               (starts(line, "writeb") || starts(line, "writew") || starts(line, "writel"))) {
      p = line + 7;
      if (parse_hex(&p, &addr) && parse_hex(&p, &val)) {
        char w = line[5];
        if (w == 'b')
          *(volatile u8*)addr = (u8)val;
        else if (w == 'w')
          *(volatile u16*)addr = (u16)val;
        else
          *(volatile u32*)addr = val;
        puts_("OK\n");
      } else {
        puts_("ERR\n");
      }
    } else {
      puts_("ERR\n");
    }
  }
}
