/* /init of the level-2 guest that `cpumodel boot` starts inside the nested-SVM rig. It prints the
 * CPU facts the tests check as "@@L2 ..." lines on the console, does what the kernel command line
 * asks (l2test=serial: run a line typed on the console with /bin/sh -c; l2test=hold: wait for a
 * line on the console, so the host can query QMP meanwhile; l2test=shell: say "ready", then as
 * serial; l2test=reboot), then powers off.
 * A static C program rather than a busybox script: in the rig (TCG emulating the level-1 CPU),
 * level-2 processes that take a signal with AVX hidden die in rt_sigreturn ("bad frame"), with
 * QEMU as the level-1 VMM too, and a shell takes SIGCHLD for every command it runs. */
#define _GNU_SOURCE
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *field(const char *line, const char *name) {
  size_t n = strlen(name);
  if (strncmp(line, name, n) != 0) return NULL;
  const char *p = strchr(line + n, ':');
  if (!p) return NULL;
  for (++p; *p == ' ' || *p == '\t'; ++p) {}
  return p;
}

static void facts(void) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) { printf("@@L2 no /proc/cpuinfo\n"); return; }
  char line[8192], model[256] = "", vendor[64] = "", flags[8192] = "";
  char p[16] = "", s[16] = "", c[16] = "", sib[16] = "", cores[16] = "", apic[16] = "";
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    const char *v;
    if ((v = field(line, "processor"))) { snprintf(p, sizeof p, "%s", v); ++n; }
    else if ((v = field(line, "physical id"))) snprintf(s, sizeof s, "%s", v);
    else if ((v = field(line, "core id"))) snprintf(c, sizeof c, "%s", v);
    else if ((v = field(line, "siblings"))) snprintf(sib, sizeof sib, "%s", v);
    else if ((v = field(line, "cpu cores"))) snprintf(cores, sizeof cores, "%s", v);
    else if ((v = field(line, "apicid"))) snprintf(apic, sizeof apic, "%s", v);
    else if ((v = field(line, "model name")) && !model[0]) snprintf(model, sizeof model, "%s", v);
    else if ((v = field(line, "vendor_id")) && !vendor[0]) snprintf(vendor, sizeof vendor, "%s", v);
    else if ((v = field(line, "flags")) && !flags[0]) snprintf(flags, sizeof flags, "%s", v);
    else if (line[0] == 0 && p[0]) {
      printf("@@L2 cpu %s %s %s %s %s %s\n", p, s, c, sib, cores, apic);
      p[0] = 0;
    }
  }
  fclose(f);
  printf("@@L2 nproc %d\n@@L2 model %s\n@@L2 vendor %s\n@@L2 flags %s\n", n, model, vendor, flags);
}

/* One line from the console, or "" after `seconds`. */
static void read_line(char *buf, size_t size, int seconds) {
  size_t len = 0;
  buf[0] = 0;
  struct pollfd pf = {0, POLLIN, 0};
  while (len + 1 < size && poll(&pf, 1, seconds * 1000) > 0) {
    ssize_t r = read(0, buf + len, size - 1 - len);
    if (r <= 0) break;
    len += (size_t)r;
    buf[len] = 0;
    if (strchr(buf, '\n')) break;
  }
  buf[strcspn(buf, "\r\n")] = 0;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  mount("proc", "/proc", "proc", 0, NULL);
  mount("sysfs", "/sys", "sysfs", 0, NULL);
  printf("@@L2 init\n");
  facts();
  const char *test = getenv("l2test");
  char line[512];
  /* l2test=shell: like serial, but announced as "ready" and waiting longer (the snapshot test
   * saves the guest here, and types the line into the restored one). */
  int shell = test && strcmp(test, "shell") == 0;
  if (test && (strcmp(test, "serial") == 0 || shell)) {
    printf(shell ? "@@L2 ready\n" : "@@L2 waiting for input\n");
    read_line(line, sizeof line, shell ? 300 : 60);
    pid_t pid = fork();
    if (pid == 0) {
      execl("/bin/sh", "sh", "-c", line, (char *)NULL);
      _exit(127);
    }
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    printf("@@L2 ran '%s': status %d\n", line, status);
  } else if (test && strcmp(test, "hold") == 0) {
    printf("@@L2 ready\n");
    read_line(line, sizeof line, 120);
    printf("@@L2 got '%s'\n", line);
  } else if (test && strcmp(test, "reboot") == 0) {
    printf("@@L2 rebooting\n");
    sync();
    reboot(RB_AUTOBOOT);
  }
  printf("@@L2 poweroff\n");
  sync();
  reboot(RB_POWER_OFF);
  return 0;
}
