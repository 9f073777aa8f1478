// The experiment runner end to end: det-probe (tests/experiment/runner_probe.cpp) runs
// tests/experiment/runner_probe.yaml, asynchronous successive halving with rungs at 8, 16 and 32
// batches, each trial in its own worker process; the assertions read what a user reads: the
// experiment store and experiment.json.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/experiment/run_dir.h"
#include "det/experiment/store.h"
#include "det/record/checkpoint.h"
#include "det/record/states.h"
#include "det/util/fs.h"
#include "det/util/threads.h"

namespace fs = std::filesystem;
using json = nlohmann::json;
using det::experiment::ExperimentStore;
namespace record = det::record;

namespace {

const std::string kConfig = std::string(DET_SOURCE_DIR) + "/tests/experiment/runner_probe.yaml";

fs::path fresh_dir(const std::string& name) {
  fs::path dir =
      fs::temp_directory_path() / ("det-runner-test-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct ProbeRun {
  int rc = -1;
  std::string output;
};

// Runs det-probe with `args` and extra environment; when `interrupt` is given it is polled every
// 20 ms and the runner gets `signal` (default SIGINT, a Ctrl-C) once it returns true.
ProbeRun run_probe(const fs::path& work, std::vector<std::string> args,
                   const std::map<std::string, std::string>& env,
                   const std::function<bool()>& interrupt = nullptr, int signal = SIGINT,
                   const std::string& program = DET_PROBE_EXE) {
  args.insert(args.begin(), program);
  fs::path log =
      work / ("log-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
              ".txt");
  pid_t pid = ::fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    if (!f || ::dup2(::fileno(stdout), 2) < 0) ::_exit(126);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  bool sent = false;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (interrupt && !sent && interrupt()) {
      ::kill(pid, signal);
      sent = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ProbeRun run;
  run.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.output = det::util::read_file(log);
  return run;
}

std::vector<std::string> probe_args(const fs::path& work, int slots) {
  return {kConfig,    "--no-progress",
          "--slots",  std::to_string(slots),
          "--config", "checkpoint_storage.host_path=" + (work / "runs").string()};
}

fs::path only_run_dir(const fs::path& work) {
  fs::path dir =
      det::experiment::latest_run_dir(work / "runs");  // `work` may also be the disk holding runs/
  EXPECT_FALSE(dir.empty()) << "no run directory under " << work / "runs";
  return dir;
}

json read_json(const fs::path& p) { return json::parse(det::util::read_file(p)); }

// What a trial did, as the store has it.
struct TrialView {
  det::experiment::TrialRow row;
  std::vector<int64_t> training_batches, validation_batches;
  std::vector<double> losses;
  std::vector<double> validation_mse;  // depends on the weights: equal only if training was
  std::vector<json> validation;        // every validation's metrics
  json summary;                        // its experiment.json entry
};

std::map<int64_t, TrialView> trials_of(const fs::path& run_dir) {
  json doc = read_json(run_dir / "experiment.json");
  ExperimentStore store(run_dir.parent_path() / "det.db");
  std::map<int64_t, TrialView> out;
  for (const auto& row : store.trials(doc["store"]["experiment_id"].get<int64_t>())) {
    TrialView v;
    v.row = row;
    for (const auto& m : store.metrics(row.id, "training")) {
      v.training_batches.push_back(m.batches);
      v.losses.push_back(m.metrics["loss"].get<double>());
    }
    for (const auto& m : store.metrics(row.id, "validation")) {
      v.validation_batches.push_back(m.batches);
      v.validation_mse.push_back(m.metrics["mse"].get<double>());
      v.validation.push_back(m.metrics);
    }
    for (const auto& t : doc["trials"])
      if (t["id"].get<int64_t>() == row.number) v.summary = t;
    out[row.number] = v;
  }
  return out;
}

// Reports every scheduling_unit (2) batches, from the first to the last, each exactly once: no
// batch trained twice, none skipped.
void expect_contiguous(const TrialView& t) {
  for (size_t i = 0; i < t.training_batches.size(); ++i)
    EXPECT_EQ(t.training_batches[i], static_cast<int64_t>(2 * (i + 1)))
        << "trial " << t.row.number << " report " << i;
}

// Same trials, same decisions, same weights at every validation (bit-exact resume), and no
// batch trained twice. (A stopped trial reports a short training period where it stopped.)
void expect_same_experiment(const fs::path& reference, const fs::path& dir) {
  auto a = trials_of(reference), b = trials_of(dir);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [n, ta] : a) {
    const auto& tb = b.at(n);
    EXPECT_EQ(ta.row.hparams, tb.row.hparams) << "trial " << n;
    EXPECT_EQ(ta.row.state, tb.row.state) << "trial " << n;
    EXPECT_EQ(ta.row.batches_trained, tb.row.batches_trained) << "trial " << n;
    EXPECT_EQ(ta.validation_batches, tb.validation_batches) << "trial " << n;
    EXPECT_EQ(ta.validation_mse, tb.validation_mse) << "trial " << n;
    for (size_t i = 1; i < tb.training_batches.size(); ++i)
      EXPECT_LT(tb.training_batches[i - 1], tb.training_batches[i])
          << "trial " << n << ": batch trained twice";
  }
}

// One history: per trial, the store's metrics equal metrics.jsonl line for line, experiment.json
// names the same state and latest checkpoint, every checkpoint the store holds is complete on
// disk, and nothing else is in the checkpoints folder (no staging directory, no unrecorded one).
void expect_records_agree(const fs::path& dir) {
  json doc = read_json(dir / "experiment.json");
  ExperimentStore store(dir.parent_path() / "det.db");
  for (const auto& row : store.trials(doc["store"]["experiment_id"].get<int64_t>())) {
    const std::string who = "trial " + std::to_string(row.number);
    const fs::path trial_dir = dir / ("trial-" + std::to_string(row.number));
    std::vector<std::pair<int64_t, std::string>> from_store, from_file;
    for (const auto& m : store.metrics(row.id)) from_store.emplace_back(m.batches, m.kind);
    std::ifstream in(trial_dir / "metrics.jsonl");
    for (std::string l; std::getline(in, l);) {
      json j = json::parse(l);
      from_file.emplace_back(j["batches"].get<int64_t>(), j["kind"].get<std::string>());
    }
    EXPECT_EQ(from_store, from_file) << who << ": the store and metrics.jsonl disagree";
    json summary;
    for (const auto& t : doc["trials"])
      if (t["id"].get<int64_t>() == row.number) summary = t;
    EXPECT_EQ(summary["state"], record::to_string(row.state)) << who;
    std::set<std::string> active;
    std::string newest;
    for (const auto& c : store.checkpoints(row.id)) {  // by batch
      active.insert(fs::path(c.path).filename().string());
      newest = c.uuid;
      EXPECT_TRUE(fs::exists(fs::path(c.path) / "metadata.json"))
          << who << ": recorded checkpoint missing: " << c.path;
    }
    if (!newest.empty()) {
      EXPECT_EQ(summary["latest_checkpoint"], newest) << who;
    }
    std::set<std::string> on_disk;
    if (fs::exists(trial_dir / "checkpoints"))
      for (const auto& e : fs::directory_iterator(trial_dir / "checkpoints"))
        on_disk.insert(e.path().filename().string());
    EXPECT_EQ(on_disk, active) << who << ": the checkpoints on disk and in the store disagree";
  }
}

TEST(Runner, AshaPromotesPausesResumesRestartsAndRecords) {
  fs::path work = fresh_dir("asha");
  fs::create_directories(work / "markers");
  // Trial 1 is killed once at batch 11 (after its pause checkpoint at 8), trial 3 every time it
  // reaches batch 3 (max_restarts 1: ERROR after 2 failures), trial 4 asks to stop at batch 5.
  ProbeRun run = run_probe(work, probe_args(work, 1),
                           {{"DET_PROBE_MARKERS", (work / "markers").string()},
                            {"DET_PROBE_CRASH", "1:11,3:3:always"},
                            {"DET_PROBE_STOP", "4:5"}});
  ASSERT_EQ(run.rc, 0) << run.output;
  fs::path dir = only_run_dir(work);
  json doc = read_json(dir / "experiment.json");
  EXPECT_EQ(doc["state"], "COMPLETED");
  ExperimentStore store(dir.parent_path() / "det.db");
  int64_t exp_id = doc["store"]["experiment_id"].get<int64_t>();
  EXPECT_EQ(store.experiment(exp_id).state, record::RunState::kCompleted);

  auto trials = trials_of(dir);
  int invalid = 0, errored = 0;
  for (const auto& [n, t] : trials) {
    invalid += t.row.state == record::TrialStatus::kInvalidHP;
    errored += t.row.state == record::TrialStatus::kError;
    EXPECT_EQ(t.summary["state"], record::to_string(t.row.state))
        << "trial " << n << ": experiment.json and the store disagree";
  }
  // x > 0.9 is rejected (InvalidHP) and the searcher creates a replacement for each.
  ASSERT_GE(invalid, 1) << "the seed must draw at least one x > 0.9 for this test";
  EXPECT_EQ(static_cast<int>(trials.size()), 8 + invalid);
  for (const auto& [n, t] : trials) {
    if (t.row.state != record::TrialStatus::kInvalidHP) continue;
    EXPECT_GT(t.row.hparams["x"].get<double>(), 0.9);
    EXPECT_TRUE(t.training_batches.empty());
  }

  // Killed every time: restarted max_restarts (1) times, then ERROR, and the experiment went on.
  EXPECT_EQ(errored, 1);
  EXPECT_EQ(trials[3].row.state, record::TrialStatus::kError);
  EXPECT_EQ(trials[3].row.restarts, 2);
  EXPECT_NE(trials[3].summary.value("message", "").find("signal 9"), std::string::npos);

  // Asked to stop at batch 5: an early exit, not a failure.
  EXPECT_EQ(trials[4].row.state, record::TrialStatus::kCompleted);
  EXPECT_EQ(trials[4].summary.value("early_exit", false), true);
  EXPECT_EQ(trials[4].training_batches.back(), 6);

  // Killed once at batch 11: restarted from its checkpoint at 8, and the metrics it had reported
  // past 8 were rolled back and reported again, once.
  EXPECT_EQ(trials[1].row.restarts, 1);
  EXPECT_NE(trials[1].row.state, record::TrialStatus::kError);

  // Promotion: the trial with the smallest x (the metric) among those that could finish is
  // promoted through every rung; every trial validated at 8, and only promoted ones beyond.
  const TrialView* best = nullptr;
  int reached16 = 0, reached32 = 0;
  for (const auto& [n, t] : trials) {
    if (t.row.state != record::TrialStatus::kCompleted || t.summary.value("early_exit", false))
      continue;
    if (!best || t.row.hparams["x"].get<double>() < best->row.hparams["x"].get<double>()) best = &t;
    ASSERT_FALSE(t.validation_batches.empty()) << "trial " << n;
    EXPECT_EQ(t.validation_batches.front(), 8) << "trial " << n;
    reached16 += std::count(t.validation_batches.begin(), t.validation_batches.end(), 16);
    reached32 += std::count(t.validation_batches.begin(), t.validation_batches.end(), 32);
    expect_contiguous(t);
    // The searcher metric is x: the best validation recorded is that.
    ASSERT_TRUE(t.row.best_metric.has_value());
    EXPECT_DOUBLE_EQ(*t.row.best_metric, t.row.hparams["x"].get<double>());
  }
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(best->validation_batches, (std::vector<int64_t>{8, 16, 32}));
  EXPECT_EQ(best->row.batches_trained, 32);
  EXPECT_GE(reached16, 2);
  EXPECT_GE(reached32, 1);
  EXPECT_LT(reached32, reached16);
  EXPECT_EQ(doc["best_trial"].get<int64_t>(), best->row.number);

  // Pause and resume: a promoted trial was paused after rung 1 (its worker exited) and a new worker
  // resumed it from the checkpoint, training nothing twice (expect_contiguous above).
  bool resumed = false;
  for (const auto& [n, t] : trials)
    if (n != 1 && t.summary.value("launches", 0) >= 2 && t.row.batches_trained > 8) resumed = true;
  EXPECT_TRUE(resumed) << "no trial was paused and resumed";
  EXPECT_NE(run.output.find("resumed from"), std::string::npos);

  // Checkpoints: each trial that trained keeps its latest one on disk (save_trial_latest 1).
  for (const auto& [n, t] : trials) {
    if (t.row.state == record::TrialStatus::kInvalidHP || t.training_batches.empty()) continue;
    auto ckpts = store.checkpoints(t.row.id);
    ASSERT_FALSE(ckpts.empty()) << "trial " << n;
    EXPECT_TRUE(fs::exists(fs::path(ckpts.back().path) / "metadata.json")) << ckpts.back().path;
  }
  expect_records_agree(dir);
  // The search's status, as its last log line shows it (not a terminal: no status line).
  int done = 0, waiting = 0;
  for (const auto& [n, t] : trials) {
    done += t.row.state == record::TrialStatus::kCompleted ||
            t.row.state == record::TrialStatus::kStopped;
    waiting +=
        t.row.state == record::TrialStatus::kPaused || t.row.state == record::TrialStatus::kQueued;
  }
  const std::string status = "search: " + std::to_string(done) + "/8 trials done, 0 running, " +
                             std::to_string(waiting) + " paused, " +
                             std::to_string(invalid + errored) + " failed | best validation_loss ";
  EXPECT_NE(run.output.find(status), std::string::npos) << status << "\n" << run.output;
  EXPECT_EQ(run.output.find("\r"), std::string::npos) << "a status line drawn on a pipe";
  // The runner's state (searcher and trials) is in the store for --resume-experiment.
  auto snap = store.searcher_snapshot(exp_id);
  ASSERT_TRUE(snap.has_value());
  EXPECT_EQ((*snap)["trials"].size(), trials.size());
  EXPECT_TRUE((*snap)["searcher"].is_object());
}

TEST(Runner, CtrlCStopsCleanlyAndResumeExperimentEndsAsAStraightRun) {
  fs::path ref_work = fresh_dir("straight"), work = fresh_dir("stopped");
  ProbeRun straight = run_probe(ref_work, probe_args(ref_work, 1), {});
  ASSERT_EQ(straight.rc, 0) << straight.output;

  // Slow batches; Ctrl-C while trial 2 is between rungs (trained 4 batches of 8), so its worker
  // has to stop mid-way, checkpoint and exit.
  auto mid_trial_2 = [&] {
    fs::path dir = det::experiment::latest_run_dir(work / "runs");
    if (dir.empty()) return false;
    try {
      json doc = read_json(dir / "experiment.json");
      for (const auto& t : doc["trials"])
        if (t["id"] == 2 && t.contains("latest_training") &&
            t["latest_training"]["batches"].get<int64_t>() >= 4)
          return true;
    } catch (const std::exception&) {  // not written yet
    }
    return false;
  };
  ProbeRun stopped =
      run_probe(work, probe_args(work, 1), {{"DET_PROBE_SLEEP_MS", "40"}}, mid_trial_2);
  ASSERT_EQ(stopped.rc, 130) << stopped.output;
  EXPECT_NE(stopped.output.find("continue with: det-run --resume-experiment"), std::string::npos)
      << stopped.output;
  EXPECT_NE(stopped.output.find("trial 2: worker"), std::string::npos);
  EXPECT_NE(stopped.output.find("ended (stopped"), std::string::npos) << stopped.output;
  // It stopped between rungs (8, 16, 32): the worker checkpointed where it was.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(stopped.output, m,
                                std::regex("trial 2: stopped at batch ([0-9]+) on request")))
      << stopped.output;
  EXPECT_NE(std::stoi(m[1]) % 8, 0);
  fs::path dir = only_run_dir(work);
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "STOPPED");

  ProbeRun resumed =
      run_probe(work, {"--resume-experiment", dir.string(), "--no-progress", "--slots", "1"}, {});
  ASSERT_EQ(resumed.rc, 0) << resumed.output;
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "COMPLETED");

  expect_same_experiment(only_run_dir(ref_work), dir);
  expect_records_agree(dir);
}

// ---- operating a running experiment from another process (det-run pause, ...) ----

// A det-probe process started in the background: its pid and where its output goes.
struct Background {
  pid_t pid = -1;
  fs::path log;
};

Background start_probe(const fs::path& work, std::vector<std::string> args,
                       const std::map<std::string, std::string>& env) {
  args.insert(args.begin(), DET_PROBE_EXE);
  Background b;
  b.log =
      work / ("log-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) +
              ".txt");
  b.pid = ::fork();
  if (b.pid == 0) {
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    FILE* f = std::freopen(b.log.c_str(), "w", stdout);
    if (!f || ::dup2(::fileno(stdout), 2) < 0) ::_exit(126);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return b;
}

ProbeRun wait_probe(const Background& b) {
  int status = 0;
  ::waitpid(b.pid, &status, 0);
  ProbeRun run;
  run.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.output = det::util::read_file(b.log);
  return run;
}

// A file's text, or "" while it is not there.
std::string text_of(const fs::path& p) {
  try {
    return det::util::read_file(p);
  } catch (const std::exception&) {
    return "";
  }
}

// Polls `done` every 20 ms for up to `seconds`.
bool eventually(const std::function<bool()>& done, int seconds = 60) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

// experiment.json of the run under `work`, or null while there is none.
json summary_of(const fs::path& work) {
  fs::path dir = det::experiment::latest_run_dir(work / "runs");
  if (dir.empty()) return nullptr;
  try {
    return read_json(dir / "experiment.json");
  } catch (const std::exception&) {  // not written yet
    return nullptr;
  }
}

// Whether trial `n` of the run under `work` trained at least `batches` (and is not done).
bool training(const fs::path& work, int64_t n, int64_t batches) {
  json doc = summary_of(work);
  if (doc.is_null()) return false;
  for (const auto& t : doc["trials"])
    if (t["id"] == n && t.contains("latest_training") && t["latest_training"].is_object() &&
        t["latest_training"]["batches"].get<int64_t>() >= batches && t["state"] == "RUNNING")
      return true;
  return false;
}

// det-probe COMMAND... against the store under `work`, and how long it took.
ProbeRun control(const fs::path& work, std::vector<std::string> args, double* seconds = nullptr) {
  args.push_back("--store");
  args.push_back((work / "runs").string());
  const auto t0 = std::chrono::steady_clock::now();
  ProbeRun r = run_probe(work, args, {});
  if (seconds)
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// The store's id of the one experiment under `work`.
std::string experiment_id_of(const fs::path& work) {
  ExperimentStore store(work / "runs" / "det.db");
  auto rows = store.experiments();
  return rows.empty() ? "?" : std::to_string(rows.back().id);
}

std::string store_trial_id(const fs::path& run_dir, int64_t number) {
  for (const auto& [n, t] : trials_of(run_dir))
    if (n == number) return std::to_string(t.row.id);
  return "?";
}

// A search of det-probe in the background (one slot, every batch sleeping `sleep_ms`), once
// trial `n` trains past `batches`: the runner, its run directory and the store's experiment id.
struct SlowSearch {
  Background runner;
  fs::path dir;
  std::string id;
  bool ok = false;  ///< Trial n got that far.
};

SlowSearch start_slow_search(const fs::path& work, const char* sleep_ms, int64_t n,
                             int64_t batches) {
  SlowSearch s;
  s.runner = start_probe(work, probe_args(work, 1), {{"DET_PROBE_SLEEP_MS", sleep_ms}});
  s.ok = eventually([&] { return training(work, n, batches); });
  if (!s.ok) return s;
  s.dir = only_run_dir(work);
  s.id = experiment_id_of(work);
  return s;
}

// Pause from another process while trial 2 trains: its worker checkpoints and stops, nothing
// trains while PAUSED, the runner waits. Its runner is then killed; activate says that no runner
// runs it; --resume-experiment brings it back PAUSED; activate goes on; the experiment ends as a
// straight run, bit for bit.
TEST(Runner, PauseAndActivateFromAnotherProcessEndAsAStraightRun) {
  fs::path ref_work = fresh_dir("pause-straight"), work = fresh_dir("pause");
  ProbeRun straight = run_probe(ref_work, probe_args(ref_work, 1), {});
  ASSERT_EQ(straight.rc, 0) << straight.output;

  SlowSearch search = start_slow_search(work, "40", 2, 4);
  ASSERT_TRUE(search.ok) << text_of(search.runner.log);
  Background& runner = search.runner;
  const fs::path dir = search.dir;
  const std::string id = search.id;
  double took = 0;
  ProbeRun paused = control(work, {"pause", id}, &took);
  ASSERT_EQ(paused.rc, 0) << paused.output;
  EXPECT_NE(paused.output.find("PAUSED"), std::string::npos) << paused.output;
  EXPECT_LT(took, 5.0) << "pause took effect after " << took << " s";
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "PAUSED");
  const auto before = trials_of(dir);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  const auto after = trials_of(dir);
  for (const auto& [n, t] : after) {
    EXPECT_NE(t.row.state, record::TrialStatus::kActive) << "trial " << n << " runs while PAUSED";
    EXPECT_EQ(t.training_batches, before.at(n).training_batches) << "trial " << n;
  }
  EXPECT_EQ(::waitpid(runner.pid, nullptr, WNOHANG), 0) << "the runner left when paused";
  ProbeRun again = control(work, {"pause", id});
  EXPECT_EQ(again.rc, 1);
  EXPECT_NE(again.output.find("PAUSED already"), std::string::npos) << again.output;

  ::kill(runner.pid, SIGKILL);
  wait_probe(runner);
  ProbeRun orphan = control(work, {"activate", id});
  EXPECT_EQ(orphan.rc, 1);
  EXPECT_NE(orphan.output.find("no det-run runs the experiment"), std::string::npos)
      << orphan.output;
  EXPECT_NE(orphan.output.find("--resume-experiment " + dir.string()), std::string::npos)
      << orphan.output;

  Background resumed =
      start_probe(work, {"--resume-experiment", dir.string(), "--no-progress", "--slots", "1"}, {});
  ASSERT_TRUE(eventually([&] {
    return text_of(resumed.log).find("is PAUSED") != std::string::npos;
  })) << text_of(resumed.log);
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "PAUSED");
  ProbeRun active = control(work, {"activate", id}, &took);
  ASSERT_EQ(active.rc, 0) << active.output;
  EXPECT_LT(took, 5.0);
  ProbeRun done = wait_probe(resumed);
  ASSERT_EQ(done.rc, 0) << done.output;
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "COMPLETED");
  expect_same_experiment(only_run_dir(ref_work), dir);
  expect_records_agree(dir);
  ProbeRun finished = control(work, {"pause", id});
  EXPECT_EQ(finished.rc, 1);
  EXPECT_NE(finished.output.find("is COMPLETED already"), std::string::npos) << finished.output;
}

// kill-trial ends one trial (CANCELED, no checkpoint) and the search goes on; set max-slots
// changes the budget; cancel checkpoints the running trial and ends the experiment CANCELED,
// which --resume-experiment leaves alone. (Slow batches, half a second: a trial at batch 2
// of its rung at 8 is still training when the command arrives.)
TEST(Runner, KillTrialSetMaxSlotsAndCancelFromAnotherProcess) {
  fs::path work = fresh_dir("cancel");
  SlowSearch search = start_slow_search(work, "500", 2, 2);
  ASSERT_TRUE(search.ok) << text_of(search.runner.log);
  Background& runner = search.runner;
  const fs::path dir = search.dir;
  const std::string id = search.id;
  double took = 0;
  ProbeRun killed = control(work, {"kill-trial", store_trial_id(dir, 2)}, &took);
  ASSERT_EQ(killed.rc, 0) << killed.output;
  EXPECT_NE(killed.output.find("CANCELED"), std::string::npos) << killed.output;
  EXPECT_LT(took, 5.0);
  EXPECT_EQ(trials_of(dir).at(2).row.state, record::TrialStatus::kCanceled);

  ProbeRun slots = control(work, {"set", "max-slots", id, "2"});
  EXPECT_EQ(slots.rc, 0) << slots.output;
  EXPECT_NE(slots.output.find("max slots 1 -> 2"), std::string::npos) << slots.output;
  ProbeRun none = control(work, {"set", "max-slots", id, "0"});
  EXPECT_EQ(none.rc, 1) << none.output;

  ASSERT_TRUE(eventually([&] { return training(work, 3, 2) || training(work, 4, 2); }))
      << det::util::read_file(runner.log);
  ProbeRun canceled = control(work, {"cancel", id}, &took);
  ASSERT_EQ(canceled.rc, 0) << canceled.output;
  EXPECT_LT(took, 5.0);
  ProbeRun end = wait_probe(runner);
  EXPECT_EQ(end.rc, 1) << end.output;
  EXPECT_NE(end.output.find("canceled on request"), std::string::npos) << end.output;
  std::string trial_logs;
  for (const auto& e : fs::directory_iterator(dir))
    if (fs::exists(e.path() / "trial.log")) trial_logs += text_of(e.path() / "trial.log");
  EXPECT_NE((end.output + trial_logs).find("stopped at batch"), std::string::npos)
      << "the running trial did not checkpoint: " << end.output;
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "CANCELED");
  for (const auto& [n, t] : trials_of(dir))
    EXPECT_TRUE(record::is_final(t.row.state))
        << "trial " << n << " " << record::to_string(t.row.state);
  expect_records_agree(dir);
  ProbeRun resumed = run_probe(work, {"--resume-experiment", dir.string(), "--no-progress"}, {});
  EXPECT_EQ(resumed.rc, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("already CANCELED"), std::string::npos) << resumed.output;
  ProbeRun late = control(work, {"kill", id});
  EXPECT_EQ(late.rc, 1);
  EXPECT_NE(late.output.find("CANCELED already"), std::string::npos) << late.output;
  ProbeRun unknown = control(work, {"pause", "999"});
  EXPECT_EQ(unknown.rc, 1);
  EXPECT_NE(unknown.output.find("no experiment 999"), std::string::npos) << unknown.output;
}

// kill ends every worker at once: no checkpoint is written for the kill (slow batches: trial 1
// is killed before its first rung).
TEST(Runner, KillEndsTheExperimentAtOnce) {
  fs::path work = fresh_dir("kill-now");
  SlowSearch search = start_slow_search(work, "500", 1, 2);
  ASSERT_TRUE(search.ok) << text_of(search.runner.log);
  Background& runner = search.runner;
  const fs::path dir = search.dir;
  const std::string id = search.id;
  ProbeRun killed = control(work, {"kill", id});
  ASSERT_EQ(killed.rc, 0) << killed.output;
  ProbeRun end = wait_probe(runner);
  EXPECT_EQ(end.rc, 1) << end.output;
  EXPECT_EQ(text_of(dir / "trial-1" / "trial.log").find("stopped at batch"), std::string::npos)
      << "a killed trial checkpointed";
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "CANCELED");
  const auto trial1 = trials_of(dir).at(1);
  EXPECT_EQ(trial1.row.state, record::TrialStatus::kCanceled);
  EXPECT_GE(trial1.row.batches_trained, 2);
  ExperimentStore store(work / "runs" / "det.db");
  EXPECT_TRUE(store.checkpoints(trial1.row.id).empty())
      << "killed before its rung at 8, trial 1 has no checkpoint";
  expect_records_agree(dir);
}

// kill -9 of the runner at any moment, then --resume-experiment: the experiment ends as an
// uninterrupted run and its records agree. The points are those of the runner's test hook
// (DET_TEST_RUNNER_CRASH); scripts/crash_stress.sh kills at random moments instead.
TEST(Runner, KilledAnywhereResumeExperimentEndsAsAStraightRun) {
  fs::path ref_work = fresh_dir("kill-straight");
  ProbeRun straight = run_probe(ref_work, probe_args(ref_work, 1), {});
  ASSERT_EQ(straight.rc, 0) << straight.output;
  for (const std::string point :
       {"report:7", "validation:3", "checkpoint_received:2", "checkpoint_recorded:3",
        "checkpoint_answered:4", "decision:2", "launch:5"}) {
    SCOPED_TRACE("runner killed at " + point);
    fs::path work = fresh_dir("kill-" + point.substr(0, point.find(':')));
    ProbeRun killed = run_probe(work, probe_args(work, 1), {{"DET_TEST_RUNNER_CRASH", point}});
    ASSERT_EQ(killed.rc, 128 + SIGKILL) << killed.output;
    fs::path dir = only_run_dir(work);
    ProbeRun resumed =
        run_probe(work, {"--resume-experiment", dir.string(), "--no-progress", "--slots", "1"}, {});
    ASSERT_EQ(resumed.rc, 0) << resumed.output;
    EXPECT_EQ(read_json(dir / "experiment.json")["state"], "COMPLETED");
    expect_same_experiment(only_run_dir(ref_work), dir);
    expect_records_agree(dir);
  }
}

// Issue 23 item 5: the slots are the experiment's. Killed while running with --slots 2 and
// resumed without --slots, it keeps its 2 slots (so the workers keep their thread counts and the
// results equal a straight run's), and says so; --slots changes them, with a warning.
TEST(Runner, ResumeExperimentKeepsTheExperimentsSlots) {
  fs::path ref_work = fresh_dir("slots-straight"), work = fresh_dir("slots-killed");
  ProbeRun straight = run_probe(ref_work, probe_args(ref_work, 2), {});
  ASSERT_EQ(straight.rc, 0) << straight.output;
  ProbeRun killed =
      run_probe(work, probe_args(work, 2), {{"DET_TEST_RUNNER_CRASH", "validation:3"}});
  ASSERT_EQ(killed.rc, 128 + SIGKILL) << killed.output;
  fs::path dir = only_run_dir(work);
  ProbeRun resumed = run_probe(work, {"--resume-experiment", dir.string(), "--no-progress"}, {});
  ASSERT_EQ(resumed.rc, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("with its 2 slot(s) (--slots changes it)"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("searcher async_halving, 2 slot(s), 1 slot(s) per trial"),
            std::string::npos)
      << resumed.output;
  expect_same_experiment(only_run_dir(ref_work), dir);
  expect_records_agree(dir);
}

// Issue 23 item 4 and "also seen": a trial's events file deleted (the worker then writes a new
// one) or given a line that is not an event, while the trial runs. The runner hung on the first
// (240 s, no message) and counted the second as an event. Now the channel is not trusted any
// more: the worker is stopped, the trial goes on from its checkpoint in a new launch, and the
// experiment ends as a straight run.
TEST(Runner, ATamperedEventsFileRestartsTheTrialFromItsCheckpoint) {
  fs::path ref_work = fresh_dir("tamper-straight");
  ProbeRun straight = run_probe(ref_work, probe_args(ref_work, 1), {});
  ASSERT_EQ(straight.rc, 0) << straight.output;
  struct Case {
    std::string name, want;
    std::function<void(const fs::path&)> tamper;
  };
  const std::vector<Case> cases = {
      {"deleted", "was deleted after", [](const fs::path& f) { fs::remove(f); }},
      {"garbage", "holds a line that is not a det worker's event",
       [](const fs::path& f) { std::ofstream(f, std::ios::app) << "garbage\n"; }},
      {"nul", "not a det channel line (control byte 0)",
       [](const fs::path& f) { std::ofstream(f, std::ios::app) << std::string("{\0}\n", 4); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::path work = fresh_dir("tamper-" + c.name);
    bool done = false;
    const auto start = std::chrono::steady_clock::now();
    // Once trial 2's first launch has written three events, tamper with its file (once). A run
    // that hangs is interrupted after 150 s (Ctrl-C: it then exits 130, and the test fails).
    auto tamper = [&] {
      if (done) return std::chrono::steady_clock::now() - start > std::chrono::seconds(150);
      const fs::path dir = det::experiment::latest_run_dir(work / "runs");
      if (dir.empty()) return false;
      const fs::path f = dir / "trial-2" / "channel" / "launch-1.events";
      std::error_code ec;
      if (!fs::exists(f, ec)) return false;
      std::ifstream in(f);
      const auto lines = std::count(std::istreambuf_iterator<char>(in), {}, '\n');
      if (lines < 3) return false;
      c.tamper(f);
      done = true;
      return false;  // no signal: the runner must notice by itself
    };
    ProbeRun run = run_probe(work, probe_args(work, 1), {{"DET_PROBE_SLEEP_MS", "20"}}, tamper);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(150));
    ASSERT_TRUE(done) << "the events file was never tampered with";
    ASSERT_EQ(run.rc, 0) << run.output;
    EXPECT_NE(run.output.find(c.want), std::string::npos) << run.output;
    EXPECT_NE(run.output.find("stopping its worker"), std::string::npos) << run.output;
    expect_same_experiment(only_run_dir(ref_work), only_run_dir(work));
    expect_records_agree(only_run_dir(work));
  }
}

// scripts/crash_stress.sh: DET_STRESS_ROUNDS times, kill -9 the runner at a random moment (and
// again during the resume, half of the time), resume, and compare with a straight run.
TEST(Runner, RandomKillStress) {
  const char* rounds_env = std::getenv("DET_STRESS_ROUNDS");
  if (!rounds_env) GTEST_SKIP() << "run by scripts/crash_stress.sh (DET_STRESS_ROUNDS=N)";
  const int rounds = std::atoi(rounds_env);
  fs::path ref_work = fresh_dir("stress-straight");
  auto t0 = std::chrono::steady_clock::now();
  ProbeRun straight = run_probe(ref_work, probe_args(ref_work, 1), {});
  ASSERT_EQ(straight.rc, 0) << straight.output;
  const double full = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::mt19937 rng(
      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  auto kill_after = [&](double seconds) {
    auto start = std::chrono::steady_clock::now();
    return [start, seconds] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >=
             seconds;
    };
  };
  int identical = 0, kills = 0;
  for (int r = 0; r < rounds; ++r) {
    fs::path work = fresh_dir("stress-" + std::to_string(r));
    std::uniform_real_distribution<double> when(0.2, full);
    ProbeRun run = run_probe(work, probe_args(work, 1), {}, kill_after(when(rng)), SIGKILL);
    kills += run.rc == 128 + SIGKILL;
    fs::path dir = det::experiment::latest_run_dir(work / "runs");
    if (dir.empty()) {  // killed before it created anything: nothing to resume, start again
      run = run_probe(work, probe_args(work, 1), {});
      dir = only_run_dir(work);
    }
    const std::vector<std::string> resume = {"--resume-experiment", dir.string(), "--no-progress",
                                             "--slots", "1"};
    for (int attempt = 0; run.rc != 0 && attempt < 4; ++attempt) {
      bool again = attempt == 0 && rng() % 2 == 0;
      run = run_probe(work, resume, {}, again ? kill_after(when(rng) / 2) : std::function<bool()>(),
                      SIGKILL);
      kills += run.rc == 128 + SIGKILL;
    }
    ASSERT_EQ(run.rc, 0) << run.output;
    const int failures_before =
        ::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count();
    expect_same_experiment(only_run_dir(ref_work), dir);
    expect_records_agree(dir);
    if (::testing::UnitTest::GetInstance()->current_test_info()->result()->total_part_count() ==
        failures_before)
      ++identical;
  }
  std::printf(
      "crash stress: %d round(s), %d kill(s) of the runner, %d of %d identical to the straight "
      "run\n",
      rounds, kills, identical, rounds);
  EXPECT_EQ(identical, rounds);
}

TEST(Runner, RunsTrialsConcurrentlyWithinTheSlotBudget) {
  fs::path work = fresh_dir("concurrent");
  ProbeRun run = run_probe(work, probe_args(work, 2), {{"DET_PROBE_SLEEP_MS", "10"}});
  ASSERT_EQ(run.rc, 0) << run.output;
  EXPECT_NE(run.output.find("up to 2 trial(s) at once"), std::string::npos);
  // Two workers overlapped: some trial started while another was running (the log shows both).
  fs::path dir = only_run_dir(work);
  auto trials = trials_of(dir);
  int completed = 0;
  for (const auto& [n, t] : trials) {
    completed += t.row.state == record::TrialStatus::kCompleted;
    if (!t.training_batches.empty()) expect_contiguous(t);
  }
  EXPECT_EQ(completed, 8);
  // At most 2 at once and at least once 2 at once: worker start/end lines in the runner's log.
  std::ifstream log(dir / "det.log");
  std::string line;
  int running = 0, peak = 0;
  while (std::getline(log, line)) {
    if (line.find(": worker ") == std::string::npos) continue;
    if (line.find(" started") != std::string::npos) peak = std::max(peak, ++running);
    if (line.find(" ended") != std::string::npos) --running;
  }
  EXPECT_EQ(peak, 2) << "det.log: expected two workers at once";
  EXPECT_EQ(running, 0);
  // Two trials at once share the CPUs: each worker's intra-op threads are half of them.
  const int share = std::max(1, det::util::usable_cpus() / 2);
  for (const auto& [n, t] : trials)
    for (const auto& v : t.validation)
      EXPECT_EQ(v["intra_op_threads"].get<double>(), share) << "trial " << n;
}

// det owns the workers' threading defaults (docs/performance.md, Threads): BLAS held to one
// thread, LibTorch's intra-op threads on every CPU the process may use; the user's variables win.
TEST(Runner, WorkersGetDetsThreadDefaultsUnlessTheUserChose) {
  const std::vector<std::string> one_trial = {"--config", "searcher.max_trials=1"};
  auto run_one = [&](const std::string& name, const std::map<std::string, std::string>& env) {
    fs::path work = fresh_dir(name);
    auto args = probe_args(work, 1);
    args.insert(args.end(), one_trial.begin(), one_trial.end());
    ProbeRun run = run_probe(work, args, env);
    EXPECT_EQ(run.rc, 0) << run.output;
    auto trials = trials_of(only_run_dir(work));
    EXPECT_EQ(trials.size(), 1u);
    EXPECT_FALSE(trials.empty() || trials.begin()->second.validation.empty()) << run.output;
    return trials.empty() || trials.begin()->second.validation.empty()
               ? json::object()
               : trials.begin()->second.validation.back();
  };
  ::unsetenv("OPENBLAS_NUM_THREADS");
  ::unsetenv("OMP_NUM_THREADS");
  ::unsetenv("DET_INTRA_OP_THREADS");
  ::unsetenv("DET_BLAS_THREADS");
  json d = run_one("threads-default", {});
  EXPECT_EQ(d.value("intra_op_threads", 0.0), det::util::usable_cpus());
  EXPECT_EQ(d.value("blas_threads", 0.0), 1.0);
  json u = run_one("threads-user", {{"OPENBLAS_NUM_THREADS", "3"}, {"DET_INTRA_OP_THREADS", "1"}});
  EXPECT_EQ(u.value("intra_op_threads", 0.0), 1.0);
  EXPECT_EQ(u.value("blas_threads", 0.0), 3.0);
}

TEST(Runner, DataParallelTrialsRunAsRanksAndRestartAfterAKilledRank) {
  // Each trial on 2 Gloo ranks (the worker re-runs itself through the launcher); trial 1's ranks
  // are killed at batch 11, after its checkpoint at 8, and the trial is restarted from there.
  fs::path work = fresh_dir("ranks");
  fs::create_directories(work / "markers");
  auto args = probe_args(work, 2);
  args.insert(args.end(),
              {"--config", "resources.slots_per_trial=2", "--config", "searcher.max_trials=3"});
  ProbeRun run =
      run_probe(work, args,
                {{"DET_PROBE_MARKERS", (work / "markers").string()}, {"DET_PROBE_CRASH", "1:11"}});
  ASSERT_EQ(run.rc, 0) << run.output;
  EXPECT_NE(run.output.find("data-parallel on 2 ranks"), std::string::npos) << run.output;
  auto trials = trials_of(only_run_dir(work));
  ASSERT_EQ(trials.size(), 3u);
  for (const auto& [n, t] : trials) {
    EXPECT_EQ(t.row.state, record::TrialStatus::kCompleted) << "trial " << n;
    expect_contiguous(t);
    EXPECT_DOUBLE_EQ(*t.row.best_metric, t.row.hparams["x"].get<double>());
  }
  EXPECT_EQ(trials[1].row.restarts, 1);
  EXPECT_GT(trials[1].row.batches_trained, 8);
}

// A trial whose validation metric is NaN: recorded as "NaN", the worst value to the searcher
// (never promoted), a warning; with optimizations.fail_on_non_finite it is ERROR at once.
TEST(Runner, NaNMetricsAreTheWorstAndVisible) {
  fs::path work = fresh_dir("nan");
  ProbeRun run = run_probe(work, probe_args(work, 1), {{"DET_PROBE_NAN", "1"}});
  ASSERT_EQ(run.rc, 0) << run.output;
  EXPECT_NE(run.output.find("non-finite validation metric(s) validation_loss=NaN at batch 8"),
            std::string::npos)
      << run.output;
  fs::path dir = only_run_dir(work);
  auto trials = trials_of(dir);
  EXPECT_EQ(trials[1].validation_batches, std::vector<int64_t>{8})
      << "a NaN trial is never promoted";
  ExperimentStore store(dir.parent_path() / "det.db");
  EXPECT_EQ(store.metrics(trials[1].row.id, "validation").at(0).metrics["validation_loss"], "NaN");
  EXPECT_FALSE(trials[1].row.best_metric.has_value());
  expect_records_agree(dir);

  fs::path strict = fresh_dir("nan-strict");
  auto args = probe_args(strict, 1);
  args.insert(args.end(), {"--config", "optimizations.fail_on_non_finite=true"});
  run = run_probe(strict, args, {{"DET_PROBE_NAN", "1"}});
  ASSERT_EQ(run.rc, 0) << run.output;  // the experiment goes on without it
  auto t = trials_of(only_run_dir(strict));
  EXPECT_EQ(t[1].row.state, record::TrialStatus::kError);
  EXPECT_EQ(t[1].row.restarts, 0) << "a diverged trial is not restarted";
  EXPECT_NE(t[1].summary["message"].get<std::string>().find("fail_on_non_finite"),
            std::string::npos);
}

// A full disk under the run directory: a clear error that says how to continue, no partial
// checkpoint left as a checkpoint, every recorded checkpoint whole, and once there is room again
// the experiment resumes and ends as a straight run.
TEST(Runner, AFullDiskStopsTheExperimentResumably) {
  fs::path work = fresh_dir("full-disk"), disk = work / "disk";
  fs::create_directories(disk);
  const std::string mount = "mount -t tmpfs -o size=24m tmpfs " + disk.string() + " 2>/dev/null";
  if (std::system(mount.c_str()) != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN)";
  struct Unmount {
    fs::path dir;
    ~Unmount() { (void)!std::system(("umount " + dir.string()).c_str()); }
  } unmount{disk};
  fs::path ref_work = fresh_dir("full-disk-straight");
  ProbeRun straight = run_probe(ref_work, probe_args(ref_work, 1), {});
  ASSERT_EQ(straight.rc, 0) << straight.output;

  // Fill the disk once trial 2 has a checkpoint (the experiment is well under way).
  bool filled = false;
  auto fill_when_under_way = [&] {
    if (filled) return false;
    fs::path dir = det::experiment::latest_run_dir(disk / "runs");
    if (dir.empty() || !fs::exists(dir / "trial-2" / "checkpoints")) return false;
    std::ofstream filler(disk / "filler", std::ios::binary);
    std::string block(1 << 16, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
    filled = true;
    return false;
  };
  auto args = probe_args(work, 1);
  args.back() = "checkpoint_storage.host_path=" + (disk / "runs").string();
  ProbeRun full = run_probe(work, args, {{"DET_PROBE_SLEEP_MS", "20"}}, fill_when_under_way);
  ASSERT_TRUE(filled) << full.output;
  EXPECT_EQ(full.rc, 1) << full.output;
  // The worker's write (errno) or the runner's store write (SQLite) found the disk full first.
  EXPECT_TRUE(full.output.find("No space left on device") != std::string::npos ||
              full.output.find("database or disk is full") != std::string::npos)
      << full.output;
  EXPECT_NE(full.output.find("free space, then continue with"), std::string::npos) << full.output;
  fs::path dir = only_run_dir(disk);
  // Whatever was recorded is whole: every recorded checkpoint verifies.
  ExperimentStore store(dir.parent_path() / "det.db");
  for (const auto& row :
       store.trials(read_json(dir / "experiment.json")["store"]["experiment_id"].get<int64_t>()))
    for (const auto& c : store.checkpoints(row.id)) {
      const bool staged_only =
          !fs::exists(c.path);  // recorded, not yet committed: resume commits it
      EXPECT_NO_THROW(det::record::read_checkpoint_metadata(
          staged_only ? det::record::staging_dir(c.path) : fs::path(c.path)))
          << c.path;
    }

  fs::remove(disk / "filler");
  ProbeRun resumed =
      run_probe(work, {"--resume-experiment", dir.string(), "--no-progress", "--slots", "1"}, {});
  ASSERT_EQ(resumed.rc, 0) << resumed.output;
  EXPECT_EQ(read_json(dir / "experiment.json")["state"], "COMPLETED");
  expect_same_experiment(only_run_dir(ref_work), dir);
  expect_records_agree(dir);
}

// A rank that stops (SIGSTOP: hung, not dead) is caught by its heartbeat within seconds, named
// by det-launch and in the runner's record, its ranks torn down, and the trial restarted.
TEST(Runner, AHungRankIsNamedAndTornDownByTheHeartbeat) {
  fs::path work = fresh_dir("hung");
  fs::create_directories(work / "markers");
  auto args = probe_args(work, 2);
  args.insert(args.end(),
              {"--config", "resources.slots_per_trial=2", "--config", "searcher.max_trials=2"});
  auto start = std::chrono::steady_clock::now();
  ProbeRun run = run_probe(work, args,
                           {{"DET_PROBE_MARKERS", (work / "markers").string()},
                            {"DET_PROBE_HANG", "1:5"},
                            {"DET_PROBE_RANK", "1"},
                            {"DET_HEARTBEAT_TIMEOUT", "3"}});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(run.rc, 0) << run.output;
  EXPECT_LT(seconds, 120) << "caught by the heartbeat, not by the 600 s collective timeout";
  EXPECT_NE(run.output.find("rank 1 (local rank 1"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("is not responding: no heartbeat for 3 s (stopped or hung)"),
            std::string::npos)
      << run.output;
  auto trials = trials_of(only_run_dir(work));
  EXPECT_EQ(trials[1].row.restarts, 1);
  EXPECT_EQ(trials[1].row.state, record::TrialStatus::kCompleted);
  EXPECT_NE(trials[1].summary["message"].get<std::string>().find("rank 1"), std::string::npos)
      << trials[1].summary;
  expect_records_agree(only_run_dir(work));
}

// Launched directly (det-launch -- det-run) the chief records the experiment; when it dies, the
// other rank ends the records (ERROR) instead of leaving them ACTIVE forever.
TEST(Runner, TheChiefsDeathEndsADirectlyLaunchedTrialInAFinalState) {
  fs::path work = fresh_dir("chief-death");
  fs::create_directories(work / "markers");
  std::vector<std::string> args = {
      "--nproc-per-node",
      "2",
      "--",
      DET_PROBE_EXE,
      kConfig,
      "--no-progress",
      "--config",
      "checkpoint_storage.host_path=" + (work / "runs").string(),
      "--config",
      "searcher={name: single, metric: validation_loss, max_length: {batches: 32}}",
      "--config",
      "resources.slots_per_trial=2"};
  std::string exe = DET_LAUNCH_PATH;
  ProbeRun run = run_probe(work, args,
                           {{"DET_PROBE_MARKERS", (work / "markers").string()},
                            {"DET_PROBE_CRASH", "1:11"},
                            {"DET_PROBE_RANK", "0"}},
                           nullptr, SIGINT, exe);
  EXPECT_NE(run.rc, 0) << run.output;
  EXPECT_NE(run.output.find("rank 0"), std::string::npos) << run.output;
  fs::path dir = only_run_dir(work);
  json doc = read_json(dir / "experiment.json");
  EXPECT_EQ(doc["state"], "ERROR") << doc.dump(2);
  ExperimentStore store(dir.parent_path() / "det.db");
  EXPECT_EQ(store.experiment(doc["store"]["experiment_id"].get<int64_t>()).state,
            record::RunState::kError);
  EXPECT_EQ(trials_of(dir)[1].row.state, record::TrialStatus::kError);
}

TEST(Runner, TooFewSlotsIsAClearError) {
  fs::path work = fresh_dir("slots");
  auto args = probe_args(work, 1);
  args.insert(args.end(), {"--config", "resources.slots_per_trial=2"});
  ProbeRun run = run_probe(work, args, {});
  EXPECT_EQ(run.rc, 2);
  EXPECT_NE(run.output.find("--slots 1 is fewer than resources.slots_per_trial (2)"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
}

}  // namespace
