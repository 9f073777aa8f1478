// det::main's dispatch, in process: each command's exit code and what it prints. Only the
// commands that finish without training are run here (training: tests/e2e/cli_test.sh).
#include "det/main.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "det/util/fs.h"

namespace det {
namespace {
namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out, err;
};

Result run_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "det-run");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  const int code = det::main(static_cast<int>(args.size()), argv.data());
  Result r{code, ::testing::internal::GetCapturedStdout(),
           ::testing::internal::GetCapturedStderr()};
  return r;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("det-cli-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    util::write_file_atomic(dir_ / name, text);
    return (dir_ / name).string();
  }
  fs::path dir_;
};

const char* const kGrid =
    "name: grid_preview\n"
    "entrypoint: mnist\n"
    "hyperparameters:\n"
    "  global_batch_size: 64\n"
    "  learning_rate:\n"
    "    type: categorical\n"
    "    vals: [0.1, 1.0]\n"
    "  n_filters1:\n"
    "    type: int\n"
    "    minval: 8\n"
    "    maxval: 32\n"
    "    count: 3\n"
    "searcher:\n"
    "  name: grid\n"
    "  metric: validation_loss\n"
    "  max_length:\n"
    "    batches: 10\n";

TEST_F(CliTest, VersionIsTheProjectVersion) {
  const std::string cmake = util::read_file(fs::path(DET_SOURCE_DIR) / "CMakeLists.txt");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(cmake, m, std::regex(R"(project\(det VERSION ([0-9.]+))")));
  const Result r = run_cli({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "det " + m[1].str() + "\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(CliTest, UnknownOptionsAndMisusesExitTwo) {
  Result r = run_cli({"--no-such-option"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "det-run: The following argument was not expected: --no-such-option (see det-run "
            "--help)\n");
  r = run_cli({"validate-config"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("config is required"), std::string::npos) << r.err;
  r = run_cli({});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "det-run: no config given: det-run CONFIG.yaml (see det-run --help)\n");
  r = run_cli({"--resume-experiment", dir_.string(), "--test"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "det-run: --resume-experiment cannot be combined with --test or --resume\n");
}

TEST_F(CliTest, AnUnknownWordIsTakenAsAConfigThatDoesNotExist) {
  const Result r = run_cli({"trian"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "det-run: config error: trian: no such config file (give the path to an experiment "
            "YAML, e.g. configs/mnist/const.yaml)\n");
}

TEST_F(CliTest, ValidateConfigAcceptsAGoodConfig) {
  const std::string path = std::string(DET_SOURCE_DIR) + "/configs/mnist/const.yaml";
  const Result r = run_cli({"validate-config", path});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, path + ": valid (searcher single, entrypoint mnist)\n");
}

TEST_F(CliTest, ValidateConfigNamesTheFileLineAndKeyOfAMistake) {
  const std::string path = write("bad.yaml",
                                 "name: bad\nentrypoint: mnist\nhyperparameters:\n"
                                 "  global_batch_size: 64\nsearcher:\n  name: single\n"
                                 "  metric: validation_loss\n  max_length:\n    batchez: 10\n");
  Result r = run_cli({"validate-config", path});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "det-run: config error: " + path +
                       ":9:5: searcher.max_length.batchez: unknown key 'batchez', did you mean "
                       "'batches'? (allowed here: batches, records, epochs)\n");
  // An override that fixes it is applied; one that breaks a good config is named.
  const std::string good = write("good.yaml",
                                 "name: good\nentrypoint: mnist\nhyperparameters:\n"
                                 "  global_batch_size: 64\nsearcher:\n  name: single\n"
                                 "  metric: validation_loss\n  max_length:\n    batches: 10\n");
  r = run_cli({"validate-config", good, "--config", "searcher.max_length.batches=abc"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("det-run: config error: --config searcher.max_length.batches=abc: ", 0), 0u)
      << r.err;
  r = run_cli({"validate-config", (dir_ / "none.yaml").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "det-run: config error: " + (dir_ / "none.yaml").string() +
                       ": no such config file (give the path to an experiment YAML, e.g. "
                       "configs/mnist/const.yaml)\n");
}

TEST_F(CliTest, PreviewSearchOfAGridCountsItsPoints) {
  const Result r = run_cli({"preview-search", write("grid.yaml", kGrid)});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Searcher: grid, max_length 10 batches, max_concurrent_trials 16\n"
            "6 grid points\n"
            "  Rung  Trials  Training length (batches)\n"
            "     1       6  10\n"
            "  Total: 6 trials, 60 batches of training\n");
  const Result over = run_cli({"preview-search", write("grid2.yaml", kGrid), "--config",
                               "hyperparameters.n_filters1.count=2"});
  EXPECT_EQ(over.code, 0) << over.err;
  EXPECT_NE(over.out.find("4 grid points\n"), std::string::npos) << over.out;
}

TEST_F(CliTest, QueriesOfAMissingStoreSayWhereRunsRecord) {
  const std::string missing = (dir_ / "none.db").string();
  const std::string hint =
      " (runs record into <checkpoint_storage.host_path>/det.db; pass --store PATH)\n";
  Result r = run_cli({"experiments", "--store", missing});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "det-run: no experiment store at " + missing + hint);
  // A directory is taken as the run root that holds det.db.
  r = run_cli({"describe", "1", "--store", dir_.string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "det-run: no experiment store at " + (dir_ / "det.db").string() + hint);
  const std::string junk = write("junk.db", "not a database\n");
  r = run_cli({"experiments", "--store", junk});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "det-run: error: experiment store " + junk +
                       ": a statement failed: file is not a database (is the file a det "
                       "experiment store?)\n");
}

}  // namespace
}  // namespace det
