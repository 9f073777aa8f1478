#include "http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "det/util/error.h"

namespace det::app {

std::string HttpRequest::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? "" : it->second;
}

namespace {

using Clock = std::chrono::steady_clock;

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The request line and headers of a head (up to, without, the blank line); false if malformed.
bool parse_head(const std::string& head, HttpRequest& req) {
  size_t at = 0;
  auto next_line = [&](std::string& line) {
    if (at >= head.size()) return false;
    size_t end = head.find('\n', at);
    if (end == std::string::npos) end = head.size();
    line = head.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    at = end + 1;
    return true;
  };
  std::string line;
  if (!next_line(line)) return false;
  const auto sp1 = line.find(' '), sp2 = line.rfind(' ');
  if (sp1 == std::string::npos || sp2 == sp1) return false;
  req.method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (line.compare(sp2 + 1, 5, "HTTP/") != 0 || target.empty() || target[0] != '/') return false;
  const auto q = target.find('?');
  req.path = target.substr(0, q);
  req.query = q == std::string::npos ? "" : target.substr(q + 1);
  while (next_line(line)) {
    if (line.empty()) break;
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) return false;
    req.headers[lower(line.substr(0, colon))] = trim(line.substr(colon + 1));
  }
  return true;
}

std::string encode(const HttpResponse& r, bool head_only) {
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) +
                    "\r\nContent-Type: " + r.content_type +
                    "\r\nContent-Length: " + std::to_string(r.body.size()) +
                    "\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n";
  for (const auto& [k, v] : r.headers) out += k + ": " + v + "\r\n";
  out += "\r\n";
  if (!head_only) out += r.body;
  return out;
}

HttpResponse plain(int status, const std::string& text) {
  HttpResponse r;
  r.status = status;
  r.body = text + "\n";
  return r;
}

}  // namespace

struct HttpServer::Impl {
  enum class State { kReading, kHandling, kWriting };
  struct Conn {
    int fd = -1;
    State state = State::kReading;
    std::string in, out;
    size_t out_at = 0;
    Clock::time_point deadline;
    uint64_t serial = 0;  // accept order: the oldest reader gives way first
  };
  struct Job {
    uint64_t conn;
    HttpRequest req;
  };

  Handler handler;
  HttpLimits limits;
  int listen_fd = -1, wake_read = -1, wake_write = -1, bound_port = 0;
  std::map<uint64_t, Conn> conns;  // by serial
  uint64_t next_serial = 1;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;
  std::vector<std::pair<uint64_t, std::string>> done;
  bool quit = false;
  std::vector<std::thread> pool;

  ~Impl() {
    {
      std::lock_guard<std::mutex> lock(mu);
      quit = true;
    }
    cv.notify_all();
    for (auto& t : pool) t.join();
    for (auto& [id, c] : conns) ::close(c.fd);
    for (int fd : {listen_fd, wake_read, wake_write})
      if (fd >= 0) ::close(fd);
  }

  void bind(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
      throw Error("serve: cannot listen on " + host + ": " + ::gai_strerror(rc));
    int err = 0;
    for (addrinfo* a = found; a && listen_fd < 0; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        err = errno;
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0) {
        listen_fd = fd;
      } else {
        err = errno;
        ::close(fd);
      }
    }
    ::freeaddrinfo(found);
    if (listen_fd < 0) {
      if (err == EADDRINUSE)
        throw UsageError("serve: cannot listen on " + host + ":" + service +
                         " (in use? pick another with --port, or --port 0 for any free one)");
      throw Error("serve: cannot listen on " + host + ":" + service + ": " + std::strerror(err));
    }
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len);
    bound_port = addr.ss_family == AF_INET6
                     ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                     : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0)
      throw Error(std::string("serve: cannot make a pipe: ") + std::strerror(errno));
    wake_read = pipe_fds[0];
    wake_write = pipe_fds[1];
  }

  void start_pool() {
    for (int i = 0; i < std::max(1, limits.handler_threads); ++i)
      pool.emplace_back([this] { work(); });
  }

  // A handler thread: takes a request, answers it, hands the bytes to the I/O thread.
  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return quit || !jobs.empty(); });
        if (quit) return;
        job = std::move(jobs.front());
        jobs.pop_front();
      }
      HttpResponse res;
      try {
        res = handler(job.req);
      } catch (const std::exception&) {
        res = plain(500, "internal error");
      }
      std::string bytes = encode(res, job.req.method == "HEAD");
      {
        std::lock_guard<std::mutex> lock(mu);
        done.emplace_back(job.conn, std::move(bytes));
      }
      const char b = 1;
      (void)!::write(wake_write, &b, 1);
    }
  }

  void close_conn(uint64_t id) {
    auto it = conns.find(id);
    if (it == conns.end()) return;
    ::close(it->second.fd);
    conns.erase(it);
  }

  void answer(Conn& c, std::string bytes) {
    c.state = State::kWriting;
    c.out = std::move(bytes);
    c.out_at = 0;
    c.deadline = Clock::now() + limits.write_deadline;
  }

  void accept_all() {
    for (;;) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a connection that went away
      if (conns.size() >= limits.max_connections) {
        // Full: the oldest connection still sending its request gives way (a client that
        // trickles its head must not keep others out); if every one is being answered, the new
        // one is turned away.
        auto oldest = std::find_if(conns.begin(), conns.end(), [](const auto& kv) {
          return kv.second.state == State::kReading;
        });
        if (oldest == conns.end()) {
          ::close(fd);
          continue;
        }
        close_conn(oldest->first);
      }
      const uint64_t id = next_serial++;
      Conn& c = conns[id];
      c.fd = fd;
      c.serial = id;
      c.deadline = Clock::now() + limits.head_deadline;
    }
  }

  void read_from(Conn& c) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        close_conn(c.serial);
        return;
      }
      c.in.append(buf, static_cast<size_t>(n));
      if (c.in.size() > limits.max_head_bytes) break;
    }
    size_t end = c.in.find("\r\n\r\n");
    if (end == std::string::npos) end = c.in.find("\n\n");
    if (end == std::string::npos || end > limits.max_head_bytes) {
      if (c.in.size() > limits.max_head_bytes)
        answer(c, encode(plain(431, "the request's head is larger than " +
                                        std::to_string(limits.max_head_bytes) + " bytes"),
                         false));
      return;
    }
    HttpRequest req;
    if (!parse_head(c.in.substr(0, end), req)) {
      answer(c, encode(plain(400, "malformed request"), false));
      return;
    }
    if (req.method != "GET" && req.method != "HEAD") {
      HttpResponse r = plain(405, "only GET and HEAD");
      r.headers["Allow"] = "GET, HEAD";
      answer(c, encode(r, false));
      return;
    }
    std::unique_lock<std::mutex> lock(mu);
    if (jobs.size() >= limits.max_queued) {
      lock.unlock();
      answer(c, encode(plain(503, "busy; try again"), req.method == "HEAD"));
      return;
    }
    c.state = State::kHandling;
    c.in.clear();
    jobs.push_back({c.serial, std::move(req)});
    lock.unlock();
    cv.notify_one();
  }

  void write_to(Conn& c) {
    while (c.out_at < c.out.size()) {
      const ssize_t n =
          ::send(c.fd, c.out.data() + c.out_at, c.out.size() - c.out_at, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) break;
      c.out_at += static_cast<size_t>(n);
    }
    ::shutdown(c.fd, SHUT_WR);
    close_conn(c.serial);
  }

  void take_answers() {
    char drain[256];
    while (::read(wake_read, drain, sizeof drain) > 0) {
    }
    std::vector<std::pair<uint64_t, std::string>> ready;
    {
      std::lock_guard<std::mutex> lock(mu);
      ready.swap(done);
    }
    for (auto& [id, bytes] : ready) {
      auto it = conns.find(id);
      if (it != conns.end()) answer(it->second, std::move(bytes));
    }
  }

  void loop(const std::atomic<bool>& stop) {
    std::vector<pollfd> fds;
    std::vector<uint64_t> ids;
    while (!stop.load()) {
      const auto now = Clock::now();
      for (auto it = conns.begin(); it != conns.end();) {
        const bool expired = it->second.state != State::kHandling && now >= it->second.deadline;
        if (expired) {
          ::close(it->second.fd);
          it = conns.erase(it);
        } else {
          ++it;
        }
      }
      fds.clear();
      ids.clear();
      fds.push_back({listen_fd, POLLIN, 0});
      fds.push_back({wake_read, POLLIN, 0});
      auto wait = std::chrono::milliseconds(100);
      for (auto& [id, c] : conns) {
        if (c.state == State::kHandling) continue;
        fds.push_back({c.fd, static_cast<short>(c.state == State::kReading ? POLLIN : POLLOUT), 0});
        ids.push_back(id);
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(
                                  c.deadline - now + std::chrono::milliseconds(1)));
      }
      const int n =
          ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wait.count())));
      if (n < 0 && errno != EINTR) throw Error(std::string("serve: poll: ") + std::strerror(errno));
      if (n <= 0) continue;
      if (fds[1].revents) take_answers();
      for (size_t i = 2; i < fds.size(); ++i) {
        if (!fds[i].revents) continue;
        auto it = conns.find(ids[i - 2]);
        if (it == conns.end()) continue;
        Conn& c = it->second;
        if (c.state == State::kReading)
          read_from(c);
        else if (c.state == State::kWriting)
          write_to(c);
      }
      if (fds[0].revents) accept_all();
    }
  }
};

HttpServer::HttpServer(const std::string& host, int port, Handler handler, HttpLimits limits)
    : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  impl_->limits = limits;
  impl_->bind(host, port);
}

HttpServer::~HttpServer() = default;

int HttpServer::port() const { return impl_->bound_port; }

void HttpServer::run(const std::atomic<bool>& stop) {
  if (impl_->pool.empty()) impl_->start_pool();
  impl_->loop(stop);
}

}  // namespace det::app
