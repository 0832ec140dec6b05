#include "support/fault_proxy.hpp"

#include <cerrno>
#include <deque>
#include <stdexcept>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace lagoon::test {

namespace {

using Clock = std::chrono::steady_clock;

struct Pending {
  Clock::time_point due;
  std::string bytes;
};

// One client connection and its connection to the target; bytes read from one side wait in the
// other side's queue until due.
struct Pair {
  int fd[2];                  // 0: client, 1: target
  std::deque<Pending> to[2];  // to[i]: waiting to be written to fd[i]
  bool eof[2] = {false, false};  // fd[i] said it sends no more; to[1 - i] is flushed, then closed
  bool dead = false;
};

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

void close_with_reset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  ::close(fd);
}

// Both sides end with a TCP reset: what reset_all() asks for, and how a reset on one side is passed on.
void reset_pair(Pair& p) {
  close_with_reset(p.fd[0]);
  close_with_reset(p.fd[1]);
  p.dead = true;
}

// What to poll for: the listener, the wake pipe, then each pair's two sides (client, target). Reads wait
// while stalled or once a side has ended; a queued write waits until its bytes are due. Returns the poll
// timeout: 50 ms, or less when queued bytes fall due sooner.
int fill_poll_set(std::vector<pollfd>& fds, const std::vector<Pair>& pairs, int listen_fd, int wake_fd, bool stalled) {
  const auto now = Clock::now();
  int timeout_ms = 50;
  fds.clear();
  fds.push_back({listen_fd, POLLIN, 0});
  fds.push_back({wake_fd, POLLIN, 0});
  for (auto& p : pairs) {
    for (int side = 0; side < 2; ++side) {
      short events = stalled || p.eof[side] ? 0 : POLLIN;
      if (!stalled && !p.to[side].empty()) {
        if (p.to[side].front().due <= now)
          events |= POLLOUT;
        else
          timeout_ms = std::min<int>(
              timeout_ms,
              1 + static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(p.to[side].front().due - now).count()));
      }
      fds.push_back({p.fd[side], events, 0});
    }
  }
  return timeout_ms;
}

// Takes one waiting client: refused with a reset in refuse mode, or paired with a new connection to the
// target (a client whose target cannot be reached is reset too).
void accept_client(int listen_fd, unsigned short target_port, const std::atomic<FaultProxy::Mode>& mode,
                   std::vector<Pair>& pairs) {
  const int client = ::accept(listen_fd, nullptr, nullptr);
  if (client < 0) return;
  if (mode.load() == FaultProxy::Mode::refuse) {
    close_with_reset(client);
    return;
  }
  const int target = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(target_port);
  if (::connect(target, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(target);
    close_with_reset(client);
  } else {
    set_nonblocking(client);
    set_nonblocking(target);
    pairs.push_back(Pair{{client, target}, {}, {false, false}, false});
  }
}

// One poll round for one pair: what each side sent is queued for the other `delay` later, what is due is
// written, ends are passed on once the bytes before them are delivered. `revents` holds the pair's two
// entries of the poll set.
void move_bytes(Pair& p, const pollfd* revents, std::chrono::milliseconds delay, char* buf, std::size_t buf_size) {
  for (int side = 0; side < 2 && !p.dead; ++side) {
    const auto re = revents[side].revents;
    if (!p.eof[side] && (re & (POLLIN | POLLHUP | POLLERR))) {
      const auto n = ::read(p.fd[side], buf, buf_size);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {  // reset: pass it on
        reset_pair(p);
        break;
      }
      if (n == 0) p.eof[side] = true;
      if (n > 0) p.to[1 - side].push_back({Clock::now() + delay, std::string(buf, static_cast<std::size_t>(n))});
    }
    if ((re & POLLOUT) && !p.to[side].empty()) {
      auto& front = p.to[side].front();
      const auto n = ::send(p.fd[side], front.bytes.data(), front.bytes.size(), MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) {
        reset_pair(p);
        break;
      }
      if (n > 0) front.bytes.erase(0, static_cast<std::size_t>(n));
      if (front.bytes.empty()) p.to[side].pop_front();
    }
  }
  // A side that ended has its remaining bytes delivered to the other before the end is passed on.
  for (int side = 0; side < 2 && !p.dead; ++side)
    if (p.eof[side] && p.to[1 - side].empty()) ::shutdown(p.fd[1 - side], SHUT_WR);
  if (!p.dead && p.eof[0] && p.eof[1] && p.to[0].empty() && p.to[1].empty()) {
    ::close(p.fd[0]);
    ::close(p.fd[1]);
    p.dead = true;
  }
}

}  // namespace

FaultProxy::FaultProxy(unsigned short target_port) : target_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 512) != 0)
    throw std::runtime_error("fault proxy: cannot listen");
  socklen_t len = sizeof a;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  if (::pipe(wake_) != 0) throw std::runtime_error("fault proxy: pipe");
  thread_ = std::thread([this] { run(); });
}

FaultProxy::~FaultProxy() {
  stop_.store(true);
  (void)!::write(wake_[1], "x", 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void FaultProxy::run() {
  std::vector<Pair> pairs;
  std::vector<pollfd> fds;
  char buf[65536];
  while (!stop_.load()) {
    if (reset_requested_.exchange(false))
      for (auto& p : pairs) reset_pair(p);
    std::erase_if(pairs, [](const Pair& p) { return p.dead; });
    open_.store(static_cast<int>(pairs.size()));
    const int timeout_ms = fill_poll_set(fds, pairs, listen_fd_, wake_[0], mode_.load() == Mode::stall);
    if (::poll(fds.data(), fds.size(), timeout_ms) < 0) continue;
    if (fds[1].revents) {
      char drain[16];
      (void)!::read(wake_[0], drain, sizeof drain);
    }
    if (fds[0].revents & POLLIN) accept_client(listen_fd_, target_, mode_, pairs);
    const auto delay = std::chrono::milliseconds(delay_ms_.load());
    // Pairs accepted in this round have no entries in `fds` yet: they wait for the next.
    for (std::size_t i = 0; i < pairs.size() && 2 + 2 * i + 1 < fds.size(); ++i)
      move_bytes(pairs[i], &fds[2 + 2 * i], delay, buf, sizeof buf);
  }
  for (auto& p : pairs)
    if (!p.dead) ::close(p.fd[0]), ::close(p.fd[1]);
}

}  // namespace lagoon::test
