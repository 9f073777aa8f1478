// A small HTTP/1.1 server for `det-run serve`, private to the app layer. It answers GET and HEAD
// requests, one per connection, and stays answering when clients are slow or hostile: one thread
// reads every connection without blocking (poll), a request's head must arrive whole within a
// deadline and a size limit, the connections open at once are bounded (the oldest still-reading
// one gives way to a new one), handlers run on a small pool of threads, and responses are
// written without blocking within a deadline. (A thread per connection blocking on its reads, as
// cpp-httplib, det's server before, does, let a few clients sending a byte a second hold them all.)
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

namespace det::app {

/// One request, as the handler sees it.
struct HttpRequest {
  std::string method;                          ///< "GET" or "HEAD".
  std::string path;                            ///< The target before '?', not decoded.
  std::string query;                           ///< After '?', or "".
  std::map<std::string, std::string> headers;  ///< Names in lower case.
  /// A header's value ("" when absent); `name` in lower case.
  std::string header(const std::string& name) const;
};

/// The handler's answer.
struct HttpResponse {
  int status = 200;                            ///< HTTP status code.
  std::string content_type = "text/plain";     ///< Content-Type.
  std::string body;                            ///< The body (omitted for HEAD).
  std::map<std::string, std::string> headers;  ///< Extra headers.
};

/// Limits of the server; the defaults suit a live view on loopback.
struct HttpLimits {
  size_t max_connections = 64;                       ///< Open at once.
  size_t max_head_bytes = 16 * 1024;                 ///< Request line and headers.
  std::chrono::milliseconds head_deadline{10'000};   ///< From accept to a whole head.
  std::chrono::milliseconds write_deadline{60'000};  ///< From the answer to its last byte.
  int handler_threads = 4;                           ///< Handlers running at once.
  size_t max_queued = 64;  ///< Requests waiting for a handler (503 beyond).
};

/// Serves `handler` on host:port until `stop` is set.
class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  /// Binds `host`:`port` (0: any free port). Throws det::UsageError when the port is taken,
  /// det::Error when the host cannot be listened on.
  HttpServer(const std::string& host, int port, Handler handler, HttpLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  /// The port bound.
  int port() const;
  /// Serves until `stop` becomes true (checked at least every 100 ms).
  void run(const std::atomic<bool>& stop);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace det::app
