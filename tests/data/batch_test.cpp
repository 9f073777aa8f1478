#include "det/data/batch.h"

#include <gtest/gtest.h>

#include "det/data/dataset.h"
#include "det/data/loader.h"
#include "det/util/error.h"

namespace det::data {
namespace {

TEST(Batch, NamedTensorsBesideDataAndTarget) {
  Batch b{torch::ones({4, 3}), torch::zeros({4})};
  b.set("mask", torch::ones({4}, torch::kBool));
  EXPECT_EQ(b.names(), (std::vector<std::string>{"data", "target", "mask"}));
  EXPECT_TRUE(b.contains("mask"));
  EXPECT_FALSE(b.contains("input_ids"));
  EXPECT_EQ(b.size(), 4);
  EXPECT_TRUE(b["data"].equal(b.data));
  try {
    b.at("maks");
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'mask'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("data, target, mask"), std::string::npos) << e.what();
  }
  // set() replaces a tensor, and a tensor read by name can be changed in place.
  b.set("mask", torch::zeros({4}, torch::kBool));
  EXPECT_FALSE(b["mask"].any().item<bool>());
  b["target"] = torch::ones({4});
  EXPECT_TRUE(b.target.equal(torch::ones({4})));
  // Without `data`, the size comes from the first tensor.
  Batch only;
  only.set("input_ids", torch::zeros({6, 2}));
  EXPECT_EQ(only.size(), 6);
  EXPECT_EQ(only.names(), std::vector<std::string>{"input_ids"});
  // A device move (and pinning, where CUDA exists) takes every tensor along.
  Batch moved = b.to(torch::kCPU);
  EXPECT_EQ(moved.names(), b.names());
}

// A misspelled name is an error naming the key and the names the batch holds, whether it is read
// or written through operator[]: it never creates an undefined tensor.
TEST(Batch, LookupOfAMissingNameIsAnErrorNamingTheNames) {
  Batch b{torch::ones({2, 3}), torch::zeros({2})};
  b.set("mask", torch::ones({2}));
  const Batch& view = b;
  for (const std::string& name : {std::string("maks"), std::string("input_ids")}) {
    try {
      b[name] = torch::ones({2});
      ADD_FAILURE() << name;
    } catch (const DataError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find("no tensor '" + name + "'"), std::string::npos) << m;
      EXPECT_NE(m.find("(it has: data, target, mask)"), std::string::npos) << m;
      EXPECT_NE(m.find("Batch::set"), std::string::npos) << m;
    }
    EXPECT_THROW(view[name], DataError);
  }
  EXPECT_EQ(b.names(), (std::vector<std::string>{"data", "target", "mask"}));
  EXPECT_TRUE(b.extra.find("maks") == b.extra.end());
  // data and target are names only while they are defined.
  Batch empty;
  EXPECT_THROW(empty["data"], DataError);
  EXPECT_THROW(empty.at("target"), DataError);
}

TEST(Batch, TensorDatasetAndLoaderCarryEveryName) {
  auto x1 = torch::arange(10, torch::kFloat).reshape({10, 1});
  auto x2 = 2 * x1;
  auto y = x1 + x2;
  auto ds = std::make_shared<TensorDataset>(
      std::map<std::string, torch::Tensor>{{"data", x1}, {"second", x2}, {"target", y}});
  EXPECT_EQ(ds->size(), 10);
  DataLoader loader(ds, DataLoaderOptions().batch_size(4).shuffle(true).seed(3).num_workers(2));
  int64_t seen = 0;
  for (auto& b : loader) {
    ASSERT_TRUE(b.contains("second"));
    // The rows of every tensor stay together.
    EXPECT_TRUE(b.at("second").equal(2 * b.data));
    EXPECT_TRUE(b.target.equal(b.data + b.at("second")));
    seen += b.size();
  }
  EXPECT_EQ(seen, 10);
  EXPECT_THROW(TensorDataset(std::map<std::string, torch::Tensor>{{"a", torch::ones({3})},
                                                                  {"b", torch::ones({4})}}),
               DataError);
  EXPECT_THROW(TensorDataset(std::map<std::string, torch::Tensor>{}), DataError);
}

}  // namespace
}  // namespace det::data
