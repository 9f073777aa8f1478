#include "det/experiment/control.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "det/record/run_dir.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"

namespace det::experiment {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string host_name() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return host;
}

// A new command's id: sorts by the time it was sent.
std::string new_id() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  char id[64];
  std::snprintf(id, sizeof id, "%020lld-%d", static_cast<long long>(ns),
                static_cast<int>(::getpid()));
  return id;
}

}  // namespace

RunnerLock::RunnerLock(const fs::path& run_dir) {
  const fs::path path = record::RunDir(run_dir).runner_lock();
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw Error(path.string() + ": cannot open: " + std::strerror(errno) +
                ": the run directory must be writable");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd_);
    fd_ = -1;
    auto who = holder(run_dir);
    throw Error("the experiment in " + run_dir.string() + " is being run by det-run (" +
                who.value_or("another process") +
                "): operate it with det-run pause|activate|cancel|kill, or wait for it to end");
  }
  const std::string me = "pid " + std::to_string(::getpid()) + " on " + host_name();
  if (::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) < 0) {
    // the lock is what counts; the name inside only helps the message
  }
}

RunnerLock::~RunnerLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor drops the lock
}

std::optional<std::string> RunnerLock::holder(const fs::path& run_dir) {
  const fs::path path = record::RunDir(run_dir).runner_lock();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return std::nullopt;  // never run by a runner that locks
  std::optional<std::string> who;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);
  } else {
    char buf[200] = {0};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    who = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("a runner");
  }
  ::close(fd);
  return who;
}

ControlInbox::ControlInbox(const fs::path& run_dir) : dir_(record::RunDir(run_dir).control()) {
  fs::create_directories(dir_);
}

std::vector<std::pair<std::string, record::ControlCommand>> ControlInbox::pending() {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec))
    if (entry.path().extension() == ".json") ids.push_back(entry.path().stem().string());
  std::sort(ids.begin(), ids.end());
  std::vector<std::pair<std::string, record::ControlCommand>> out;
  for (const auto& id : ids) {
    const fs::path file = dir_ / (id + ".json");
    try {
      const json j = json::parse(util::read_file(file, 1 << 16));
      out.emplace_back(id, record::ControlCommand::from_json(j, file.string()));
    } catch (const std::exception& e) {  // not a command: said once, then it is gone
      answer(id, {false, util::shorten(e.what(), 300)});
    }
  }
  return out;
}

void ControlInbox::answer(const std::string& id, const record::ControlAnswer& a) {
  util::write_file_atomic(dir_ / (id + ".answer"), a.to_json().dump() + "\n");
  std::error_code ec;
  fs::remove(dir_ / (id + ".json"), ec);
}

record::ControlAnswer send_control(const fs::path& run_dir, const record::ControlCommand& command,
                                   std::chrono::milliseconds timeout) {
  if (!RunnerLock::holder(run_dir))
    throw Error("no det-run runs the experiment in " + run_dir.string() +
                " now: continue it with det-run --resume-experiment " + run_dir.string() +
                " (then " + record::to_string(command.kind) + " it)");
  const fs::path dir = record::RunDir(run_dir).control();
  fs::create_directories(dir);
  const std::string id = new_id();
  const fs::path question = dir / (id + ".json"), reply = dir / (id + ".answer");
  util::write_file_atomic(question, command.to_json().dump() + "\n");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::error_code ec;
    if (fs::exists(reply, ec)) {
      auto a = record::ControlAnswer::from_json(json::parse(util::read_file(reply, 1 << 16)),
                                                reply.string());
      fs::remove(reply, ec);
      return a;
    }
    if (!RunnerLock::holder(run_dir)) break;  // the runner ended meanwhile
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::error_code ec;
  fs::remove(question, ec);   // not carried out: nobody should find it later
  if (fs::exists(reply, ec))  // answered just now
    return record::ControlAnswer::from_json(json::parse(util::read_file(reply, 1 << 16)),
                                            reply.string());
  throw Error(
      "the runner of " + run_dir.string() + " did not answer '" + record::to_string(command.kind) +
      "' within " + std::to_string(timeout.count() / 1000) + " s" +
      (RunnerLock::holder(run_dir) ? "; see its log " + record::RunDir(run_dir).log().string()
                                   : ": it ended meanwhile"));
}

}  // namespace det::experiment
