/* What the (possibly emulated) kernel under the ARM tests can do.
 * Prints three lines, "robust-list: ok" or "robust-list: <why not>",
 * "spawn-errors: ok" or "spawn-errors: <why not>", and "subreaper: ok" or
 * "subreaper: <why not>".
 *
 * qemu-user answers set_robust_list with ENOSYS, so a process that dies
 * holding a robust mutex is never marked dead; and it runs the vfork-style
 * clone of posix_spawn as a plain fork, so a failed exec in the child is
 * not reported to the parent (it sees a child that exits 127); and it
 * refuses prctl(PR_SET_CHILD_SUBREAPER) with EINVAL, so `buslock run`
 * cannot keep what a command leaves in the background. */
#include <errno.h>
#include <linux/futex.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    static struct robust_list_head head = {{&head.list}, 0, NULL};
    if (syscall(SYS_set_robust_list, &head, sizeof head) != 0)
        printf("robust-list: set_robust_list failed: %s\n", strerror(errno));
    else
        printf("robust-list: ok\n");

    pid_t pid;
    char *argv[] = {"/nonexistent/buslock-probe", NULL};
    char *envp[] = {NULL};
    int e = posix_spawn(&pid, argv[0], NULL, NULL, argv, envp);
    if (e != 0) {
        printf("spawn-errors: ok\n");
    } else {
        int status;
        waitpid(pid, &status, 0);
        printf("spawn-errors: posix_spawn of a missing program succeeded (its child exited %d)\n",
               WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }

    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        printf("subreaper: prctl(PR_SET_CHILD_SUBREAPER) failed: %s\n", strerror(errno));
    else
        printf("subreaper: ok\n");
    return 0;
}
