#include "det/nn/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <filesystem>
#include <functional>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::nn {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(Safetensors, RoundTripsEveryDtype) {
  std::map<std::string, torch::Tensor> t = {
      {"f32", torch::randn({2, 3})},
      {"f64", torch::randn({4}, torch::kFloat64)},
      {"f16", torch::randn({3, 1}).to(torch::kFloat16)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::arange(6, torch::kInt64).reshape({2, 3})},
      {"u8", torch::arange(7, torch::kInt32).to(torch::kUInt8)},
      {"b", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 3})},
      {"strided", torch::randn({4, 4}).t()},
  };
  auto dir = std::filesystem::temp_directory_path() / ("det-st-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_safetensors(dir / "a.safetensors", t, {{"format", "pt"}});
  auto back = read_safetensors(dir / "a.safetensors");
  EXPECT_EQ(back.metadata.at("format"), "pt");
  ASSERT_EQ(back.tensors.size(), t.size());
  for (const auto& [name, v] : t) {
    ASSERT_TRUE(back.tensors.count(name)) << name;
    EXPECT_EQ(back.tensors[name].scalar_type(), v.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(back.tensors[name], v)) << name;
  }
  std::filesystem::remove_all(dir);
}

// tests/testdata/nn/shiftvit_tiny.safetensors was written by the hand-written Python writer
// (scripts/testdata/safetensors_io.py).
TEST(Safetensors, ReadsAFileWrittenByPython) {
  auto f = read_safetensors(std::string(DET_TEST_DATA_DIR) + "/nn/shiftvit_tiny.safetensors");
  EXPECT_EQ(f.metadata.count("torch_version"), 1u);
  EXPECT_EQ(f.tensors.at("x").sizes(), (std::vector<int64_t>{3, 3, 46, 46}));
  EXPECT_EQ(f.tensors.at("layers.0.downsample.reduction.weight").sizes(), (std::vector<int64_t>{16, 8, 2, 2}));
}

TEST(Safetensors, CorruptFilesAreClearErrors) {
  auto good = serialize_safetensors({{"w", torch::ones({2, 2})}});
  EXPECT_NE(error_of([&] { parse_safetensors("abc", "f"); }).find("shorter than the 8-byte"), std::string::npos);
  EXPECT_NE(error_of([&] { parse_safetensors(good.substr(0, good.size() - 4), "f"); }).find("tensor 'w'"), std::string::npos);
  std::string huge = good;
  huge[6] = 1;  // header length far beyond the file
  EXPECT_NE(error_of([&] { parse_safetensors(huge, "f"); }).find("truncated"), std::string::npos);
  std::string bad_dtype = good;
  auto pos = bad_dtype.find("F32");
  bad_dtype.replace(pos, 3, "F99");
  EXPECT_NE(error_of([&] { parse_safetensors(bad_dtype, "f"); }).find("unsupported dtype 'F99'"), std::string::npos);
}

TEST(Safetensors, LoadStateDictNamesTheKey) {
  torch::nn::Linear lin(3, 2);
  auto sd = state_dict(*lin);
  EXPECT_EQ(load_state_dict(*lin, sd, "w.safetensors").size(), 2u);
  auto missing = sd;
  missing.erase("bias");
  EXPECT_NE(error_of([&] { load_state_dict(*lin, missing, "w.safetensors"); }).find("missing tensor 'bias'"), std::string::npos);
  EXPECT_EQ(load_state_dict(*lin, missing, "w", {"bias"}).size(), 1u);
  auto wrong = sd;
  wrong["weight"] = torch::zeros({2, 4});
  auto msg = error_of([&] { load_state_dict(*lin, wrong, "w.safetensors"); });
  EXPECT_NE(msg.find("'weight' has shape [2,4], the model expects [2,3]"), std::string::npos) << msg;
  auto extra = sd;
  extra["pooler.dense.weight"] = torch::zeros({1});
  EXPECT_NE(error_of([&] { load_state_dict(*lin, extra, "w"); }).find("unexpected tensor 'pooler.dense.weight'"), std::string::npos);
  EXPECT_EQ(load_state_dict(*lin, extra, "w", {}, true).size(), 2u);
}

}  // namespace
}  // namespace det::nn
