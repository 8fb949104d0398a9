/* Makes syscalls a CI step has no business making and prints, per syscall, "name=ok" or
 * "name=errno N". Built with gcc -static by seccomp-sandbox.test.ts. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *name, long r) {
  if (r < 0) printf("%s=errno %d\n", name, errno);
  else printf("%s=ok\n", name);
}

int main(void) {
  /* Kernel keyrings: not on the allow-list. */
  report("add_key", syscall(SYS_add_key, "user", "sandfleet-probe", "x", 1, -2 /* KEY_SPEC_PROCESS_KEYRING */));
  /* vmsplice: explicitly refused by the profile (page-cache attacks). */
  int p[2];
  char byte = 'x';
  struct iovec iov = { &byte, 1 };
  report("vmsplice", pipe(p) == 0 ? syscall(SYS_vmsplice, p[1], &iov, 1, 0) : -1);
  /* userfaultfd: refused (used to widen kernel race windows); 1 = UFFD_USER_MODE_ONLY. */
  report("userfaultfd", syscall(SYS_userfaultfd, 1 | O_CLOEXEC));
  /* personality with anything but the harmless values (here ADDR_NO_RANDOMIZE). */
  report("personality", syscall(SYS_personality, 0x0040000));
  /* A new user namespace (the way to the kernel's root-only code), by unshare and by clone. */
  long child = syscall(SYS_clone, 0x10000000 /* CLONE_NEWUSER */ | 17 /* SIGCHLD */, 0, 0, 0, 0);
  if (child == 0) _exit(0);
  if (child > 0) waitpid((pid_t)child, 0, 0);
  report("clone_newuser", child);
  /* Last among the namespace probes: afterwards this process is in a new, unmapped namespace. */
  report("unshare_newuser", syscall(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */));
  /* What every program does: must still work, fork (clone without namespace flags) included. */
  report("getpid", syscall(SYS_getpid));
  pid_t forked = fork();
  if (forked == 0) _exit(0);
  if (forked > 0) waitpid(forked, 0, 0);
  report("fork", forked);
  return 0;
}
