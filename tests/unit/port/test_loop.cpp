// The EventLoop where epoll_pwait2 is refused (Linux before 5.11 says ENOSYS; a seccomp
// filter, as in a hardened service, says EPERM): the loop must fall back to epoll_wait and
// still wait for its deadline and still report a readable descriptor. Each case runs in a
// child process, because a seccomp filter cannot be taken off again; the child reports
// what went wrong in its exit status.
#include <doctest/doctest.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>

#include "clock.hpp"
#include "loop.hpp"

using namespace tcpcan::linux_port;

namespace {

#ifdef SYS_epoll_pwait2

// Makes epoll_pwait2 fail with `error` for this process from now on; everything else passes.
bool refuse_epoll_pwait2(int error) {
    sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_epoll_pwait2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog filter{static_cast<unsigned short>(sizeof program / sizeof program[0]), program};
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) == 0;
}

// Exit status bits of the child.
constexpr int setup_failed = 1;
constexpr int not_refused = 2;     // the filter did not take: the case proves nothing
constexpr int woke_early = 4;      // a wait with nothing to read returned before its deadline
constexpr int missed_event = 8;    // a readable pipe was not reported (the wait is capped at 1 s)

int child(int error) {
    if (!refuse_epoll_pwait2(error)) {
        return setup_failed;
    }
    int result = 0;
    epoll_event unused{};
    const timespec zero{0, 0};
    if (syscall(SYS_epoll_pwait2, -1, &unused, 1, &zero, nullptr, 0) != -1 || errno != error) {
        result |= not_refused;
    }
    EventLoop loop;
    std::string message;
    int pipe_fds[2];
    if (!loop.open(message) || pipe(pipe_fds) != 0) {
        return result | setup_failed;
    }
    loop.set_interest(pipe_fds[0], EPOLLIN);

    // Nothing to read: the loop sleeps until its deadline (whole milliseconds, rounded up,
    // so never less), twice, the second time on the fallback already chosen.
    for (int round = 0; round < 2; ++round) {
        const std::uint64_t deadline = monotonic_us() + 3'000;
        const auto events = loop.wait(deadline);
        if (!events.empty() || loop.now() < deadline) {
            result |= woke_early;
        }
    }
    // Something to read: reported.
    if (write(pipe_fds[1], "x", 1) != 1) {
        return result | setup_failed;
    }
    const auto events = loop.wait(monotonic_us() + 60'000'000);
    if (events.size() != 1 || events[0].data.fd != pipe_fds[0] || (events[0].events & EPOLLIN) == 0) {
        result |= missed_event;
    }
    return result;
}

int run_in_child(int error) {
    const pid_t pid = fork();
    if (pid == 0) {
        _exit(child(error));
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
        return -1;
    }
    return WEXITSTATUS(status);
}

#endif

}  // namespace

TEST_CASE("EventLoop: epoll_pwait2 refused (ENOSYS or a seccomp EPERM), epoll_wait takes over") {
#ifdef SYS_epoll_pwait2
    for (const int error : {ENOSYS, EPERM}) {
        CAPTURE(error);
        // 0: every check passed; otherwise the bits above (1 setup, 2 not refused, 4 woke
        // early, 8 missed the readable pipe).
        CHECK(run_in_child(error) == 0);
    }
#else
    MESSAGE("this C library names no epoll_pwait2 system call; nothing to fall back from");
#endif
}
