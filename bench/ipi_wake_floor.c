// The kernel's floor for one i-PI exchange (issue 27), without acdc: two
// processes (as the driver and i-PI are; a thread of the same process would
// spare the address-space switch) ping-pong a 12-byte message over a unix socketpair
// (the driver sends, blocks in recv until the peer answers); the peer holds
// each message for DELAY µs (busy, as a server computing) before answering.
// Prints the sending thread's CPU time (CLOCK_THREAD_CPUTIME_ID, user +
// system) per exchange: the syscalls, the sleep and the wake-up, the floor
// of any client that blocks while it waits. An i-PI step is two exchanges
// (STATUS → READY after a short wait; POSDATA after the server's step).
//   cc -O2 bench/ipi_wake_floor.c -o /tmp/ipi_wake_floor && /tmp/ipi_wake_floor 5000
#define _GNU_SOURCE
#include <sys/wait.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static int sv[2];
static int n = 2000;
static int delay_us = 0;

static double clock_seconds(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void peer(void) {
  char b[12];
  for (int i = 0; i < n; i++) {
    if (recv(sv[1], b, 12, MSG_WAITALL) != 12) break;
    double t0 = clock_seconds(CLOCK_MONOTONIC);
    while (clock_seconds(CLOCK_MONOTONIC) - t0 < delay_us * 1e-6) {
    }
    send(sv[1], b, 12, 0);
  }
}

int main(int argc, char **argv) {
  if (argc > 1) delay_us = atoi(argv[1]);
  if (argc > 2) n = atoi(argv[2]);
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    peer();
    _exit(0);
  }
  char b[12] = "STATUS      ";
  double c0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID), w0 = clock_seconds(CLOCK_MONOTONIC);
  for (int i = 0; i < n; i++) {
    send(sv[0], b, 12, 0);
    if (recv(sv[0], b, 12, MSG_WAITALL) != 12) return 1;
  }
  double c1 = clock_seconds(CLOCK_THREAD_CPUTIME_ID), w1 = clock_seconds(CLOCK_MONOTONIC);
  waitpid(child, NULL, 0);
  double r0 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  for (int i = 0; i < n; i++) clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  double r1 = clock_seconds(CLOCK_THREAD_CPUTIME_ID);
  printf("peer holds each message %d us: sender's CPU per exchange %.2f us (wall %.1f us); one CLOCK_THREAD_CPUTIME_ID reading %.2f us\n", delay_us, (c1 - c0) / n * 1e6, (w1 - w0) / n * 1e6, (r1 - r0) / n * 1e6);
  return 0;
}
